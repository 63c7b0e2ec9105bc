"""benchmarks/cpu_precision.py on a tiny encoder: the race and the quality runs write every field."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "cpu_precision.py"


def test_quick_run_races_both_precisions_and_trains_in_each(tiny_encoder_dir, tmp_path):
    results = tmp_path / "precision.json"
    command = [sys.executable, str(SCRIPT), "--model", tiny_encoder_dir, "--rounds", "1", "--steps", "2",
               "--batch_size", "4", "--quality_steps", "1", "--results", str(results)]  # fmt: skip
    process = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    report = json.loads(results.read_text())
    speed = report["speed"]["samples_per_second"]
    assert set(speed) == {"float32", "bf16"} and all(value > 0 for value in speed.values())
    assert report["speed"]["bf16_over_float32"] == speed["bf16"] / speed["float32"]
    for precision in ("float32", "bf16"):
        run = report["quality"][precision]
        assert -1 <= run["dev_spearman"] <= 1 and run["train_samples_per_second"] > 0
    # the two quality runs trained in different precisions from the same seed: their dev scores differ
    assert report["quality"]["float32"]["dev_spearman"] != report["quality"]["bf16"]["dev_spearman"]
    assert report["setup"]["model"] == tiny_encoder_dir and report["setup"]["quality_length"] == "1 steps"
    assert report["machine"]["threads"] >= 1 and isinstance(report["machine"]["load_before"], float)
    assert report["command"].startswith("python ") and "--model" in report["command"]
    assert "bf16 / float32 speed" in process.stdout


def test_non_positive_counts_are_refused_in_one_line(tmp_path):
    command = [sys.executable, str(SCRIPT), "--steps", "0", "--results", str(tmp_path / "p.json")]
    process = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert process.returncode == 2 and "--steps must be positive, got 0" in process.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "p.json").exists()
