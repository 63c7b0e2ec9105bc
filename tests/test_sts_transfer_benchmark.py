"""benchmarks/sts_transfer.py on a tiny model and a small fixture: one Spearman per set, their average, results
merged by label."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from scipy.stats import spearmanr

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "sts_transfer.py"


def test_transfer_suite_on_a_tiny_model(tiny_encoder_dir, transfer_data_dir, tmp_path):
    data_dir = transfer_data_dir
    results = tmp_path / "transfer.json"
    command = [sys.executable, str(SCRIPT), f"tiny={tiny_encoder_dir}", "--data_dir", str(data_dir),
               "--results", str(results)]  # fmt: skip
    process = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    report = json.loads(results.read_text())["models"]["tiny"]
    assert report["pairs"] == {"sts12": 8, "sts13": 8, "sts14": 8, "sts15": 8, "sick_r": 18}  # SICK: TEST rows only
    names = ("sts12", "sts13", "sts14", "sts15", "sick_r")
    assert report["average"] == pytest.approx(sum(report[name] for name in names) / 5)

    # the figure is the Spearman of a plain encoder's mean-pooled cosine, x100
    import sts_models

    model = sts_models.STSSiameseModel.from_encoder(tiny_encoder_dir)
    rows = [json.loads(line) for line in (data_dir / "sts12-15" / "sts13.jsonl").read_text().splitlines()]
    scores = model.predict([(row["sentence1"], row["sentence2"]) for row in rows])
    assert report["sts13"] == pytest.approx(100 * spearmanr(scores, [row["score"] for row in rows])[0], abs=1e-6)

    # a second run adds its model beside the first
    process = subprocess.run(
        [sys.executable, str(SCRIPT), f"again={tiny_encoder_dir}", "--data_dir", str(data_dir), "--results", str(results)],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr[-3000:]
    models = json.loads(results.read_text())["models"]
    assert set(models) == {"tiny", "again"} and models["again"]["average"] == pytest.approx(report["average"])
    assert "| `tiny` |" in process.stdout


def test_a_data_folder_without_the_sets_is_refused(tmp_path):
    process = subprocess.run(
        [sys.executable, str(SCRIPT), "x", "--data_dir", str(tmp_path)], capture_output=True, text=True, cwd=REPO
    )
    assert process.returncode == 2 and "no sts12-15/ folder" in process.stderr
