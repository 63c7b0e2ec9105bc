#!/usr/bin/env python
"""Fine-tune and evaluate an STS model (arch `bert`, `siamese` or `cross`) with the stock `Trainer`.

python run_sts.py --arch cross --output_dir out/cross --do_train --do_eval --do_predict
accelerate launch --config_file configs/accelerate_ddp.yaml --num_processes 4 run_sts.py configs/cross.yaml
deepspeed run_sts.py configs/siamese.yaml --deepspeed configs/deepspeed_zero2.json
"""

from __future__ import annotations

import csv
import difflib
import importlib.util
import json
import logging
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from fnmatch import fnmatch

import datasets
import huggingface_hub
import transformers
import yaml
from safetensors import SafetensorError
from transformers import HfArgumentParser, TrainerCallback, set_seed
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, sort_checkpoints

import sts_models
from sts_models import ARCHITECTURES, DataCollatorForSentencePairs, compute_metrics
from sts_models.architectures import load_model
from sts_models.configuration import PAIR_LOSSES
from sts_models.distillation import DistillationArguments, distilled_training_data, silver_labels
from sts_models.data import (
    DEFAULT_DATASET,
    ENCODING,
    check_data_fits_model,
    detect_data_shape,
    load_sts_dataset,
    tokenize_dataset,
)
from sts_models.errors import STSInputError, run_cli
from sts_models.hub import DEFAULT_MODEL, resolve_model_name_or_path
from sts_models.losses import DATA_SHAPES, LOSSES
from sts_models.metrics import METRIC_NAMES
from sts_models.optimization import optimizer_cls_and_kwargs
from sts_models.trainer import STSTrainer
from sts_models.training_args import STSTrainingArguments

logger = logging.getLogger(__name__)


def switch(help: str):
    """An on/off model option: `--name` alone turns it on, `--name false` off; left out, the config decides."""
    return field(default=None, metadata={"help": help, "nargs": "?", "const": True})


@dataclass
class ModelArguments:
    arch: str | None = field(
        default=None,
        metadata={
            "help": "Architecture of a new model (optional for a saved STS model).",
            "choices": list(ARCHITECTURES),
        },
    )
    model_name_or_path: str = field(
        default=DEFAULT_MODEL,
        metadata={
            "help": "A pretrained encoder (Hub id or folder) to build on, or a saved STS model to continue from."
        },
    )
    pooling: str | None = field(
        default=None, metadata={"help": "Pooling: mean (default), cls or max.", "choices": ["mean", "cls", "max"]}
    )
    head: str | None = field(
        default=None, metadata={"help": "Siamese head: cosine (default) or mlp.", "choices": ["cosine", "mlp"]}
    )
    freeze_layers: int | None = field(
        default=None, metadata={"help": "Freeze the embeddings and the first N encoder layers."}
    )
    max_seq_length: int | None = field(default=None, metadata={"help": "Tokens kept per sequence (default 128)."})
    symmetric: bool | None = switch("bert: read every pair in both orders and average the two scores.")
    cosine_skip: bool | None = switch(
        "cross: add a learned multiple of the cosine of the two sentences' own embeddings to the score."
    )
    cosine_skip_loss_weight: float | None = field(
        default=None,
        metadata={"help": "cross, with --cosine_skip: weight of a CoSENT loss on the two sentences' own cosine."},
    )
    normalize_embeddings: bool | None = switch("Siamese: L2-normalize `encode` output.")
    loss: str | None = field(
        default=None,
        metadata={
            "help": "Training loss. bert, cross: mse (default), binary_cross_entropy or cosent; siamese: the loss "
            "decides the data shape (see docs/embeddings.md).",
            "choices": sorted(set(LOSSES) | set(PAIR_LOSSES)),
        },
    )
    loss_margin: float | None = field(default=None, metadata={"help": "Margin of contrastive and triplet losses."})
    loss_scale: float | None = field(
        default=None, metadata={"help": "Scale (inverse temperature) of cosent, angle and multiple_negatives_ranking."}
    )
    loss_distance: str | None = field(
        default=None,
        metadata={"help": "Distance of contrastive and triplet losses.", "choices": ["euclidean", "cosine"]},
    )
    loss_symmetric: bool | None = switch("multiple_negatives_ranking: rank both ways.")
    gather_across_devices: bool | None = switch(
        "Multi-process training: in-batch losses see the whole global batch, gathered from every "
        "process (see docs/distributed.md)."
    )

    def config_options(self) -> dict:
        """The options that are fields of the model's config, by name (`None`: not given)."""
        options = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("arch", "model_name_or_path")}
        options = {name: value for name, value in options.items() if not name.startswith("loss_")}
        return {**options, "loss_kwargs": self.loss_kwargs()}

    def loss_kwargs(self) -> dict | None:
        names = {
            "margin": self.loss_margin,
            "scale": self.loss_scale,
            "distance": self.loss_distance,
            "symmetric": self.loss_symmetric,
        }
        return {name: value for name, value in names.items() if value is not None} or None


@dataclass
class DataArguments:
    dataset_name: str | None = field(
        default=None,
        metadata={
            "help": f"Hub dataset id or a local STS-B folder (default {DEFAULT_DATASET} when no files are given)."
        },
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "Configuration of the Hub dataset."})
    train_file: str | None = field(default=None, metadata={"help": "csv/tsv/json/jsonl file of training pairs."})
    validation_file: str | None = field(default=None, metadata={"help": "csv/tsv/json/jsonl file of dev pairs."})
    test_file: str | None = field(default=None, metadata={"help": "csv/tsv/json/jsonl file of test pairs."})
    sentence1_column: str = field(default="sentence1", metadata={"help": "Column of the first sentence."})
    sentence2_column: str = field(default="sentence2", metadata={"help": "Column of the second sentence."})
    score_column: str = field(default="score", metadata={"help": "Column of the gold score."})
    data_shape: str | None = field(
        default=None,
        metadata={
            "help": "Data shape of the training data (default: recognized from its columns).",
            "choices": list(DATA_SHAPES),
        },
    )
    score_min: float | None = field(
        default=None, metadata={"help": "Lowest gold score (default 0; 0-5 is STS-B's range)."}
    )
    score_max: float | None = field(default=None, metadata={"help": "Highest gold score (default 5)."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep only the first N training pairs."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep only the first N dev pairs."})
    max_predict_samples: int | None = field(default=None, metadata={"help": "Keep only the first N test pairs."})


ARGUMENT_CLASSES = (ModelArguments, DataArguments, STSTrainingArguments, DistillationArguments)


def option_names() -> list[str]:
    """The names of every option (flag or key of a run file)."""
    return [f.name for argument_class in ARGUMENT_CLASSES for f in fields(argument_class) if f.init]


def did_you_mean(name: str, prefix: str = "") -> str:
    """' (did you mean --learning_rate?)' for a misspelt option name, naming the closest option, if any."""
    close = difflib.get_close_matches(name, option_names(), n=1)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


def read_config_file(path: str) -> dict:
    """The options of a .yaml/.json run file, by name; one line naming the file (and line) for a file that is
    not a mapping of known options."""
    is_yaml = path.endswith((".yaml", ".yml"))
    try:
        with open(path, encoding=ENCODING) as handle:  # a byte order mark first is no option
            options = yaml.safe_load(handle) if is_yaml else json.load(handle)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        where = f"{path}, line {mark.line + 1}" if mark else path
        problem = getattr(error, "problem", None) or str(error)
        raise STSInputError(f"{where}: invalid YAML ({' '.join(problem.split())})") from None
    except json.JSONDecodeError as error:
        raise STSInputError(f"{path}, line {error.lineno}: invalid JSON ({error.msg})") from None
    except UnicodeDecodeError:
        raise STSInputError(f"{path}: not UTF-8; save the file as UTF-8") from None
    if not isinstance(options, dict):
        raise STSInputError(f"{path}: expected a mapping of option names to values, got {type(options).__name__}")
    known = set(option_names())
    for name in options:
        if name not in known:
            raise STSInputError(f"{path}: unknown option {name!r}{did_you_mean(str(name))}")
    return options


def config_file_flags(path: str) -> list[str]:
    """The options of a .yaml/.json run file as command-line flags, so later flags can override them."""
    flags = []
    for name, value in read_config_file(path).items():
        values = value if isinstance(value, list) else [value]
        # a mapping (e.g. an inline `deepspeed:` config) goes as the JSON string the Trainer parses
        flags += [f"--{name}", *(json.dumps(item) if isinstance(item, dict) else str(item) for item in values)]
    return flags


def parse_args(
    argv: list[str],
) -> tuple[ModelArguments, DataArguments, STSTrainingArguments, DistillationArguments]:
    """Flags, or a .yaml/.json run file followed by flags that override it."""
    parser = HfArgumentParser(ARGUMENT_CLASSES)
    # the `deepspeed` launcher puts --local_rank=N before the script's own arguments
    launcher_flags = argv[:1] if argv and argv[0].startswith("--local_rank=") else []
    argv = argv[len(launcher_flags) :]
    if argv and argv[0].endswith((".yaml", ".yml", ".json")):
        if not os.path.isfile(argv[0]):
            raise STSInputError(f"config file not found: {argv[0]}")
        argv = config_file_flags(argv[0]) + argv[1:]
    try:
        model_args, data_args, training_args, distillation_args, unknown = parser.parse_args_into_dataclasses(
            args=launcher_flags + argv, return_remaining_strings=True
        )
    except STSInputError:
        raise
    except ValueError as error:  # `TrainingArguments` refusing values, in a message that names them
        raise STSInputError(" ".join(str(error).split())) from None
    if unknown:
        name = unknown[0].split("=")[0]
        raise STSInputError(f"unrecognized argument {unknown[0]}{did_you_mean(name.lstrip('-'), prefix='--')}")
    # without a launcher's RANK, DeepSpeed looks for its processes through MPI (and fails on a missing mpi4py)
    if (
        training_args.deepspeed_plugin is not None
        and "RANK" not in os.environ
        and not importlib.util.find_spec("mpi4py")
    ):
        raise STSInputError(
            "--deepspeed runs under a launcher, also on one process: deepspeed [--num_gpus N] run_sts.py ... "
            "or torchrun --nproc_per_node N run_sts.py ..."
        )
    distillation_args.check()
    return model_args, data_args, training_args, distillation_args


def check_arguments(data_args: DataArguments, training_args: STSTrainingArguments) -> None:
    """Refuse flag values that would run without a word and give wrong or empty results."""
    if training_args.do_train and training_args.max_steps <= 0 and training_args.num_train_epochs <= 0:
        raise STSInputError(
            f"--num_train_epochs {training_args.num_train_epochs:g} with --do_train trains nothing and would save "
            "the untrained model: give a positive --num_train_epochs or --max_steps"
        )
    for flag in ("max_train_samples", "max_eval_samples", "max_predict_samples"):
        value = getattr(data_args, flag)
        if value is not None and value < 1:
            raise STSInputError(f"--{flag} {value} keeps no example (leave it out to keep them all)")
    flags = ("sentence1_column", "sentence2_column", "score_column")
    for index, flag in enumerate(flags):
        for other in flags[index + 1 :]:
            if getattr(data_args, flag) == getattr(data_args, other):
                raise STSInputError(f"--{flag} and --{other} both name column {getattr(data_args, flag)!r}")


# What run_sts.py writes into --output_dir: results, the model (weights, config, tokenizer, model card and the
# model code, the .py files of sts_models), the Trainer's state, checkpoints and logs.
RESULT_FILES = ("all_results.json", "train_results.json", "eval_results.json", "test_results.json",
                "predict_results.tsv")  # fmt: skip
RUN_OUTPUTS = (
    *RESULT_FILES, "config.json", "model.safetensors", "model-*-of-*.safetensors", "model.safetensors.index.json",
    "pytorch_model.bin", "pytorch_model-*-of-*.bin", "pytorch_model.bin.index.json", "README.md", "tokenizer.json",
    "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "chat_template.jinja", "vocab.txt",
    "vocab.json", "merges.txt", "*.model", "training_args.bin", "trainer_state.json", "checkpoint-*", "runs",
    *sorted(name for name in os.listdir(os.path.dirname(sts_models.__file__)) if fnmatch(name, "[!_]*.py")),
)  # fmt: skip


def is_complete_checkpoint(folder: str) -> bool:
    """Whether the Trainer finished saving this checkpoint: it writes trainer_state.json last, so a run killed
    while saving leaves a folder without one, which the Trainer fails to resume from."""
    return os.path.isfile(os.path.join(folder, TRAINER_STATE_NAME))


def last_checkpoint(output_dir: str) -> str | None:
    """The last checkpoint-N folder of output_dir that was saved whole."""
    complete = [path for path in sort_checkpoints(output_dir) if is_complete_checkpoint(path)]
    return complete[-1] if complete else None


def shorten(names: list[str], limit: int = 5) -> str:
    """The first `limit` names, for a one-line message."""
    return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")


def resume_checkpoint(training_args: STSTrainingArguments) -> str | None:
    """The checkpoint that `--resume_from_checkpoint` names: a folder, or `true` for the last one in output_dir."""
    value = training_args.resume_from_checkpoint
    if not training_args.do_train or value is None or value.lower() == "false":
        return None
    if value.lower() == "true":
        output_dir = training_args.output_dir
        last = last_checkpoint(output_dir) if os.path.isdir(output_dir) else None
        if last is None:
            raise STSInputError(
                f"--resume_from_checkpoint true: no checkpoint-N folder in {output_dir} was saved whole"
            )
        return last
    if not os.path.isdir(value):
        raise STSInputError(f"--resume_from_checkpoint: checkpoint folder not found: {value}")
    if not is_complete_checkpoint(value):
        raise STSInputError(
            f"--resume_from_checkpoint {value}: no {TRAINER_STATE_NAME}, the checkpoint is incomplete (its run "
            "was stopped while saving it): resume from an earlier checkpoint"
        )
    return value


def check_output_dir(training_args: STSTrainingArguments, model_name_or_path: str) -> tuple[str | None, list[str]]:
    """Before anything is written: the checkpoint to resume from, and the entries of output_dir to delete
    before the run writes its own, so that no file of another run stays beside them.

    A non-empty output_dir is refused unless `--overwrite_output_dir` (then the earlier run's outputs
    go), training resumes from a checkpoint in it (then its earlier results go), or an evaluation or
    prediction without training writes beside the model it evaluates (refused where results of another
    run are already there; `--overwrite_output_dir` deletes those results, never that model).
    """
    output_dir = training_args.output_dir
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise STSInputError(f"--output_dir {output_dir} is a file, not a folder")
    entries = sorted(os.listdir(output_dir)) if os.path.isdir(output_dir) else []
    checkpoint = resume_checkpoint(training_args)
    overwrite = training_args.overwrite_output_dir
    results = [name for name in entries if name in RESULT_FILES]
    if checkpoint is not None and os.path.realpath(os.path.dirname(checkpoint)) == os.path.realpath(output_dir):
        if overwrite:
            raise STSInputError(f"--overwrite_output_dir would delete {checkpoint}, the checkpoint to resume from")
        return checkpoint, results
    if not entries:
        return checkpoint, []
    model_path = resolve_model_name_or_path(model_name_or_path)
    if not training_args.do_train and os.path.isdir(model_path) and os.path.samefile(model_path, output_dir):
        if results and not overwrite:
            raise STSInputError(
                f"--output_dir {output_dir} already holds the results of another run ({', '.join(results)}): pass "
                "--overwrite_output_dir to replace them (the model stays), or another --output_dir"
            )
        return checkpoint, results
    if not overwrite:
        last = last_checkpoint(output_dir) if training_args.do_train else None
        resume = f"--resume_from_checkpoint true to resume from {os.path.basename(last)}, " if last else ""
        raise STSInputError(
            f"--output_dir {output_dir} is not empty ({shorten(entries)}): pass {resume}--overwrite_output_dir to "
            "replace the earlier run's outputs, or another --output_dir"
        )
    if ".git" in entries:
        raise STSInputError(
            f"--output_dir {output_dir} is a git working tree: --overwrite_output_dir deletes nothing there"
        )
    return checkpoint, [name for name in entries if any(fnmatch(name, pattern) for pattern in RUN_OUTPUTS)]


def remove_entries(output_dir: str, names: list[str]) -> None:
    """Delete these files and folders of output_dir."""
    for name in names:
        path = os.path.join(output_dir, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


def clear_output_dir(output_dir: str, names: list[str]) -> None:
    """Delete these entries of output_dir (an earlier run's outputs); say what stays."""
    remove_entries(output_dir, names)
    if names:
        logger.info(f"Deleted the earlier run's outputs from {output_dir}: {', '.join(names)}")
        kept = sorted(set(os.listdir(output_dir)))
        if kept:
            logger.warning(f"Kept in {output_dir}, as not written by run_sts.py: {', '.join(kept)}")


class CompletedCheckpoints(TrainerCallback):
    """The names of the checkpoints the Trainer finished writing (it calls `on_save` after each)."""

    def __init__(self):
        self.names: set[str] = set()

    def on_save(self, args, state, control, **kwargs):
        self.names.add(f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")


def output_entries(output_dir: str) -> dict[str, int] | None:
    """The entries of output_dir with their modification times, None when there is no such folder."""
    if not os.path.isdir(output_dir):
        return None
    return {entry.name: entry.stat(follow_symlinks=False).st_mtime_ns for entry in os.scandir(output_dir)}


def remove_incomplete_outputs(output_dir: str, before: dict[str, int] | None, completed: set[str]) -> list[str]:
    """After a write failed (a full disk, ...): delete what this run wrote or rewrote in output_dir, but the
    checkpoints it completed (to resume from), so that nothing half-written looks like the result of a run."""
    now = output_entries(output_dir) or {}
    written = [
        name
        for name, mtime in sorted(now.items())
        if (before or {}).get(name) != mtime
        and name not in completed
        and any(fnmatch(name, pattern) for pattern in RUN_OUTPUTS)
    ]
    remove_entries(output_dir, written)
    if before is None and os.path.isdir(output_dir) and not os.listdir(output_dir):
        os.rmdir(output_dir)  # the run made it
    return written


def disk_full(path: str, margin: int = 1 << 20) -> bool:
    """Whether the file system of `path` has less than `margin` bytes free."""
    try:
        return shutil.disk_usage(path).free < margin
    except OSError:
        return False


@contextmanager
def incomplete_outputs_removed(output_dir: str, completed: CompletedCheckpoints, writes: bool) -> Iterator[None]:
    """Where the run writes its outputs: an error of the file system (no space left, ...) becomes one line
    naming output_dir, after the outputs left incomplete are removed (`remove_incomplete_outputs`)."""
    before = output_entries(output_dir)
    try:
        yield
    except (OSError, SafetensorError, RuntimeError) as error:
        # a full disk reaches us as an OSError from Python's own writes, but as a SafetensorError from the weights'
        # writer and a RuntimeError from torch.save: those two count only when the disk is in fact full
        if not writes or (error.errno is None if isinstance(error, OSError) else not disk_full(output_dir)):
            raise
        reason = error.strerror if isinstance(error, OSError) else "No space left on device"
        filename = error.filename if isinstance(error, OSError) else None
        removed = remove_incomplete_outputs(output_dir, before, completed.names)
        kept = sorted(completed.names & set(output_entries(output_dir) or ()))
        raise STSInputError(
            f"--output_dir {output_dir}: {reason} writing {filename or 'the outputs'}; "
            + (f"removed the incomplete {shorten(removed)}" if removed else "nothing incomplete was left")
            + (f"; kept {shorten(kept)} (--resume_from_checkpoint true resumes from the last)" if kept else "")
        ) from error


def select(dataset: datasets.Dataset, max_samples: int | None) -> datasets.Dataset:
    return dataset.select(range(min(max_samples, len(dataset)))) if max_samples is not None else dataset


def write_predictions(path: str, dataset: datasets.Dataset, predictions) -> None:
    """Test pairs with gold and predicted scores, both on the original range."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(["index", "sentence1", "sentence2", "score", "prediction"])
        for index, (row, prediction) in enumerate(zip(dataset, predictions)):
            writer.writerow([index, row["sentence1"], row["sentence2"], row["score"], f"{prediction:.6f}"])


def load_data(
    data_args: DataArguments, training_args: STSTrainingArguments
) -> tuple[datasets.DatasetDict, dict[str, str]]:
    """The splits the run needs, cut to the `max_*_samples`, and where each came from."""
    files = {"train": data_args.train_file, "validation": data_args.validation_file, "test": data_args.test_file}
    raw = load_sts_dataset(
        data_args.dataset_name,
        files,
        dataset_config_name=data_args.dataset_config_name,
        column_mapping={
            data_args.sentence1_column: "sentence1",
            data_args.sentence2_column: "sentence2",
            data_args.score_column: "score",
        },
        score_range=(data_args.score_min or 0.0, data_args.score_max if data_args.score_max is not None else 5.0),
        data_shapes={"train": data_args.data_shape, "test": "scored_pairs"},
    )
    needed = {"train": training_args.do_train, "validation": training_args.do_eval, "test": training_args.do_predict}
    if training_args.do_eval and "validation" not in raw:
        if training_args.requested_do_eval:
            raise STSInputError(f"--do_eval needs a validation split; found splits {list(raw)}")
        if training_args.do_train:
            logger.warning("No validation split: training without evaluation or best-checkpoint selection")
        training_args.disable_evaluation()
        needed["validation"] = False
    for split, wanted in needed.items():
        if wanted and split not in raw:
            flag = "--do_predict" if split == "test" else f"--do_{split}"
            raise STSInputError(f"{flag} needs a {split} split; found splits {list(raw)}")
    limits = {
        "train": data_args.max_train_samples,
        "validation": data_args.max_eval_samples,
        "test": data_args.max_predict_samples,
    }
    splits = datasets.DatasetDict({split: select(raw[split], limits[split]) for split in raw if needed[split]})
    return splits, {split: files[split] or data_args.dataset_name or DEFAULT_DATASET for split in splits}


def build_model(model_args: ModelArguments, data_args: DataArguments, raw: datasets.DatasetDict):
    """A new model around the encoder, or the saved STS model, with the options given."""
    # labels 0..N-1 make N classes; without labels, `check_data` refuses the data for the loss
    softmax_labels = model_args.loss == "softmax" and "train" in raw and "label" in raw["train"].column_names
    return load_model(
        model_args.arch,
        model_args.model_name_or_path,
        **model_args.config_options(),
        num_labels=max(raw["train"]["label"]) + 1 if softmax_labels else None,
        score_min=data_args.score_min,
        score_max=data_args.score_max,
    )


def check_data(model, raw: datasets.DatasetDict, training_args: STSTrainingArguments) -> bool:
    """Refuse data the model cannot learn from, before training; True when dev holds scored pairs
    (Pearson/Spearman), False when it holds another shape (dev loss picks the best checkpoint)."""
    if "train" in raw:
        check_data_fits_model(raw["train"], model, "train")
    if "validation" not in raw or detect_data_shape(raw["validation"].column_names, "validation") == "scored_pairs":
        return True
    check_data_fits_model(raw["validation"], model, "validation")
    training_args.select_best_by_loss(labelled="label" in raw["validation"].column_names)
    return False


def build_trainer(
    model, training_args: STSTrainingArguments, tokenized: dict[str, datasets.Dataset], evaluates_pairs: bool = True
) -> STSTrainer:
    """The `Trainer` (`STSTrainer`: the stock one, writing this package's model card) over the tokenized splits,
    with the pair collator, the per-group learning rates and, when dev holds scored pairs, Pearson/Spearman
    (benchmarks/speed.py times this same setup)."""
    return STSTrainer(
        model=model,
        args=training_args,
        train_dataset=tokenized.get("train"),
        eval_dataset=tokenized.get("validation"),
        data_collator=DataCollatorForSentencePairs(pad_token_id=model.tokenizer.pad_token_id or 0),
        processing_class=model.tokenizer,
        compute_metrics=compute_metrics if evaluates_pairs else None,
        optimizer_cls_and_kwargs=optimizer_cls_and_kwargs(model, training_args),
    )


def check_best_metric(training_args: STSTrainingArguments, evaluates_pairs: bool) -> None:
    """Refuse a --metric_for_best_model that evaluation does not report, before training (the Trainer
    would stop at the end of the first evaluation)."""
    if not (training_args.load_best_model_at_end or training_args.save_strategy == "best"):
        return
    reported = ["loss", *(METRIC_NAMES if evaluates_pairs else ())]
    metric = training_args.metric_for_best_model or "loss"
    if metric.removeprefix("eval_") not in reported:
        raise STSInputError(
            f"--metric_for_best_model {metric!r} is none of the metrics evaluation reports: {reported}"
        )


def add_silver_pairs(
    raw: datasets.DatasetDict,
    data_args: DataArguments,
    training_args: STSTrainingArguments,
    distillation_args: DistillationArguments,
) -> dict:
    """With --teacher_name_or_path: the training split becomes gold (soft targets) plus silver pairs, labelled by
    the teachers or read from their cache; returns the figures of it for the run's results."""
    teachers = distillation_args.teacher_name_or_path
    if not teachers or "train" not in raw:
        return {}
    if detect_data_shape(raw["train"].column_names, "train") != "scored_pairs":
        raise STSInputError("--teacher_name_or_path needs training data of scored pairs (sentence1, sentence2, score)")
    score_range = (data_args.score_min or 0.0, data_args.score_max if data_args.score_max is not None else 5.0)
    with training_args.main_process_first(desc="silver labels"):
        rows, info = silver_labels(
            teachers,
            raw["train"],
            score_range,
            neighbors=distillation_args.silver_neighbors,
            random_share=distillation_args.silver_random_share,
            seed=training_args.seed,
            cache_dir=distillation_args.silver_cache_dir,
            batch_size=training_args.per_device_eval_batch_size,
        )
    raw["train"] = distilled_training_data(raw["train"], rows, distillation_args.teacher_score_weight)
    return {
        "silver_pairs": info["silver_pairs"],
        "labelling_seconds": info["labelling_seconds"],  # when the cache was written, also for a reused one
        "silver_cache_reused": info["reused"],
    }


def main(argv: list[str]) -> None:
    model_args, data_args, training_args, distillation_args = parse_args(argv)
    check_arguments(data_args, training_args)
    checkpoint, stale_outputs = check_output_dir(training_args, model_args.model_name_or_path)
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    # huggingface_hub prints through its own handler and would also reach the root one: each line twice
    huggingface_hub.logging.disable_propagation()
    log_level = training_args.get_process_log_level()
    logger.setLevel(log_level)
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    logger.info(f"Training/evaluation parameters {training_args}")
    set_seed(training_args.seed)

    raw, sources = load_data(data_args, training_args)
    distillation = add_silver_pairs(raw, data_args, training_args, distillation_args)
    model = build_model(model_args, data_args, raw)
    logger.info(
        f"Model: {type(model).__name__} on {model.config.encoder.model_type}, {model.num_parameters():,} parameters"
    )
    evaluates_pairs = check_data(model, raw, training_args)
    if training_args.deepspeed_plugin is not None:
        scalars = [name for name, parameter in model.named_parameters() if parameter.dim() == 0]
        if scalars:
            raise STSInputError(
                f"--deepspeed cannot train the 0-dimensional parameters {', '.join(scalars)} (DeepSpeed broadcasts "
                "parameters as bytes): pass --cosine_skip false, or train without --deepspeed"
            )
    check_best_metric(training_args, evaluates_pairs)
    model.model_card_data.datasets = [
        {
            "split": split,
            "source": sources[split],
            "size": len(data),
            "shape": detect_data_shape(data.column_names, split),
        }
        for split, data in raw.items()
    ]
    with training_args.main_process_first(desc="tokenization"):
        # the length-grouped sampler reads each training example's tokens from a column
        grouped = training_args.train_sampling_strategy == "group_by_length"
        tokenized = {
            split: tokenize_dataset(
                data,
                model,
                desc=f"Tokenizing {split}",
                length_column=training_args.length_column_name if grouped and split == "train" else None,
            )
            for split, data in raw.items()
        }

    # before the earlier run's outputs go: building the Trainer creates the Hub repo of --push_to_hub, which fails
    # when the Hub cannot be reached
    trainer = build_trainer(model, training_args, tokenized, evaluates_pairs)
    completed = CompletedCheckpoints()
    trainer.add_callback(completed)
    with training_args.main_process_first(desc="clearing the output folder", local=False):
        if training_args.process_index == 0:
            clear_output_dir(training_args.output_dir, stale_outputs)
    if checkpoint is not None:
        logger.info(f"Resuming training from {checkpoint}")

    with incomplete_outputs_removed(training_args.output_dir, completed, training_args.process_index == 0):
        if training_args.do_train:
            train_result = trainer.train(resume_from_checkpoint=checkpoint)
            trainer.save_model()
            metrics = {**train_result.metrics, "train_samples": len(tokenized["train"]), **distillation}
            trainer.log_metrics("train", metrics)
            trainer.save_metrics("train", metrics)
            trainer.save_state()

        if training_args.do_eval:
            metrics = {**trainer.evaluate(), "eval_samples": len(tokenized["validation"])}
            trainer.log_metrics("eval", metrics)
            trainer.save_metrics("eval", metrics)

        if training_args.do_predict:
            output = trainer.predict(tokenized["test"], metric_key_prefix="test")
            metrics = {**output.metrics, "test_samples": len(tokenized["test"])}
            trainer.log_metrics("test", metrics)
            trainer.save_metrics("test", metrics)
            if trainer.is_world_process_zero():
                logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
                path = os.path.join(training_args.output_dir, "predict_results.tsv")
                write_predictions(path, raw["test"], model.config.from_unit_range(logits.reshape(-1)))
                logger.info(f"Predictions written to {path}")

        if training_args.push_to_hub:
            trainer.push_to_hub()  # weights, results and the model card, now with the final evaluation's metrics
        elif training_args.do_train:
            trainer.create_model_card()  # again, now with the final evaluation's metrics


def cli(argv: list[str]) -> int:
    """`main`, with bad input and errors of the file system (no space left, no permission, ...) reported as one
    line on stderr and exit status 1 instead of a traceback (argparse's own errors exit with status 2)."""
    return run_cli("run_sts.py", main, argv)


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
