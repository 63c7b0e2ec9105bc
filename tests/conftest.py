"""Shared fixtures: tiny random encoders built from a config, a WordPiece vocab written here, a few STS-B pairs."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from pathlib import Path

# Offline before anything imports huggingface_hub: tests never touch the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest
import torch
from transformers import BertConfig, BertModel, BertTokenizer

import sts_models

REPO_ROOT = Path(__file__).resolve().parents[1]
# the data folder the benchmarks read too (benchmarks/common.py): $STS_DATA_DIR, else ../shared/data
STSB_DIR = Path(os.environ.get("STS_DATA_DIR") or REPO_ROOT.parent / "shared" / "data") / "stsbenchmark"


def pytest_sessionstart(session):
    """Stop at once, in one line, where the STS-B files the tests read are missing."""
    if not (STSB_DIR / "sts-train.csv").is_file():
        pytest.exit(
            f"the tests read STS-B from {STSB_DIR} (sts-train.csv, sts-dev.csv, sts-test.csv), which is not there: "
            "set STS_DATA_DIR to a folder holding stsbenchmark/",
            returncode=4,
        )


SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def read_stsb(split_file: str, limit: int | None = None) -> list[tuple[str, str, float]]:
    """First `limit` (sentence1, sentence2, score) rows of an original STS-B file."""
    rows = []
    with open(STSB_DIR / split_file, encoding="utf-8") as handle:
        for line in handle:
            fields = line.rstrip("\n").split("\t")
            rows.append((fields[5], fields[6], float(fields[4])))
            if limit is not None and len(rows) == limit:
                break
    return rows


SICK_HEADER = "pair_ID\tsentence_A\tsentence_B\tentailment_label\trelatedness_score\tSemEval_set"


@pytest.fixture
def transfer_data_dir(tmp_path) -> Path:
    """A small data folder shaped as ../shared/data (what the tiny encoder's vocabulary knows): four STS files and a
    SICK file of STS-B dev pairs, and `stsbenchmark/` dev and test files of 16 pairs each."""
    rows = read_stsb("sts-dev.csv", limit=40)
    (tmp_path / "sts12-15").mkdir()
    for number, year in enumerate(("sts12", "sts13", "sts14", "sts15")):
        with open(tmp_path / "sts12-15" / f"{year}.jsonl", "w", encoding="utf-8") as handle:
            for a, b, score in rows[number * 8 : number * 8 + 8]:
                handle.write(json.dumps({"sentence1": a, "sentence2": b, "score": score, "source": "x"}) + "\n")
    (tmp_path / "sick").mkdir()
    lines = [SICK_HEADER] + [
        f"{i}\t{a}\t{b}\tNEUTRAL\t{1 + 4 * score / 5:.2f}\t{'TEST' if i % 4 else 'TRAIN'}"
        for i, (a, b, score) in enumerate(rows[:24])
    ]
    (tmp_path / "sick" / "SICK.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "stsbenchmark").mkdir()
    for name, split in (("sts-dev.csv", rows[:16]), ("sts-test.csv", rows[16:32])):
        lines = [
            f"main-captions\tMSRvid\t2012test\t{i:04d}\t{score}\t{a}\t{b}" for i, (a, b, score) in enumerate(split)
        ]
        (tmp_path / "stsbenchmark" / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp_path


@pytest.fixture(scope="session")
def stsb_pairs() -> list[tuple[str, str, float]]:
    return read_stsb("sts-dev.csv", limit=64)


def write_tiny_encoder(folder: Path, stsb_pairs) -> str:
    """A 2-layer, width-32 BERT with random weights and a WordPiece vocab of STS-B words."""
    torch.manual_seed(0)
    words = set()
    for sentence1, sentence2, _ in stsb_pairs + read_stsb("sts-train.csv", limit=200):
        words.update(re.findall(r"\w+|[^\w\s]", f"{sentence1} {sentence2}".lower()))
    vocab = SPECIAL_TOKENS + sorted(words)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    # `vocab`, not `vocab_file`: transformers 5 ignores `vocab_file` here and builds a tokenizer of the five
    # special tokens alone, which reads every word as [UNK].
    tokenizer = BertTokenizer(vocab=str(folder / "vocab.txt"), model_max_length=128)
    tokenizer.save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory, stsb_pairs) -> str:
    return write_tiny_encoder(tmp_path_factory.mktemp("tiny-bert"), stsb_pairs)


@pytest.fixture(params=list(sts_models.ARCHITECTURES))
def arch(request) -> str:
    return request.param


@pytest.fixture
def tiny_model(arch, tiny_encoder_dir):
    """A fresh tiny model of each arch, in eval mode (no dropout) and seeded."""
    torch.manual_seed(0)
    return sts_models.get_model_class(arch).from_encoder(tiny_encoder_dir).eval()


def make_batch(model, pairs, labels=None) -> dict[str, torch.Tensor]:
    """Tokenize and pad `pairs` for `model` (as the training collator does)."""
    features = model.tokenize([a for a, _, *_ in pairs], [b for _, b, *_ in pairs])
    rows = [dict(zip(features, values)) for values in zip(*features.values())]
    if labels is not None:
        for row, label in zip(rows, labels):
            row["labels"] = label
    return sts_models.DataCollatorForSentencePairs.for_tokenizer(model.tokenizer)(rows)


# The start of a script run in a process where `import sts_models` fails (the package not installed).
WITHOUT_STS_MODELS = """
import json, sys
sys.modules["sts_models"] = None  # any `import sts_models` now raises ImportError
try:
    import sts_models
except ImportError:
    pass
else:
    raise SystemExit("sts_models is still importable")
"""


def load_script(path: Path, name: str):
    """A script of the repository (`run_sts.py`, `benchmarks/speed.py`, ...) imported as module `name`."""
    spec = importlib.util.spec_from_file_location(name, str(path))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the script defines them
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def run_sts_module():
    """What `run_sts.py` and `sts-models train` run."""
    from sts_models.cli import train

    return train


# Warnings that a run on the CPU printed every time, each silenced by a setting of ours: the tests that run
# run_sts.py check that its output holds none of them.
SETUP_WARNINGS = {
    "DataLoader pin_memory on the CPU (dataloader_pin_memory)": "'pin_memory' argument is set as true",
    "Trainer aligning the config with the tokenizer (config.pad_token_id)": "The tokenizer has new PAD/BOS/EOS",
    "DeepSpeed guessing the accelerator (DS_ACCELERATOR)": "Setting accelerator to CPU",
    "DDP's search for unused parameters (ddp_find_unused_parameters)": "find_unused_parameters=True was specified",
}


def assert_no_setup_warnings(output: str) -> None:
    printed = [name for name, text in SETUP_WARNINGS.items() if text in output]
    assert not printed, f"warnings printed: {printed}"


def in_hub_cache(write, repo_id: str, tmp_path, monkeypatch) -> Path:
    """The snapshot folder of `repo_id` in a Hugging Face cache of the layout huggingface_hub writes (the test's cache
    from now on), filled by `write(folder)`."""
    repo = tmp_path / "hub-cache" / f"models--{repo_id.replace('/', '--')}"
    commit = "0" * 40
    write(repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    return repo / "snapshots" / commit
