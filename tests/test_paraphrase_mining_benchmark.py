"""benchmarks/paraphrase_mining.py on a tiny encoder: every backend mines the same pairs as sentence-transformers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "paraphrase_mining.py"


def test_backends_race_sentence_transformers_and_write_the_results(tiny_encoder_dir, tmp_path):
    pytest.importorskip("onnxruntime")
    results = tmp_path / "mining.json"
    command = [sys.executable, str(SCRIPT), "--model", tiny_encoder_dir, "--num_sentences", "60", "--top_k", "5",
               "--backends", "pytorch,onnx", "--repeats", "2", "--max_seq_length", "64", "--results", str(results)]  # fmt: skip
    process = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    report = json.loads(results.read_text())
    assert report["settings"]["num_sentences"] == 60 and report["settings"]["backends"] == ["pytorch", "onnx"]
    systems = report["systems"]
    assert set(systems) == {"sts-models pytorch", "sts-models onnx", "sentence-transformers"}
    for name in ("sts-models pytorch", "sts-models onnx"):
        system = systems[name]
        assert len(system["runs_s"]) == 2 and system["best_s"] == min(system["runs_s"])
        assert system["speed_ratio"] == pytest.approx(systems["sentence-transformers"]["best_s"] / system["best_s"])
        assert system["pairs"] == systems["sentence-transformers"]["pairs"]
        assert system["top_pairs"]["largest_score_difference"] < 1e-4  # float32: the same scores
    assert "x sentence-transformers" in process.stdout


def test_unknown_backend_is_refused():
    process = subprocess.run(
        [sys.executable, str(SCRIPT), "--backends", "pytorch,tensorrt"], capture_output=True, text=True, cwd=REPO
    )
    assert process.returncode == 2 and "--backends: choose from pytorch,onnx,onnx-int8" in process.stderr
