# Two commands on a fresh machine: `make train` (train + evaluate one arch on STS-B) and `make test`.
# Both create the virtual environment on first use.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
ARCH ?= siamese
# STS-B: a folder in the original layout (sts-train.csv, sts-dev.csv, sts-test.csv) or a Hub dataset id; by default
# ../shared/data/stsbenchmark when it exists, else the Hub copy. Without the Hub: make train DATA=/path/to/stsbenchmark
DATA ?= $(if $(wildcard ../shared/data/stsbenchmark/sts-train.csv),../shared/data/stsbenchmark,mteb/stsbenchmark-sts)
# More run_sts.py flags, after the run file's: make train ARGS="--max_steps 2 --output_dir /tmp/try"
ARGS ?=

.PHONY: install train test

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet "$(TORCH)"
	$(VENV)/bin/python -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

train: install
	$(VENV)/bin/python run_sts.py configs/$(ARCH).yaml --dataset_name $(DATA) $(ARGS)

test: install
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(VENV)/bin/python -m pytest -q
