"""Runs of `run_sts.py` repeat exactly: a run killed with SIGKILL and resumed from its last checkpoint ends
where the uninterrupted run ends, and the same seed gives the same predictions.

Each run is a fresh process on a tiny encoder (a dozen steps), so every run starts from the same state.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from .conftest import REPO_ROOT, STSB_DIR, assert_no_setup_warnings

SCRIPT = str(REPO_ROOT / "run_sts.py")
# On the CPU, also on a machine with a GPU (whose kernels need not repeat bit for bit).
CPU_ONLY = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
# Metrics that measure time, not the model.
TIMINGS = ("_runtime", "_per_second")


def run_args(tiny_encoder_dir: str, output_dir) -> list[str]:
    """A cross model trained for 12 steps of 2 pairs, saving a checkpoint every 2 steps (the default
    `--save_total_limit 1` keeps the last), then evaluated on dev and predicting the test pairs."""
    return [
        SCRIPT, "--arch", "cross", "--model_name_or_path", tiny_encoder_dir, "--dataset_name", str(STSB_DIR),
        "--max_train_samples", "24", "--max_eval_samples", "8", "--max_predict_samples", "8",
        "--per_device_train_batch_size", "2", "--num_train_epochs", "1", "--learning_rate", "1e-3",
        "--eval_strategy", "no", "--load_best_model_at_end", "false", "--save_strategy", "steps",
        "--save_steps", "2", "--logging_steps", "1", "--seed", "7", "--disable_tqdm", "true",
        "--do_train", "--do_eval", "--do_predict", "--output_dir", str(output_dir),
    ]  # fmt: skip


def run(args: list[str]) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=CPU_ONLY, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def model_metrics(output_dir) -> dict:
    """The evaluation and test metrics of a run (`train_loss` is left out: after resuming, the Trainer
    reports the mean loss of the steps it ran in that call)."""
    results = json.loads((output_dir / "all_results.json").read_text())
    return {
        key: value
        for key, value in results.items()
        if key.startswith(("eval_", "test_")) and not key.endswith(TIMINGS)
    }


def step_losses(output_dir) -> list[dict]:
    """The loss, gradient norm and learning rate logged at each training step."""
    history = json.loads((output_dir / "trainer_state.json").read_text())["log_history"]
    return [entry for entry in history if "loss" in entry]


def assert_same_weights(output_dir, reference_dir) -> None:
    weights, reference = load_file(output_dir / "model.safetensors"), load_file(reference_dir / "model.safetensors")
    assert weights.keys() == reference.keys()
    for key in reference:
        assert torch.equal(weights[key], reference[key]), key


def complete_checkpoints(output_dir) -> list[str]:
    """The checkpoints the Trainer has finished saving (it writes trainer_state.json last)."""
    if not output_dir.is_dir():
        return []
    return sorted(
        (path.name for path in output_dir.glob("checkpoint-*") if (path / "trainer_state.json").is_file()),
        key=lambda name: int(name.split("-")[1]),
    )


@pytest.fixture(scope="module")
def reference(tiny_encoder_dir, tmp_path_factory):
    """The uninterrupted run: its output folder and what it printed."""
    output_dir = tmp_path_factory.mktemp("reproducibility") / "reference"
    result = run(run_args(tiny_encoder_dir, output_dir))
    return output_dir, result.stdout + result.stderr


def test_a_cpu_run_prints_none_of_the_setup_warnings(reference):
    _, output = reference
    assert_no_setup_warnings(output)


def test_killed_run_resumes_to_the_uninterrupted_result(run_sts_module, reference, tiny_encoder_dir, tmp_path, capsys):
    """SIGKILL once a checkpoint is saved, mid-epoch; rerunning into the folder is refused unless asked to
    resume; `--resume_from_checkpoint true` then ends with the reference's weights, step losses, metrics
    and predictions, also when the run was killed while saving its next checkpoint."""
    reference_dir, _ = reference
    output_dir = tmp_path / "out"
    args = run_args(tiny_encoder_dir, output_dir)
    process = subprocess.Popen(
        [sys.executable, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=CPU_ONLY
    )
    try:
        deadline = time.monotonic() + 240
        while not complete_checkpoints(output_dir) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the run ended before it was killed"
    checkpoints = complete_checkpoints(output_dir)
    assert checkpoints, "no checkpoint was saved in 240 s"
    last = output_dir / checkpoints[-1]
    steps = json.loads((last / "trainer_state.json").read_text())
    # killed within the epoch, as a rule at step 2 (only a test process starved for the whole run gets later)
    assert 0 < steps["global_step"] <= json.loads((reference_dir / "trainer_state.json").read_text())["global_step"]

    # Running again without saying what to do with the checkpoint would start again from step 0 beside it.
    assert run_sts_module.cli(args[1:]) == 1
    assert f"pass --resume_from_checkpoint true to resume from {last.name}" in capsys.readouterr().err

    # Killed while saving the next checkpoint: its weights are written, its trainer_state.json is not.
    partial = output_dir / f"checkpoint-{steps['global_step'] + 2}"
    if not partial.exists():
        shutil.copytree(last, partial, ignore=shutil.ignore_patterns("trainer_state.json"))

    run([*args, "--resume_from_checkpoint", "true"])
    assert_same_weights(output_dir, reference_dir)
    assert step_losses(output_dir) == step_losses(reference_dir)
    assert model_metrics(output_dir) == model_metrics(reference_dir)
    assert (output_dir / "predict_results.tsv").read_bytes() == (reference_dir / "predict_results.tsv").read_bytes()


def test_the_same_seed_gives_the_same_predictions(reference, tiny_encoder_dir, tmp_path):
    reference_dir, _ = reference
    run(run_args(tiny_encoder_dir, tmp_path / "again"))
    assert (tmp_path / "again" / "predict_results.tsv").read_bytes() == (
        reference_dir / "predict_results.tsv"
    ).read_bytes()
    assert_same_weights(tmp_path / "again", reference_dir)
    assert model_metrics(tmp_path / "again") == model_metrics(reference_dir)
