"""STSTrainingArguments: defaults of the STS runs, and the CPU used when there is no GPU."""

from __future__ import annotations

import json
import os

import pytest
import torch

from sts_models import training_args
from sts_models.cli.arguments import parse_args
from sts_models.errors import STSUserError
from sts_models.training_args import STSTrainingArguments, has_accelerator, resolve_bf16

from .conftest import STSB_DIR

needs_no_accelerator = pytest.mark.skipif(has_accelerator(), reason="checks the fallback of machines without a GPU")


@needs_no_accelerator
def test_without_a_gpu_bf16_trains_on_the_cpu(tmp_path):
    args = STSTrainingArguments(output_dir=str(tmp_path), bf16=True)  # the Trainer alone would stop here
    assert args.use_cpu and args.bf16 and args.device == torch.device("cpu")


@needs_no_accelerator
def test_without_a_gpu_nothing_is_set_up_for_one(tmp_path, monkeypatch):
    """No pinned memory for the DataLoader, and DeepSpeed told the accelerator instead of guessing it aloud."""
    monkeypatch.delenv("DS_ACCELERATOR", raising=False)
    args = STSTrainingArguments(output_dir=str(tmp_path))
    assert args.dataloader_pin_memory is False
    assert os.environ["DS_ACCELERATOR"] == "cpu"
    monkeypatch.setenv("DS_ACCELERATOR", "mps")
    STSTrainingArguments(output_dir=str(tmp_path))
    assert os.environ["DS_ACCELERATOR"] == "mps"  # the user's choice stays


def test_defaults_select_on_dev_spearman_and_skip_the_unused_parameter_search(tmp_path):
    args = STSTrainingArguments(output_dir=str(tmp_path))
    assert args.eval_strategy == "epoch" and args.load_best_model_at_end and args.metric_for_best_model == "spearman"
    assert args.ddp_find_unused_parameters is False


@needs_no_accelerator
def test_bf16_run_on_the_cpu(run_sts_module, tiny_encoder_dir, tmp_path):
    output_dir = tmp_path / "out"
    run_sts_module.main(
        ["--arch", "siamese", "--model_name_or_path", tiny_encoder_dir, "--dataset_name", str(STSB_DIR),
         "--max_train_samples", "16", "--max_eval_samples", "16", "--num_train_epochs", "1", "--bf16",
         "--do_train", "--do_eval", "--output_dir", str(output_dir)]
    )  # fmt: skip
    results = json.loads((output_dir / "all_results.json").read_text())
    assert results["train_loss"] > 0 and -1 <= results["eval_spearman"] <= 1
    assert json.loads((output_dir / "config.json").read_text())["dtype"] == "float32"  # master weights stay fp32


@pytest.mark.parametrize(
    ("value", "fp16", "accelerator", "native", "expected"),
    [
        ("auto", False, False, True, True),  # a CPU run on a CPU with bf16 instructions
        ("auto", False, False, False, False),  # emulated bf16 would be slower than float32
        ("auto", False, True, True, False),  # a GPU: float32 (MiniLM-sized batches measured slower in bf16)
        ("auto", True, False, True, False),  # --fp16 asked for
        ("true", False, False, False, True),
        ("False", False, False, True, False),
        (True, False, False, False, True),
    ],
)
def test_bf16_auto(monkeypatch, value, fp16, accelerator, native, expected):
    monkeypatch.setattr(training_args, "has_accelerator", lambda: accelerator)
    monkeypatch.setattr(training_args, "cpu_has_native_bf16", lambda: native)
    assert resolve_bf16(value, fp16) is expected


def test_bf16_flag_takes_auto_and_no_value(run_sts_module, monkeypatch):
    monkeypatch.setattr(training_args, "cpu_has_native_bf16", lambda: True)
    parse = run_sts_module.parse_args
    assert parse(["--output_dir", "x", "--bf16"])[2].bf16 is True
    assert parse(["--output_dir", "x"])[2].bf16 is False
    if not has_accelerator():
        assert parse(["--output_dir", "x", "--bf16", "auto"])[2].bf16 is True
    with pytest.raises(STSUserError, match="--bf16: expected true, false or auto, got 'sometimes'"):
        parse(["--output_dir", "x", "--bf16", "sometimes"])


@pytest.mark.parametrize(
    "argv, report_to",
    [
        ([], []),  # transformers' default, "none"
        (["--report_to", "none"], []),
        (["--report_to", "tensorboard", "wandb"], ["tensorboard", "wandb"]),  # transformers' own flag takes one
    ],
)
def test_report_to_takes_one_or_more_integrations(argv, report_to, tmp_path):
    assert parse_args(["--arch", "siamese", "--output_dir", str(tmp_path), *argv])[2].report_to == report_to


def test_a_run_file_lists_its_report_to_integrations(tmp_path):
    run_file = tmp_path / "run.yaml"
    run_file.write_text(f"arch: siamese\noutput_dir: {tmp_path}\nreport_to: [tensorboard, wandb]\n")
    assert parse_args([str(run_file)])[2].report_to == ["tensorboard", "wandb"]


@pytest.mark.parametrize("report_to", [["tensorbord"], ["tensorboard", "none"]])
def test_a_report_to_name_that_is_no_integration_is_refused_in_one_line(report_to, tmp_path):
    """The Trainer would stop with a ValueError traceback once built; the arguments refuse it before any work."""
    with pytest.raises(STSUserError, match=rf"^--report_to {' '.join(report_to)}: '{report_to[-1]}' is not an "):
        STSTrainingArguments(output_dir=str(tmp_path), report_to=report_to)
