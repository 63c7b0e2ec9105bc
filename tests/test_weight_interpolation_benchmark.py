"""benchmarks/weight_interpolation.py on a tiny model and a small fixture: alpha 0 is the base encoder, alpha 1 the
model as saved, the chosen alpha is the best on dev, and bad arguments are refused in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from scipy.stats import spearmanr

import sts_models

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "weight_interpolation.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=REPO, timeout=300)


def spearman_x100(model, folder: Path) -> float:
    rows = [line.split("\t") for line in folder.read_text(encoding="utf-8").splitlines()]
    scores = model.predict([(row[5], row[6]) for row in rows])
    return round(100 * spearmanr(scores, [float(row[4]) for row in rows])[0], 2)


@pytest.fixture
def trained_dir(tiny_encoder_dir, tmp_path) -> Path:
    """A siamese model whose encoder moved away from the tiny encoder it starts from (as training would move it)."""
    torch.manual_seed(1)
    model = sts_models.STSSiameseModel.from_encoder(tiny_encoder_dir)
    with torch.no_grad():
        for parameter in model.encoder.parameters():
            parameter.add_(0.5 * torch.randn_like(parameter))
    model.save_pretrained(tmp_path / "trained")
    model.tokenizer.save_pretrained(tmp_path / "trained")
    return tmp_path / "trained"


def test_interpolates_between_the_base_and_the_trained_model(
    trained_dir, tiny_encoder_dir, transfer_data_dir, tmp_path
):
    results = tmp_path / "interpolation.json"
    process = run(str(trained_dir), "--base", tiny_encoder_dir, "--alphas", "0,0.5,1", "--label", "tiny",
                  "--data_dir", str(transfer_data_dir), "--results", str(results))  # fmt: skip
    assert process.returncode == 0, process.stderr[-3000:]
    report = json.loads(results.read_text())["models"]["tiny"]
    dev = report["dev_spearman"]
    assert set(dev) == {"0.0", "0.5", "1.0"}
    assert report["chosen_alpha"] == max((score, float(alpha)) for alpha, score in dev.items())[1]

    stsb = transfer_data_dir / "stsbenchmark"
    base = sts_models.STSSiameseModel.from_encoder(tiny_encoder_dir)
    trained = sts_models.STSSiameseModel.from_pretrained(trained_dir)
    assert dev["0.0"] == pytest.approx(spearman_x100(base, stsb / "sts-dev.csv"), abs=0.01)
    assert dev["1.0"] == pytest.approx(spearman_x100(trained, stsb / "sts-dev.csv"), abs=0.01)
    assert dev["0.0"] != dev["1.0"]  # the two ends are different models
    as_saved = report["evaluated"]["1.0"]
    assert as_saved["test"] == pytest.approx(spearman_x100(trained, stsb / "sts-test.csv"), abs=0.01)
    names = ("sts12", "sts13", "sts14", "sts15", "sick_r")
    assert as_saved["transfer_average"] == pytest.approx(sum(as_saved[name] for name in names) / 5, abs=0.01)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--alphas", "0.5,2"], "--alphas '0.5,2': each weight must be in [0, 1]"),
        (["--alphas", "half"], "--alphas 'half': not comma-separated numbers"),
        (["--base", "{missing}"], "model folder not found"),
    ],
)
def test_bad_arguments_are_refused_in_one_line(trained_dir, transfer_data_dir, tmp_path, args, message):
    args = [arg.format(missing=tmp_path / "missing") for arg in args]
    process = run(str(trained_dir), "--data_dir", str(transfer_data_dir), "--results", str(tmp_path / "r.json"), *args)
    assert process.returncode == 2 and message in process.stderr.strip().splitlines()[-1], process.stderr[-2000:]
    assert not (tmp_path / "r.json").exists()


def test_a_plain_encoder_is_not_a_trained_model(tiny_encoder_dir, transfer_data_dir, tmp_path):
    process = run(tiny_encoder_dir, "--data_dir", str(transfer_data_dir), "--results", str(tmp_path / "r.json"))
    assert process.returncode == 2 and "a bert model, not a saved STS model" in process.stderr
