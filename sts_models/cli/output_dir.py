"""The output folder of a training run: what a run writes there, refusing or clearing an earlier run's outputs,
resuming from a checkpoint, and removing what a failed write (a full disk) left incomplete."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from fnmatch import fnmatch
from typing import TextIO

from safetensors import SafetensorError
from transformers import TrainerCallback
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, sort_checkpoints

from ..architectures import MODEL_TYPES
from ..artifacts import STAGE, weights_variant, write_json
from ..distributed import first_process_value
from ..errors import STSUserError
from ..hub import resolve_model_name_or_path
from ..training_args import STSTrainingArguments

logger = logging.getLogger(__name__)

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# What run_sts.py writes into --output_dir besides the weights (`artifacts.WEIGHT_FILE`): results, the model (config,
# tokenizer, model card and the model code, the .py files of sts_models), the Trainer's state, checkpoints and logs.
RESULT_FILES = ("all_results.json", "train_results.json", "eval_results.json", "test_results.json",
                "predict_results.tsv")  # fmt: skip
RUN_OUTPUTS = (
    *RESULT_FILES, "config.json", "README.md", "tokenizer.json",
    "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "chat_template.jinja", "vocab.txt",
    "vocab.json", "merges.txt", "*.model", "training_args.bin", "sts_model_card.json", "trainer_state.json", "checkpoint-*", "runs", STAGE,
    *sorted(name for name in os.listdir(PACKAGE_DIR) if fnmatch(name, "[!_]*.py")),
)  # fmt: skip


def lock_file(output_dir: str) -> str:
    """`.NAME.sts-models.lock` beside --output_dir NAME while a run writes there: outside the folder, so that it is
    never listed, uploaded to the Hub or deleted with the folder's contents. A symlink's target is the folder locked,
    so a run through a link and one through its target take one lock."""
    parent, name = os.path.split(os.path.realpath(output_dir))
    return os.path.join(parent, f".{name}.sts-models.lock")


@contextmanager
def output_dir_locked(output_dir: str, enabled: bool = True) -> Iterator[None]:
    """Hold `output_dir` for this run: a second run on it is refused in one line naming the first (its process id,
    host, start time and command). The lock is the operating system's (`flock`), so a killed run leaves none: the
    file it leaves is taken over. Where `flock` is missing (Windows), runs are not locked.

    In a multi-process run only the first process is `enabled` (takes the lock); every process calls this, and
    its refusal is raised on each, so the others stop with the same line instead of failing at the next collective
    when the first has gone."""
    try:
        import fcntl
    except ImportError:
        fcntl = None
    path = lock_file(output_dir)
    handle, refusal = None, None
    # a file in its place (not a folder) is left to check_output_dir, which refuses it
    if enabled and fcntl is not None and (os.path.isdir(output_dir) or not os.path.exists(output_dir)):
        handle, refusal = _take_lock(path, output_dir, fcntl)
    refusal = first_process_value(refusal)
    if refusal is not None:
        raise STSUserError(refusal)
    if handle is None:
        yield
        return
    handle.seek(0)
    handle.truncate()
    owner = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": " ".join(sys.argv),
    }
    handle.write(json.dumps(owner))
    handle.flush()
    try:
        yield
    finally:
        if os.path.exists(path):
            os.remove(path)
        handle.close()


def _take_lock(path: str, output_dir: str, fcntl) -> tuple[TextIO | None, str | None]:
    """(the open lock file `path` of `output_dir`, held), or (None, why it is refused: the run holding it)."""
    while True:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            handle = open(path, "a+", encoding="utf-8")
        except OSError as error:  # a read-only folder, /proc, an empty name
            return None, f"--output_dir {output_dir}: cannot write its lock file {path} ({error.strerror or error})"
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            try:
                owner = json.loads(handle.read())
                holder = f"pid {owner['pid']} on {owner['host']}, since {owner['started']}: {owner['command']}"
            except (ValueError, KeyError, TypeError):
                holder = "another process"
            handle.close()
            return None, (
                f"--output_dir {output_dir} is in use by another run ({holder}); wait for it to end, or pass "
                "another --output_dir"
            )
        # the lock is ours only if the file is still the one at `path` (its last holder may have just removed it)
        if os.path.exists(path) and os.path.samestat(os.fstat(handle.fileno()), os.stat(path)):
            return handle, None
        handle.close()


def is_complete_checkpoint(folder: str) -> bool:
    """Whether the Trainer finished saving this checkpoint: it writes trainer_state.json last, so a run killed
    while saving leaves a folder without one (or with one cut short), which the Trainer fails to resume from."""
    try:
        with open(os.path.join(folder, TRAINER_STATE_NAME), encoding="utf-8") as handle:
            json.load(handle)
    except (OSError, ValueError):
        return False
    return True


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
    if value is None or value.lower() == "false":
        return None
    if not training_args.do_train:  # it would be ignored: the model as loaded scored, as if it were the checkpoint's
        raise STSUserError(
            f"--resume_from_checkpoint {value} continues training: pass --do_train, or evaluate a checkpoint by "
            "passing it as --model_name_or_path"
        )
    if value.lower() == "true":
        output_dir = training_args.output_dir
        last = last_checkpoint(output_dir) if os.path.isdir(output_dir) else None
        if last is None:
            raise STSUserError(
                f"--resume_from_checkpoint true: no checkpoint-N folder in {output_dir} was saved whole"
            )
        return last
    value = os.path.normpath(value)  # `out/checkpoint-8/` (as a shell completes it) is `out/checkpoint-8`
    if not os.path.isdir(value):
        raise STSUserError(f"--resume_from_checkpoint: checkpoint folder not found: {value}")
    if not is_complete_checkpoint(value):
        raise STSUserError(
            f"--resume_from_checkpoint {value}: no whole {TRAINER_STATE_NAME}, the checkpoint is incomplete (its run "
            "was stopped while saving it): resume from an earlier checkpoint"
        )
    return value


def deleted_by_overwrite(path: str, output_dir: str) -> bool:
    """Whether `--overwrite_output_dir` would delete `path`: it is `output_dir`, or lies in one of the entries of it
    that a run writes (`is_run_output`, e.g. `checkpoint-8`); links resolved."""
    path, folder = os.path.realpath(path), os.path.realpath(output_dir)
    if path == folder:
        return True
    if os.path.commonpath([path, folder]) != folder:
        return False
    first = os.path.relpath(path, folder).split(os.sep)[0]
    return is_run_output(first)


def is_run_output(name: str) -> bool:
    """Whether an entry of an output folder is one that a run writes: `RUN_OUTPUTS`, or model weights."""
    return any(fnmatch(name, pattern) for pattern in RUN_OUTPUTS) or weights_variant(name) is not None


# Beside each checkpoint: the options that shape its optimizer's parameter groups, which resuming must keep (the
# Trainer would stop with a traceback on another number of groups, or keep the old learning rates silently).
OPTIMIZER_SETTINGS_NAME = "sts_optimizer_settings.json"


def optimizer_settings(training_args: STSTrainingArguments) -> dict:
    return {
        "head_learning_rate": training_args.head_learning_rate,
        "layerwise_lr_decay": training_args.layerwise_lr_decay,
    }


def check_checkpoint_fits(checkpoint: str, model, settings: dict) -> None:
    """Refuse, in one line, a checkpoint of another arch or shape than the run's model (the Trainer would stop with a
    traceback of mismatched weights), or trained with other frozen layers or optimizer `settings`."""
    try:
        with open(os.path.join(checkpoint, "config.json"), encoding="utf-8") as handle:
            saved = json.load(handle)
    except (OSError, ValueError) as error:
        raise STSUserError(f"--resume_from_checkpoint {checkpoint}: no readable config.json ({error})") from None
    if saved.get("model_type") != model.config.model_type:
        theirs = MODEL_TYPES.get(saved.get("model_type"))
        if theirs is None:  # e.g. a run_glue checkpoint of a plain encoder
            raise STSUserError(
                f"--resume_from_checkpoint {checkpoint} holds a plain {saved.get('model_type')} model, not a checkpoint "
                "of an STS run: pass it as --model_name_or_path to train on it"
            )
        raise STSUserError(
            f"--resume_from_checkpoint {checkpoint} holds a {theirs} model, and this run trains a {model.config.arch} "
            f"model: pass --arch {theirs}, or resume from a checkpoint of this arch"
        )
    saved_settings = {"freeze_layers": saved.get("freeze_layers", 0)}
    try:
        with open(os.path.join(checkpoint, OPTIMIZER_SETTINGS_NAME), encoding="utf-8") as handle:
            saved_settings.update(json.load(handle))
    except (OSError, ValueError):
        pass  # saved by an earlier version: not checked
    for name, value in {"freeze_layers": model.config.freeze_layers, **settings}.items():
        if name in saved_settings and saved_settings[name] != value:
            raise STSUserError(
                f"--resume_from_checkpoint {checkpoint} was trained with --{name} {saved_settings[name]}, and this run "
                f"gives {value}: its optimizer state holds the other setting; resume with it, or start a new run"
            )
    weights = os.path.join(checkpoint, "model.safetensors")
    if not os.path.isfile(weights):
        return
    from safetensors import safe_open

    expected = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    try:
        with safe_open(weights, "pt") as handle:
            shapes = {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}
    except (SafetensorError, OSError) as error:
        raise STSUserError(
            f"--resume_from_checkpoint {checkpoint}: model.safetensors is damaged ({str(error).splitlines()[0]}): "
            "resume from an earlier checkpoint"
        ) from None
    differ = {"this model's alone": set(expected) - set(shapes), "the checkpoint's alone": set(shapes) - set(expected)}
    if any(differ.values()):  # e.g. --cosine_skip or --head other than the checkpoint's: other optimizer groups too
        named = "; ".join(f"{side}: {', '.join(sorted(names)[:3])}" for side, names in differ.items() if names)
        raise STSUserError(
            f"--resume_from_checkpoint {checkpoint} holds other parameters than this model ({named}): resume with the "
            "options the checkpoint was trained with"
        )
    for name, shape in shapes.items():
        if name in expected and shape != expected[name]:
            raise STSUserError(
                f"--resume_from_checkpoint {checkpoint}: its {name} is {list(shape)}, this model's is "
                f"{list(expected[name])}: resume with the base model and options the checkpoint was trained with"
            )


def check_output_dir(
    training_args: STSTrainingArguments, model_name_or_path: str, teachers: list[str] | None = None
) -> tuple[str | None, list[str]]:
    """Before anything is written: the checkpoint to resume from, and the entries of output_dir to delete
    before the run writes its own, so that no file of another run stays beside them.

    A non-empty output_dir is refused unless `--overwrite_output_dir` (then the earlier run's outputs
    go), training resumes from a checkpoint in it (then its earlier results go), or an evaluation or
    prediction without training writes beside the model it evaluates (refused where results of another
    run are already there; `--overwrite_output_dir` deletes those results, never that model).
    """
    output_dir = training_args.output_dir
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise STSUserError(f"--output_dir {output_dir} is a file, not a folder")
    entries = sorted(os.listdir(output_dir)) if os.path.isdir(output_dir) else []
    checkpoint = resume_checkpoint(training_args)
    overwrite = training_args.overwrite_output_dir
    results = [name for name in entries if name in RESULT_FILES]
    if checkpoint is not None and os.path.realpath(os.path.dirname(checkpoint)) == os.path.realpath(output_dir):
        if overwrite:
            raise STSUserError(f"--overwrite_output_dir would delete {checkpoint}, the checkpoint to resume from")
        return checkpoint, results
    if not entries:
        return checkpoint, []
    model_path = resolve_model_name_or_path(model_name_or_path)
    if not training_args.do_train and os.path.isdir(model_path) and os.path.samefile(model_path, output_dir):
        if results and not overwrite:
            raise STSUserError(
                f"--output_dir {output_dir} already holds the results of another run ({', '.join(results)}): pass "
                "--overwrite_output_dir to replace them (the model stays), or another --output_dir"
            )
        return checkpoint, results
    # what the run reads, which --overwrite_output_dir must not delete (a teacher's Hub id is no folder of the run)
    reads = [(model_name_or_path, model_path, "the model this run starts from")]
    reads += [(teacher, teacher, "a teacher of this run") for teacher in teachers or ()]
    for name, path, role in reads if overwrite else ():
        if os.path.isdir(path) and deleted_by_overwrite(path, output_dir):
            raise STSUserError(f"--overwrite_output_dir would delete {name}, {role}: write to another --output_dir")
    if not overwrite:
        last = last_checkpoint(output_dir) if training_args.do_train else None
        resume = f"--resume_from_checkpoint true to resume from {os.path.basename(last)}, " if last else ""
        raise STSUserError(
            f"--output_dir {output_dir} is not empty ({shorten(entries)}): pass {resume}--overwrite_output_dir to "
            "replace the earlier run's outputs, or another --output_dir"
        )
    if ".git" in entries:
        raise STSUserError(
            f"--output_dir {output_dir} is a git working tree: --overwrite_output_dir deletes nothing there"
        )
    return checkpoint, [name for name in entries if is_run_output(name)]


def remove_entries(output_dir: str, names: list[str]) -> None:
    """Delete these files and folders of output_dir."""
    for name in names:
        path = os.path.join(output_dir, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


def clear_output_dir(output_dir: str, names: list[str], say_kept: bool = True) -> None:
    """Delete these entries of output_dir (an earlier run's outputs); say what stays, where `say_kept` (not when
    resuming, where the run's own model and checkpoints stay)."""
    remove_entries(output_dir, names)
    if names and say_kept:
        logger.info(f"Deleted the earlier run's outputs from {output_dir}: {', '.join(names)}")
        kept = sorted(set(os.listdir(output_dir)))
        if kept:
            logger.warning(f"Kept in {output_dir}, as not written by run_sts.py: {', '.join(kept)}")


class CompletedCheckpoints(TrainerCallback):
    """The names of the checkpoints the Trainer finished writing (it calls `on_save` after each); each gets the
    run's optimizer `settings` beside it (`OPTIMIZER_SETTINGS_NAME`), for `check_checkpoint_fits` on resuming."""

    def __init__(self, settings: dict | None = None):
        self.names: set[str] = set()
        self.settings = settings

    def on_save(self, args, state, control, **kwargs):
        name = f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        folder = os.path.join(args.output_dir, name)
        if self.settings is not None and state.is_world_process_zero and os.path.isdir(folder):
            write_json(os.path.join(folder, OPTIMIZER_SETTINGS_NAME), self.settings)
        self.names.add(name)

    def adopt_whole(self, output_dir: str, names: list[str]) -> None:
        """Count as completed the checkpoints among `names` that the Trainer saved whole (`is_complete_checkpoint`)
        but that a signal or an error stopped before `on_save`, which the Trainer calls after rotating older
        checkpoints away; they get the settings too, where the disk takes them."""
        for name in names:
            folder = os.path.join(output_dir, name)
            if name in self.names or not name.startswith(f"{PREFIX_CHECKPOINT_DIR}-"):
                continue
            if not is_complete_checkpoint(folder):
                continue
            if self.settings is not None:
                try:
                    write_json(os.path.join(folder, OPTIMIZER_SETTINGS_NAME), self.settings)
                except OSError:
                    pass  # a full disk: resuming from it goes without the settings check, as for older checkpoints
            self.names.add(name)


def output_entries(output_dir: str) -> dict[str, int] | None:
    """The entries of output_dir with their modification times, None when there is no such folder."""
    if not os.path.isdir(output_dir):
        return None
    return {entry.name: entry.stat(follow_symlinks=False).st_mtime_ns for entry in os.scandir(output_dir)}


def remove_incomplete_outputs(
    output_dir: str, before: dict[str, int] | None, completed: CompletedCheckpoints
) -> list[str]:
    """After a write failed (a full disk, ...): delete what this run wrote or rewrote in output_dir, but the
    checkpoints it completed (to resume from), so that nothing half-written looks like the result of a run."""
    now = output_entries(output_dir) or {}
    changed = [name for name, mtime in sorted(now.items()) if (before or {}).get(name) != mtime]
    completed.adopt_whole(output_dir, changed)
    written = [name for name in changed if name not in completed.names and is_run_output(name)]
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
    except KeyboardInterrupt as interrupt:  # Ctrl-C, or SIGTERM (`sts_models.errors.Terminated`)
        if writes:
            removed = remove_incomplete_outputs(output_dir, before, completed)
            kept = sorted(completed.names & set(output_entries(output_dir) or ()))
            interrupt.detail = (
                f"removed the incomplete {shorten(removed)}" if removed else "nothing incomplete was left"
            ) + (f"; kept {shorten(kept)} (--resume_from_checkpoint true resumes from the last)" if kept else "")
        raise
    except (OSError, SafetensorError, RuntimeError) as error:
        # a full disk reaches us as an OSError from Python's own writes, but as a SafetensorError from the weights'
        # writer and a RuntimeError from torch.save: those two count only when the disk is in fact full
        if not writes or (error.errno is None if isinstance(error, OSError) else not disk_full(output_dir)):
            raise
        reason = error.strerror if isinstance(error, OSError) else "No space left on device"
        filename = error.filename if isinstance(error, OSError) else None
        removed = remove_incomplete_outputs(output_dir, before, completed)
        kept = sorted(completed.names & set(output_entries(output_dir) or ()))
        raise STSUserError(
            f"--output_dir {output_dir}: {reason} writing {filename or 'the outputs'}; "
            + (f"removed the incomplete {shorten(removed)}" if removed else "nothing incomplete was left")
            + (f"; kept {shorten(kept)} (--resume_from_checkpoint true resumes from the last)" if kept else "")
        ) from error
