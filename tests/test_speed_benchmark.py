"""benchmarks/speed.py on a tiny encoder: a quick run writes every field; the races and tables it reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sts_models.training_args import resolve_bf16

from .conftest import load_script, read_stsb

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "speed.py"


@pytest.fixture(scope="module")
def speed():
    return load_script(SCRIPT, "speed")


def test_quick_training_run_writes_the_results(tiny_encoder_dir, tmp_path):
    """Each training side in its own process, the recipes from the committed JSONs, the machine and the command."""
    results = tmp_path / "speed.json"
    command = [sys.executable, str(SCRIPT), "--quick", "--model", tiny_encoder_dir, "--cases", "training,recipes",
               "--archs", "siamese", "--results", str(results)]  # fmt: skip
    process = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    report = json.loads(results.read_text())
    assert report["command"].startswith("python benchmarks/speed.py --quick --model ")
    assert report["machine"]["torch_threads"] >= 1 and report["machine"]["cpu"]
    assert len(report["machine"]["load_average_before"]) == 3 and isinstance(report["machine"]["quiet_before"], bool)
    assert {"torch", "transformers", "sentence_transformers", "sts_models"} <= set(report["versions"])
    assert report["settings"]["precision_ours"] == "config" and report["settings"]["archs"] == ["siamese"]
    training = report["training"]
    assert set(training["sides"]) == {"siamese", "st-bi-encoder-cosent"}
    for side in training["sides"].values():
        assert side["samples_per_second"] > 0 and side["peak_rss_mib"] > 100  # torch alone takes more
        assert len(side["rounds"]) == 1
        assert side["rounds"][0]["timed_steps"] == 2 and side["rounds"][0]["warmup_steps"] == 1
    # ours as configs/siamese.yaml trains (bf16: auto; random batches, here in the anchor's order); the anchor as its
    # recipe, in float32
    ours, anchor = training["sides"]["siamese"], training["sides"]["st-bi-encoder-cosent"]
    assert ours["train_sampling_strategy"] == "sequential"
    # `bf16: auto`, chosen as run_sts.py chooses: timed where the CPU has bf16 instructions, else the rule (float32)
    assert ours["precision"] in ("bf16", "fp32")
    if ours["precision_chosen_by"] == "setting":
        assert ours["precision"] == ("bf16" if resolve_bf16("auto") else "fp32")
    assert ours["precision_chosen_by"] == ("measurement" if resolve_bf16("auto") else "setting")
    assert anchor["train_sampling_strategy"] == "sequential" and anchor["precision"] == "fp32"
    (ratio,) = training["ratios"]
    assert ratio["ours"] == "siamese" and ratio["theirs"] == "st-bi-encoder-cosent" and ratio["speed_ratio"] > 0
    (recipe,) = report["recipes"]  # from docs/results/siamese.json and st-bi-encoder-cosent.json
    assert recipe["time_ratio"] == pytest.approx(recipe["train_seconds_theirs"] / recipe["train_seconds_ours"])
    assert "| `siamese` | `st-bi-encoder-cosent` |" in report["markdown"]
    assert "ours / ST" in process.stdout and "anchor / ours time" in process.stdout


def test_inference_races_both_sides_on_the_same_weights(speed, tiny_encoder_dir):
    pairs = [(a, b) for a, b, _ in read_stsb("sts-test.csv", limit=6)]
    results = speed.inference(tiny_encoder_dir, list(speed.ARCHS), pairs, [4], rounds=2, precision="fp32")
    cases = {case["task"]: case for case in results}
    assert list(cases) == ["encode", "pair scores", "bert predict", "bert-symmetric predict", "cross predict"]
    assert cases["encode"]["items"] == 12 and cases["pair scores"]["items"] == 6
    for task in ("encode", "pair scores"):  # the same encoder and pooling: the same numbers
        assert cases[task]["max_abs_diff"] < 1e-5
        assert set(cases[task]["systems"]) == {"ours", "sentence-transformers"}
        assert len(cases[task]["systems"]["ours"]["rounds_s"]) == 2
        assert cases[task]["speed_ratio"] == pytest.approx(
            cases[task]["systems"]["sentence-transformers"]["best_s"] / cases[task]["systems"]["ours"]["best_s"]
        )
    assert cases["bert predict"]["theirs"] == "CrossEncoder" and cases["bert predict"]["max_abs_diff"] is None
    for task in ("bert-symmetric predict", "cross predict"):  # reported alone
        assert cases[task]["theirs"] is None and cases[task]["speed_ratio"] is None
    table = speed.markdown({"inference": results})
    assert "| `bert.predict`, `symmetric`, 6 pairs | (alone) | 4 |" in table


def test_bad_flags_are_refused(speed, capsys):
    for flags, message in [
        (["--cases", "inference,nope"], "--cases: choose from inference,training,recipes"),
        (["--train_steps", "0"], "--train_steps must be at least 1"),
        (["--batch_sizes", "32,x"], "--batch_sizes: comma-separated integers"),
        (["--model", "/no/such/folder"], "--model: encoder folder not found"),
    ]:
        with pytest.raises(SystemExit):
            speed.parse_args(flags)
        assert message in capsys.readouterr().err


def test_a_resumed_run_is_left_out_of_the_recipes_table(speed, tmp_path):
    """A resumed run's train_seconds time only the part after its checkpoint: the table took it as the run's time."""
    run = {"train_seconds": 120.0, "test_spearman": 0.868, "command": "python benchmarks/sts_quality.py train siamese"}
    anchor = {"train_seconds": 1110.0, "test_spearman": 0.8676, "command": "python benchmarks/sts_quality.py train x"}
    (tmp_path / "siamese.json").write_text(json.dumps(run))
    (tmp_path / f"{speed.RECIPES['siamese']}.json").write_text(json.dumps(anchor))
    assert len(speed.recipes(["siamese"], tmp_path)) == 1
    (tmp_path / "siamese.json").write_text(json.dumps({**run, "resumed_from": "checkpoint-1800"}))
    assert speed.recipes(["siamese"], tmp_path) == []
