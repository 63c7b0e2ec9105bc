"""DeepSpeed ZeRO-2/3 with the configs shipped in configs/: real steps on two CPU processes (DeepSpeed's CPU
accelerator over gloo), their "auto" values filled by the Trainer, and the one-line errors of `--deepspeed`."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from scipy.stats import spearmanr
from transformers import AutoModel
from transformers.integrations.deepspeed import unset_hf_deepspeed_config

import sts_models
from sts_models.errors import STSUserError
from sts_models.training_args import STSTrainingArguments

from .conftest import REPO_ROOT, STSB_DIR, read_stsb

SCRIPT = str(REPO_ROOT / "run_sts.py")
CONFIGS = {stage: REPO_ROOT / "configs" / f"deepspeed_zero{stage}.json" for stage in (2, 3)}


@pytest.fixture
def no_deepspeed_config_left():
    """`TrainingArguments(deepspeed=...)` registers its config globally (ZeRO-3 would then shard every later
    `from_pretrained` in this process): unregister it after each test."""
    yield
    unset_hf_deepspeed_config()


def run_on_two_cpu_processes(*args: str) -> subprocess.CompletedProcess:
    """`run_sts.py` under `torch.distributed.run` with DeepSpeed's CPU accelerator (GPUs hidden, if any)."""
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", SCRIPT, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "DS_ACCELERATOR": "cpu", "CUDA_VISIBLE_DEVICES": ""},
        timeout=600,
    )


@pytest.mark.parametrize("stage", [2, 3])
def test_zero_trains_on_two_cpu_processes_and_saves_full_weights(stage, tiny_encoder_dir, tmp_path):
    """2 steps of ZeRO-2/3 (`torch.distributed.run`; no GPU, so `use_cpu` is set by itself): optimizer states sharded over both processes,
    our per-layer learning rates kept, the best checkpoint reloaded, and the saved model whole."""
    output_dir = tmp_path / "out"
    result = run_on_two_cpu_processes(
        "--deepspeed", str(CONFIGS[stage]),
        "--arch", "cross", "--model_name_or_path", tiny_encoder_dir, "--dataset_name", str(STSB_DIR),
        "--max_train_samples", "32", "--max_eval_samples", "16", "--max_predict_samples", "16",
        "--num_train_epochs", "1", "--per_device_train_batch_size", "8",
        "--learning_rate", "1e-4", "--head_learning_rate", "1e-3", "--layerwise_lr_decay", "0.5",
        "--do_train", "--do_eval", "--do_predict", "--output_dir", str(output_dir),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((output_dir / "trainer_state.json").read_text())["global_step"] == 2  # 32 / (2 x 8)

    # DeepSpeed's own checkpoint: the stage asked for, "auto" sizes filled from the model, one shard per process
    step_dir = output_dir / "checkpoint-2" / "global_step2"
    model_states = "zero_pp_rank_0_mp_rank_00_model_states.pt" if stage == 3 else "mp_rank_00_model_states.pt"
    states = torch.load(step_dir / model_states, map_location="cpu", weights_only=False)
    zero = states["ds_config"]["zero_optimization"]
    assert zero["stage"] == stage and zero["reduce_bucket_size"] == 32 * 32  # hidden size 32
    assert states["ds_config"]["train_micro_batch_size_per_gpu"] == 8 and states["dp_world_size"] == 2
    shards = sorted(path.name for path in step_dir.glob("zero_pp_rank_*_optim_states.pt"))
    assert shards == ["zero_pp_rank_0_mp_rank_00_optim_states.pt", "zero_pp_rank_1_mp_rank_00_optim_states.pt"]
    optimizer = torch.load(step_dir / shards[0], map_location="cpu", weights_only=False)["optimizer_state_dict"]
    groups = (optimizer.get("optimizer_state_dict") or optimizer["base_optimizer_state"])["param_groups"]
    # the Trainer's optimizer over our groups: 2 encoder layers at 1e-4 and 5e-5, embeddings 2.5e-5, head 1e-3
    assert sorted({group["initial_lr"] for group in groups}) == pytest.approx([2.5e-5, 5e-5, 1e-4, 1e-3])

    # the saved model holds every weight in full (ZeRO-3 gathers them), loads without DeepSpeed, and predicts
    # what the run evaluated and wrote
    model = AutoModel.from_pretrained(output_dir)
    saved = load_file(output_dir / "model.safetensors")
    assert {name: tuple(tensor.shape) for name, tensor in saved.items()} == {
        name: tuple(tensor.shape) for name, tensor in model.state_dict().items() if name in saved
    }
    assert sum(tensor.numel() for tensor in saved.values()) == model.num_parameters()
    results = json.loads((output_dir / "all_results.json").read_text())
    dev = read_stsb("sts-dev.csv", limit=16)
    spearman = spearmanr(model.predict([(a, b) for a, b, _ in dev]), [s for *_, s in dev])[0]
    assert spearman == pytest.approx(results["eval_spearman"], abs=1e-4)
    test = read_stsb("sts-test.csv", limit=16)
    lines = (output_dir / "predict_results.tsv").read_text(encoding="utf-8").splitlines()[1:]
    written = [float(line.split("\t")[4]) for line in lines]
    assert written == pytest.approx(list(model.predict([(a, b) for a, b, _ in test])), abs=1e-4)
    assert (output_dir / "README.md").exists() and (output_dir / "tokenizer.json").exists()


@pytest.mark.parametrize("arch", list(sts_models.ARCHITECTURES))
@pytest.mark.parametrize("stage", [2, 3])
def test_every_auto_value_of_the_shipped_configs_is_filled(
    arch, stage, tiny_encoder_dir, tmp_path, no_deepspeed_config_left
):
    """What the Trainer does to the config before `deepspeed.initialize`, for every arch (the bucket sizes come
    from `config.hidden_size`, which our configs take from the encoder)."""
    model = sts_models.get_model_class(arch).from_encoder(tiny_encoder_dir)  # first: ZeRO-3 args would shard it
    args = STSTrainingArguments(
        output_dir=str(tmp_path), deepspeed=str(CONFIGS[stage]), per_device_train_batch_size=4, max_grad_norm=0.5
    )
    args.hf_deepspeed_config.trainer_config_finalize(args, model, num_training_steps=10)
    config = args.hf_deepspeed_config.config
    assert "auto" not in json.dumps(config)
    assert config["train_micro_batch_size_per_gpu"] == 4 and config["gradient_clipping"] == 0.5
    assert config["zero_optimization"]["reduce_bucket_size"] == 32 * 32
    assert not config["fp16"]["enabled"] and not config["bf16"]["enabled"]
    assert "optimizer" not in config and "scheduler" not in config  # the Trainer's own, with our parameter groups
    if stage == 3:
        assert config["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"]  # full weights on save


@pytest.fixture(scope="module")
def run_sts():
    from sts_models.cli import train

    return train


def test_inline_deepspeed_config_in_a_yaml_run_file_behind_the_launchers_flag(
    run_sts, tmp_path, monkeypatch, no_deepspeed_config_left
):
    """A `deepspeed:` mapping in the run file, and the `deepspeed` launcher's `--local_rank=N` before the file."""
    monkeypatch.setenv("RANK", "0")  # as the launcher sets it
    run_file = tmp_path / "run.yaml"
    run_file.write_text(
        f"output_dir: {tmp_path / 'out'}\n"
        "deepspeed:\n  zero_optimization:\n    stage: 2\n  train_micro_batch_size_per_gpu: auto\n"
    )
    _, _, args, _ = run_sts.parse_args(["--local_rank=0", str(run_file)])
    assert args.deepspeed_plugin.deepspeed_config["zero_optimization"] == {"stage": 2}
    assert args.deepspeed_plugin.deepspeed_config["train_micro_batch_size_per_gpu"] == 8  # the Trainer's default


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "DeepSpeed config file not found: {path}"),
        ('{"zero_optimization": {"stage": 2},}', r"{path}: not valid JSON \(Expecting property name"),
        ("[2]", "{path}: expected a JSON object of DeepSpeed options, got list"),
        (
            '{"zero_optimization": {"stage": 7}}',
            r"{path}: zero_optimization.stage: Input should be 0, 1, 2, 3 .*\(got 7\)",
        ),
        (
            '{"zero_optimization": {"stage": 2, "overlap_comm": "maybe"}}',
            r"{path}: zero_optimization.overlap_comm: Input should be a valid boolean.* \(got 'maybe'\)",
        ),
        (
            '{"zero_optimization": {"stage": 2, "bogus": 1}}',
            r"{path}: zero_optimization.bogus: Extra inputs are not permitted",
        ),
        (
            '{"optimizer": {"type": "AdamW", "params": {"lr": "auto"}}, "zero_optimization": {"stage": 2}}',
            "the DeepSpeed config's 'optimizer' section would override --head_learning_rate",
        ),
    ],
)
def test_bad_deepspeed_configs_are_one_line_errors(tmp_path, no_deepspeed_config_left, content, message):
    path = tmp_path / "ds.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(STSUserError, match=message.format(path=re.escape(str(path)))):
        STSTrainingArguments(output_dir=str(tmp_path), deepspeed=str(path), head_learning_rate=1e-3)


def test_deepspeed_without_a_launcher_is_a_one_line_error(run_sts, tmp_path, monkeypatch, no_deepspeed_config_left):
    monkeypatch.delenv("RANK", raising=False)
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "mpi4py" else find_spec(name, *a)
    )
    with pytest.raises(STSUserError, match="--deepspeed runs under a launcher, also on one process: deepspeed"):
        run_sts.main(["--deepspeed", str(CONFIGS[2]), "--output_dir", str(tmp_path / "out")])


def test_deepspeed_missing_is_a_one_line_error(tmp_path, monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "deepspeed" else find_spec(name, *a)
    )
    with pytest.raises(STSUserError, match=r"--deepspeed needs DeepSpeed: pip install 'sts-models\[deepspeed\]'"):
        STSTrainingArguments(output_dir=str(tmp_path), deepspeed=str(CONFIGS[2]))


def test_an_optimizer_section_is_fine_without_per_layer_rates(tmp_path, no_deepspeed_config_left):
    path = tmp_path / "ds.json"
    path.write_text('{"optimizer": {"type": "AdamW", "params": {"lr": "auto"}}, "zero_optimization": {"stage": 2}}')
    args = STSTrainingArguments(output_dir=str(tmp_path), deepspeed=str(path), learning_rate=3e-5)
    assert args.hf_deepspeed_config.config["optimizer"]["params"]["lr"] == 3e-5


def test_zero_refuses_the_scalar_parameters_of_cosine_skip_in_one_line(tiny_encoder_dir, tmp_path):
    """DeepSpeed cannot broadcast 0-dimensional parameters (`cosine_skip`'s scale and bias): one line per process
    before any work, instead of its traceback."""
    result = run_on_two_cpu_processes(
        "--deepspeed", str(CONFIGS[2]), "--arch", "cross", "--cosine_skip",
        "--model_name_or_path", tiny_encoder_dir, "--dataset_name", str(STSB_DIR), "--max_train_samples", "16",
        "--do_train", "--output_dir", str(tmp_path / "out"),
    )  # fmt: skip
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("run_sts.py: error: ")]
    assert errors and all(
        "--deepspeed cannot train the 0-dimensional parameters cosine_skip.scale, cosine_skip.bias" in line
        for line in errors
    ), result.stderr[-2000:]
    assert "self.dim() cannot be 0" not in result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
