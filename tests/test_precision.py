"""`--bf16 auto` by measurement (`sts_models.precision`): the timed steps leave the model and the random state as
they were, each time belongs to its precision, bf16 is chosen only when clearly faster, and the run trains in
the precision chosen."""

from __future__ import annotations

import json

import pytest
import torch
from datasets import Dataset

from sts_models import precision, training_args
from sts_models.training_args import STSTrainingArguments, has_accelerator

from .conftest import STSB_DIR, read_stsb

needs_no_accelerator = pytest.mark.skipif(has_accelerator(), reason="measures on the CPU")


@pytest.fixture
def train() -> Dataset:
    rows = read_stsb("sts-train.csv", limit=40)
    return Dataset.from_dict(
        {key: list(values) for key, values in zip(("sentence1", "sentence2", "score"), zip(*rows))}
    )


class FakeClock:
    """A clock whose steps take 1 s under bf16 autocast and 3 s without (read at each step's start)."""

    def __init__(self):
        self.now, self.started_in_bf16 = 0.0, None

    def __call__(self) -> float:
        if self.started_in_bf16 is None:
            self.started_in_bf16 = torch.is_autocast_enabled("cpu")
        else:
            self.now += 1.0 if self.started_in_bf16 else 3.0
            self.started_in_bf16 = None
        return self.now


def test_timed_steps_leave_the_model_and_the_random_state_as_they_were(tiny_model, train):
    batches = precision.measurement_batches(tiny_model, train, batch_size=4, seed=0)
    assert len(batches) == precision.MEASURED_BATCHES + 1 and all(len(b["labels"]) == 4 for b in batches)
    weights = {name: tensor.clone() for name, tensor in tiny_model.state_dict().items()}
    rng = torch.get_rng_state()
    assert not tiny_model.training

    times = precision.step_seconds(tiny_model, batches, torch.device("cpu"), clock=FakeClock())

    assert times == {"fp32": [3.0] * precision.MEASURED_BATCHES, "bf16": [1.0] * precision.MEASURED_BATCHES}
    assert all(torch.equal(weights[name], tensor) for name, tensor in tiny_model.state_dict().items())
    assert all(parameter.grad is None for parameter in tiny_model.parameters())
    assert torch.equal(torch.get_rng_state(), rng)  # dropout drew from a forked generator
    assert not tiny_model.training


@pytest.mark.parametrize(
    "fp32, bf16, expected",
    [(1.0, 0.5, True), (1.0, 0.95, False), (1.0, 2.0, False)],  # bf16 must win by more than BF16_MARGIN
)
def test_bf16_only_when_clearly_faster(tiny_encoder_dir, train, monkeypatch, fp32, bf16, expected):
    import sts_models

    model = sts_models.STSSiameseModel.from_encoder(tiny_encoder_dir)
    n = precision.MEASURED_BATCHES
    monkeypatch.setattr(precision, "step_seconds", lambda *args: {"fp32": [fp32] * n, "bf16": [bf16] * n})
    assert precision.bf16_is_faster(model, train, 4, 0, torch.device("cpu")) is expected


@needs_no_accelerator
@pytest.mark.parametrize(
    "flags, native, env, expected",
    [
        (["--bf16", "auto"], True, None, True),
        (["--bf16", "auto"], False, None, False),  # emulated bf16: float32 without measuring
        (["--bf16", "true"], True, None, False),  # the user chose
        (["--bf16", "auto", "--fp16"], True, None, False),
        (["--bf16", "auto"], True, "fp16", False),  # accelerate launch --mixed_precision fp16 chose
    ],
)
def test_which_runs_measure(run_sts_module, monkeypatch, tmp_path, flags, native, env, expected):
    monkeypatch.setattr(training_args, "cpu_has_native_bf16", lambda: native)
    if env:
        monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", env)
    if "--fp16" in flags:
        monkeypatch.setattr(STSTrainingArguments, "_validate_args", lambda self: None)  # fp16 needs a GPU
    args = run_sts_module.parse_args(["--output_dir", str(tmp_path), *flags])[2]
    assert args.bf16_by_measurement is expected


@needs_no_accelerator
@pytest.mark.parametrize("faster", [True, False])
def test_the_run_trains_in_the_precision_measured(run_sts_module, tiny_encoder_dir, tmp_path, monkeypatch, faster):
    monkeypatch.setattr(training_args, "cpu_has_native_bf16", lambda: True)  # the rule alone: bf16
    measured = []
    monkeypatch.setattr(run_sts_module, "bf16_is_faster", lambda *args: measured.append(args) or faster)
    output_dir = tmp_path / "out"
    run_sts_module.main(
        ["--arch", "siamese", "--model_name_or_path", tiny_encoder_dir, "--dataset_name", str(STSB_DIR),
         "--max_train_samples", "16", "--max_steps", "1", "--do_train", "--bf16", "auto", "--output_dir", str(output_dir)]
    )  # fmt: skip
    assert len(measured) == 1  # once, on the rank-0 process's device: the CPU here
    saved = torch.load(output_dir / "training_args.bin", weights_only=False)  # the pickle the Trainer just wrote
    assert (saved.bf16, saved.mixed_precision) == ((True, "bf16") if faster else (False, "no"))
    card = (output_dir / "README.md").read_text()
    assert ("bf16 (mixed)" if faster else "fp32") in card
    assert json.loads((output_dir / "all_results.json").read_text())["train_samples"] == 16
