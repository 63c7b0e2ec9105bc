"""`TrainingArguments` whose defaults pick the best checkpoint on dev Spearman."""

from __future__ import annotations

import base64
import importlib.util
import json
import math
import os
from argparse import ArgumentTypeError
from dataclasses import dataclass, field

import torch
from transformers import TrainingArguments
from transformers.hf_argparser import string_to_bool
from transformers.integrations import INTEGRATION_TO_CALLBACK
from transformers.trainer_utils import IntervalStrategy
from transformers.utils import is_torch_xla_available

from .errors import STSUserError, check_positive_int


def has_accelerator() -> bool:
    """Whether PyTorch sees a GPU or another accelerator (CUDA, ROCm, XPU, MPS, NPU, ... or an XLA device)."""
    return torch.accelerator.is_available() or is_torch_xla_available()


def tell_deepspeed_the_cpu() -> None:
    """On a machine without a GPU, tell DeepSpeed (when installed) to use the CPU: transformers and accelerate import
    it (in `save_pretrained`, in every training run), and left to guess it warns "Setting accelerator to CPU. If you
    have GPU or other accelerator, we were unable to detect it." An explicit `DS_ACCELERATOR` is kept."""
    if "DS_ACCELERATOR" not in os.environ and not has_accelerator() and importlib.util.find_spec("deepspeed"):
        os.environ["DS_ACCELERATOR"] = "cpu"


def cpu_has_native_bf16() -> bool:
    """Whether this CPU has bf16 instructions (AVX512-BF16 or AMX), on which bf16 autocast trains faster than
    float32; without them bf16 is emulated and slower."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, check, lambda: False)() for check in checks)


def resolve_bf16(value, fp16: bool = False) -> bool:
    """`--bf16` as a bool: true/false (or no value: true), or `auto`, which is bf16 on a CPU run (no GPU) on a CPU
    with bf16 instructions, and float32 elsewhere: on a GPU, batches of MiniLM's size measured slower in bf16."""
    if isinstance(value, bool):
        return value
    if str(value).strip().lower() == "auto":
        return not fp16 and not has_accelerator() and cpu_has_native_bf16()
    try:
        return string_to_bool(str(value).strip())  # what HfArgumentParser accepts for a bool flag
    except ArgumentTypeError:
        raise STSUserError(f"--bf16: expected true, false or auto, got {value!r}") from None


def check_deepspeed_config(value) -> None:
    """Refuse a `--deepspeed` value the Trainer could not read, in one line instead of a traceback: DeepSpeed
    missing, no such file, or not a JSON object (a file, an inline JSON string or base64 JSON, as the Trainer takes)."""
    if not value or isinstance(value, dict):
        return
    if importlib.util.find_spec("deepspeed") is None:
        raise STSUserError("--deepspeed needs DeepSpeed: pip install 'sts-models[deepspeed]'")
    if os.path.isfile(value):
        source = value
        try:
            with open(value, encoding="utf-8") as handle:
                config = json.load(handle)
        except json.JSONDecodeError as error:
            raise STSUserError(f"{value}: not valid JSON ({error})") from None
    elif value.lstrip().startswith("{"):
        source = "--deepspeed"
        try:
            config = json.loads(value)
        except json.JSONDecodeError as error:
            raise STSUserError(f"--deepspeed: not valid JSON ({error})") from None
    else:
        try:
            config = json.loads(base64.urlsafe_b64decode(value))
        except ValueError:  # not base64 (binascii.Error), not UTF-8 or not JSON
            raise STSUserError(f"DeepSpeed config file not found: {value}") from None
        source = "--deepspeed"
    if not isinstance(config, dict):
        raise STSUserError(f"{source}: expected a JSON object of DeepSpeed options, got {type(config).__name__}")
    zero = config.get("zero_optimization")
    if isinstance(zero, dict):  # DeepSpeed validates it only once training starts, with a pydantic traceback
        from deepspeed.runtime.zero.config import DeepSpeedZeroConfig
        from pydantic import ValidationError

        try:
            DeepSpeedZeroConfig(**{key: item for key, item in zero.items() if item != "auto"})
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in ("zero_optimization", *first["loc"]))
            raise STSUserError(f"{source}: {where}: {first['msg']} (got {first.get('input')!r})") from None


@dataclass
class STSTrainingArguments(TrainingArguments):
    """`transformers.TrainingArguments`, evaluating and saving every epoch and reloading the checkpoint
    with the best dev Spearman at the end (standard protocol: select on dev, report test)."""

    eval_strategy: str = field(default="epoch", metadata={"help": "When to evaluate: 'no', 'steps' or 'epoch'."})
    save_strategy: str = field(default="epoch", metadata={"help": "When to save: 'no', 'steps', 'epoch' or 'best'."})
    load_best_model_at_end: bool = field(
        default=True, metadata={"help": "Reload the checkpoint with the best `metric_for_best_model` after training."}
    )
    metric_for_best_model: str = field(default="spearman", metadata={"help": "Metric that picks the best checkpoint."})
    save_total_limit: int | None = field(
        default=1, metadata={"help": "Checkpoints kept in output_dir (the best one is always kept)."}
    )

    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Let run_sts.py write into a non-empty output_dir: it first deletes the outputs of the earlier "
            "run there (model, results, checkpoints, model code), so that none stays beside the new run's."
        },
    )

    bf16: str = field(
        default="false",
        metadata={
            "help": "Train (and evaluate) under bf16 mixed precision: true, false, or auto: where bf16 is native (a "
            "CUDA GPU with bf16, a CPU with AVX512-BF16 or AMX), a few training steps are timed in each precision "
            "and bf16 is used if it is clearly faster, else float32. `--bf16` alone is true.",
            "nargs": "?",
            "const": "true",
        },
    )

    report_to: list[str] | None = field(
        default_factory=lambda: ["none"],
        metadata={
            "help": "The integrations to report results and logs to, one or more (`--report_to wandb tensorboard`; "
            "a list in a run file): 'all' for every installed one, 'none' for none. transformers' own flag takes one."
        },
    )

    head_learning_rate: float | None = field(
        default=None,
        metadata={"help": "Learning rate of the layers on top of the encoder (default: learning_rate)."},
    )
    layerwise_lr_decay: float = field(
        default=1.0,
        metadata={"help": "Each encoder layer trains at this factor times the learning rate of the layer above."},
    )

    ddp_find_unused_parameters: bool | None = field(
        default=False,
        metadata={
            "help": "Every parameter of the STS models takes part in each step, so DDP need not look for unused "
            "ones (an extra pass over the graph); a model that leaves one out fails loudly instead."
        },
    )

    remove_unused_columns: bool = field(
        default=False,
        metadata={
            "help": "The tokenized datasets hold only model inputs, labels and, for "
            "train_sampling_strategy group_by_length or batch_rebalance, the length column its sampler reads; the pair collator "
            "drops any other key, so nothing needs removing (and removing would drop the length column)."
        },
    )

    def __post_init__(self):
        # `do_eval` turns on by itself when eval_strategy is not "no"; remember whether the user asked.
        self.requested_do_eval = self.do_eval
        # `auto`: the rule of `resolve_bf16` for now; where `bf16_by_measurement` (below), timing the run decides
        self.bf16_auto = str(self.bf16).strip().lower() == "auto" and not self.fp16
        self.bf16 = resolve_bf16(self.bf16, self.fp16)  # a bool from here on, as the Trainer expects
        if self.greater_is_better is None and self.metric_for_best_model in ("mse", "eval_mse"):
            self.greater_is_better = False  # the Trainer takes every metric but "...loss" as higher-is-better
        self.check_numbers()
        check_deepspeed_config(self.deepspeed)
        if not has_accelerator():
            # No GPU: say so to the Trainer, so that `--bf16` trains in bf16 on the CPU instead of stopping,
            # and a multi-process launch (torchrun, `accelerate launch --multi_gpu`, DeepSpeed's CPU
            # accelerator) joins one process group over gloo instead of training one copy per process. The
            # Trainer then also turns off `dataloader_pin_memory` (the DataLoader would warn about it on the CPU).
            self.use_cpu = True
            tell_deepspeed_the_cpu()
        super().__post_init__()
        self.check_report_to_names()
        if self.deepspeed_plugin is not None:
            self.check_deepspeed_keeps_learning_rates()

    def check_report_to_names(self) -> None:
        """Refuse a --report_to name that is no integration (a misspelling; 'all' or 'none' beside others) in one line
        before any work: the Trainer would stop with a `ValueError` traceback once it is built."""
        for name in self.report_to:
            if name not in INTEGRATION_TO_CALLBACK:
                raise STSUserError(
                    f"--report_to {' '.join(map(str, self.report_to))}: {name!r} is not an integration; choose from "
                    f"{', '.join(sorted(INTEGRATION_TO_CALLBACK))}, or 'all' or 'none' alone"
                )

    @property
    def sampling_seed(self) -> int:
        """The seed of what the run draws from its data (the samplers' order, random silver pairs): `--data_seed`
        where given, else `--seed`, as the stock Trainer seeds its samplers."""
        return self.data_seed if self.data_seed is not None else self.seed

    @property
    def bf16_by_measurement(self) -> bool:
        """Whether `--bf16 auto` is left to a measurement of the run's steps (`sts_models.precision`): not under
        DeepSpeed (its config took the precision when the arguments were parsed), nor where `accelerate launch
        --mixed_precision` chose one, nor on an accelerator other than a CUDA GPU with bf16 (the rule stands), nor
        on a CPU without bf16 instructions, where bf16 is emulated (0.08x float32's samples/s on a 2-core AMD EPYC
        with AVX2 only, docs/performance.md): float32, as the rule says, without spending the time to time it."""
        if not self.bf16_auto or self.deepspeed_plugin is not None:
            return False
        if os.environ.get("ACCELERATE_MIXED_PRECISION", "no") != "no":
            return False
        device = self.device
        if device.type == "cpu":
            return cpu_has_native_bf16()
        return device.type == "cuda" and torch.cuda.is_bf16_supported()

    def set_bf16(self, bf16: bool) -> None:
        """Train in bf16 autocast or not, after `__post_init__` (which derived `mixed_precision` from `bf16`)."""
        self.bf16 = bf16
        self.mixed_precision = "bf16" if bf16 else "no"

    def check_numbers(self) -> None:
        """Refuse, before any work, batch sizes (and steps to accumulate) that would fail only once training (or,
        after it, evaluation) starts, learning rates that are negative, infinite or NaN (NaN weights) or that decay
        to nothing or grow down the layers, and the other numbers the Trainer refuses only with a traceback, after
        `--overwrite_output_dir` has deleted the earlier run (seed, Adam's epsilon, workers, label smoothing)."""
        for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
            check_positive_int(f"--{name}", getattr(self, name))
        for name in ("learning_rate", "head_learning_rate", "weight_decay"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise STSUserError(f"--{name} must be a finite number >= 0, got {value}")
        if not 0.0 < self.layerwise_lr_decay <= 1.0:
            raise STSUserError(f"--layerwise_lr_decay must be in (0, 1], got {self.layerwise_lr_decay}")
        if not 0 <= self.seed < 2**32:  # numpy's seeds
            raise STSUserError(f"--seed must be between 0 and 2**32 - 1, got {self.seed}")
        if not (math.isfinite(self.adam_epsilon) and self.adam_epsilon >= 0):
            raise STSUserError(f"--adam_epsilon must be a finite number >= 0, got {self.adam_epsilon}")
        if self.dataloader_num_workers < 0:
            raise STSUserError(f"--dataloader_num_workers must be 0 or more, got {self.dataloader_num_workers}")
        if self.label_smoothing_factor:  # the Trainer's label smoother reads class logits, which a score has none of
            raise STSUserError(
                f"--label_smoothing_factor {self.label_smoothing_factor}: the STS models score pairs, they have no "
                "class labels to smooth (leave it at 0)"
            )

    def check_columns_kept(self, encodes_pairs_jointly: bool) -> None:
        """`--remove_unused_columns true` drops every column the model's `forward` takes no argument for: refuse it
        where the length-grouped sampler reads the length column, which it cannot infer for a model that takes one
        input per sentence (`siamese`, `cross`)."""
        if self.remove_unused_columns and self.samples_by_length and not encodes_pairs_jointly:
            raise STSUserError(
                f"--train_sampling_strategy {self.train_sampling_strategy} needs --remove_unused_columns false for "
                "this model: the Trainer would drop the length column its sampler reads (the model takes one input "
                "per sentence)"
            )

    @property
    def samples_by_length(self) -> bool:
        """Whether the training sampler reads each example's length (`length_column_name`): the stock Trainer's
        `group_by_length` and `batch_rebalance` strategies, which cannot infer it for one input per sentence."""
        return self.train_sampling_strategy in ("group_by_length", "batch_rebalance")

    def check_deepspeed_keeps_learning_rates(self) -> None:
        """A DeepSpeed "optimizer" section makes DeepSpeed build its own optimizer over one parameter group, and
        a "scheduler" section gives every group the same rate: either would silently drop the per-layer rates."""
        if self.head_learning_rate is None and self.layerwise_lr_decay == 1.0:
            return
        sections = [name for name in ("optimizer", "scheduler") if name in self.deepspeed_plugin.deepspeed_config]
        if sections:
            raise STSUserError(
                f"the DeepSpeed config's {' and '.join(map(repr, sections))} section would override "
                "--head_learning_rate and --layerwise_lr_decay: remove it (the Trainer's own optimizer and schedule "
                "then run, as with configs/deepspeed_zero2.json) or drop those flags"
            )

    def disable_evaluation(self) -> None:
        """No dev data: train without evaluating or picking the best checkpoint."""
        self.eval_strategy = IntervalStrategy.NO
        self.do_eval = False
        self.load_best_model_at_end = False

    def select_best_by_loss(self, labelled: bool) -> None:
        """Dev data without scores (e.g. triplets): pick the checkpoint with the lowest dev loss.

        For dev data without labels (positive pairs, triplets), the Trainer must ask the model for a
        loss anyway: with no label names it relies on the model's `return_loss=True`.
        """
        if self.metric_for_best_model in ("spearman", "eval_spearman"):
            self.metric_for_best_model = "loss"
            self.greater_is_better = False
        if not labelled:
            self.label_names = []
