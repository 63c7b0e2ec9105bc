"""benchmarks/silver_overlap.py on a tiny teacher and a small STS-B fixture whose training sentences are also dev and
test sentences: the sampler as it was takes dev and test pairs; as it is, none of their sentences."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import sts_models

from .conftest import read_stsb

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "silver_overlap.py"


def write_split(path: Path, pairs) -> None:
    lines = [f"main-captions\tMSRvid\t2012test\t{i:04d}\t{score}\t{a}\t{b}" for i, (a, b, score) in enumerate(pairs)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_counts_the_dev_and_test_pairs_the_silver_pairs_take(tiny_encoder_dir, tmp_path):
    rows = read_stsb("sts-dev.csv", limit=48)
    data = tmp_path / "stsbenchmark"
    data.mkdir()
    dev, test = rows[:8], rows[8:16]
    # training pairs that cross the dev and test pairs: every dev and test sentence is also a training sentence
    shared = [sentence for a, b, _ in dev + test for sentence in (a, b)]
    train = [(shared[i], shared[(i + 3) % len(shared)], 2.5) for i in range(len(shared))] + rows[16:]
    for name, split in (("sts-train.csv", train), ("sts-dev.csv", dev), ("sts-test.csv", test)):
        write_split(data / name, split)
    sts_models.STSSiameseModel.from_encoder(tiny_encoder_dir).save_pretrained(tmp_path / "teacher")
    results = tmp_path / "overlap.json"
    process = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "teacher"), "--neighbors", "8", "--data", str(data),
         "--cache_dir", str(tmp_path / "cache"), "--results", str(results)],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr[-3000:]
    report = json.loads(results.read_text())
    before, now = report["before (format 1)"], report["now"]
    assert before["dev"]["silver_pairs_with_one_of_its_sentences"] > 0
    assert before["dev"]["pairs_that_are_silver_pairs"] + before["test"]["pairs_that_are_silver_pairs"] > 0
    for split in ("dev", "test"):
        assert now[split]["pairs_that_are_silver_pairs"] == now[split]["silver_pairs_with_one_of_its_sentences"] == 0
    assert now["candidate_sentences"] == before["candidate_sentences"] - len(set(shared)) > 0
    assert report["command"].startswith("python benchmarks/silver_overlap.py ")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["{teacher}", "--neighbors", "0"], "--neighbors must be 1 or more, got 0"),
        (["{tmp}/nowhere"], "teacher: folder not found: {tmp}/nowhere"),
        (["{teacher}", "--data", "{tmp}/nowhere"], "--data: folder not found: {tmp}/nowhere"),
        (["{teacher}", "--cache_dir", "{tmp}/a-file"], "--cache_dir {tmp}/a-file is a file, not a folder"),
    ],
)
def test_bad_arguments_are_one_line(tmp_path, flags, message):
    (tmp_path / "teacher").mkdir()
    (tmp_path / "a-file").write_text("")
    values = {"teacher": str(tmp_path / "teacher"), "tmp": str(tmp_path)}
    process = subprocess.run(
        [sys.executable, str(SCRIPT), *(flag.format(**values) for flag in flags), "--results", str(tmp_path / "r.json")],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert process.returncode == 2 and "Traceback" not in process.stderr
    assert process.stderr.strip().splitlines()[-1].endswith(message.format(**values))
    assert not (tmp_path / "r.json").exists()
