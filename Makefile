# Two commands on a fresh machine: `make train` (train + evaluate one arch on STS-B) and `make test`.
# Both create the virtual environment on first use.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
ARCH ?= siamese
# A local STS-B folder when there is one (offline machines), else the Hub copy.
DATA ?= $(if $(wildcard ../shared/data/stsbenchmark/sts-train.csv),../shared/data/stsbenchmark,mteb/stsbenchmark-sts)

.PHONY: install train test

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet "$(TORCH)"
	$(VENV)/bin/python -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

train: install
	$(VENV)/bin/python run_sts.py configs/$(ARCH).yaml --dataset_name $(DATA)

test: install
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(VENV)/bin/python -m pytest -q
