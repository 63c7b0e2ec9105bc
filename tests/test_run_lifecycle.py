"""A run's hold on its output folder and its end: one run per `--output_dir` (the lock), SIGINT and SIGTERM ending
`run_sts.py` and `predict.py` in one line with exit status 130 or 143 and nothing half-written, the final save and
the results written whole, and valid JSON (no NaN)."""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sts_models.artifacts import (
    PARTIAL,
    STAGE,
    file_written_whole,
    partial_file,
    sibling,
    staged_into,
    write_json,
    written_whole,
)
from sts_models.cli.output_dir import (
    OPTIMIZER_SETTINGS_NAME,
    CompletedCheckpoints,
    incomplete_outputs_removed,
    lock_file,
    output_dir_locked,
)

from .conftest import REPO_ROOT, STSB_DIR


def tiny_run(tiny_encoder_dir: str, output_dir: Path, *extra: str) -> list[str]:
    return [
        "--arch", "siamese", "--model_name_or_path", tiny_encoder_dir, "--dataset_name", str(STSB_DIR),
        "--max_train_samples", "64", "--max_eval_samples", "16", "--per_device_train_batch_size", "4",
        "--do_train", "--do_eval", "--output_dir", str(output_dir), "--disable_tqdm", "true", *extra,
    ]  # fmt: skip


def start(script: str, argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(REPO_ROOT / script), *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
        # as from a terminal: a shell's background job (e.g. a CI script run with `&`) ignores SIGINT, and its
        # children would inherit that, so Python would not turn SIGINT into KeyboardInterrupt
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for(condition, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def holds_lock(output_dir: Path) -> bool:
    try:
        return "pid" in json.loads(Path(lock_file(str(output_dir))).read_text())
    except (OSError, ValueError):
        return False


def test_a_second_run_on_the_same_output_dir_is_refused_and_the_first_completes(
    run_sts_module, tiny_encoder_dir, tmp_path, capsys
):
    output_dir = tmp_path / "out"
    first = start("run_sts.py", tiny_run(tiny_encoder_dir, output_dir, "--num_train_epochs", "4"))
    wait_for(lambda: holds_lock(output_dir), first)
    status = run_sts_module.cli(tiny_run(tiny_encoder_dir, output_dir, "--arch", "bert", "--overwrite_output_dir"))
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and "Traceback" not in "\n".join(err)
    assert err[-1].startswith(
        f"run_sts.py: error: --output_dir {output_dir} is in use by another run (pid {first.pid}"
    )
    assert first.wait(timeout=300) == 0, first.stderr.read()[-3000:]
    results = json.loads((output_dir / "all_results.json").read_text())
    assert results["eval_samples"] == 16 and "train_loss" in results
    assert json.loads((output_dir / "config.json").read_text())["model_type"] == "sts_siamese"
    assert not os.path.exists(lock_file(str(output_dir))) and not (output_dir / STAGE).exists()


def test_a_lock_left_by_a_killed_run_is_taken_over(run_sts_module, tiny_encoder_dir, tmp_path):
    output_dir = tmp_path / "out"
    dead = json.dumps({"pid": 999999, "host": "here", "started": "then", "command": "run_sts.py"})
    Path(lock_file(str(output_dir))).write_text(dead)  # its writer was killed: the file stays, the lock went with it
    assert run_sts_module.cli(tiny_run(tiny_encoder_dir, output_dir, "--max_steps", "2")) == 0
    assert (output_dir / "all_results.json").is_file() and not os.path.exists(lock_file(str(output_dir)))


def test_the_lock_is_held_against_another_holder_and_released(tmp_path):
    folder = tmp_path / "out"
    with output_dir_locked(str(folder)):
        with pytest.raises(Exception, match=r"is in use by another run \(pid \d+ on "):
            with output_dir_locked(str(folder)):
                pass
    assert sorted(os.listdir(tmp_path)) == []  # no folder made, no lock file left
    with output_dir_locked(str(folder)):
        pass


def test_a_run_through_a_symlink_takes_the_lock_of_its_target(tmp_path):
    """The lock was named after the path given: a run through a link to a folder in use took another lock, and the
    two runs wrote into one folder."""
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    with output_dir_locked(str(tmp_path / "real")):
        with pytest.raises(Exception, match=r"is in use by another run"):
            with output_dir_locked(str(tmp_path / "link")):
                pass


@pytest.mark.parametrize("signum, status, name", [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "SIGINT")])
def test_a_signal_ends_a_run_in_one_line_and_leaves_only_whole_checkpoints(
    tiny_encoder_dir, tmp_path, signum, status, name
):
    output_dir = tmp_path / "out"
    argv = tiny_run(tiny_encoder_dir, output_dir, "--num_train_epochs", "50", "--save_strategy", "steps")
    run = start(
        "run_sts.py", [*argv, "--save_steps", "4", "--eval_strategy", "no", "--load_best_model_at_end", "false"]
    )
    # a checkpoint the run has counted as complete: `CompletedCheckpoints.on_save` writes the optimizer settings beside
    # it (trainer_state.json alone comes before that, and a signal in between removes the checkpoint as incomplete)
    wait_for(lambda: any(output_dir.glob(f"checkpoint-*/{OPTIMIZER_SETTINGS_NAME}")), run)
    run.send_signal(signum)
    _, err = run.communicate(timeout=120)
    assert run.returncode == status, err[-3000:]
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"run_sts.py: stopped by {name}; "), last
    assert "--resume_from_checkpoint true resumes from the last" in last
    left = sorted(os.listdir(output_dir))
    assert left and all(entry.startswith("checkpoint-") for entry in left), left
    assert all((output_dir / entry / "trainer_state.json").is_file() for entry in left)


def test_a_checkpoint_saved_whole_is_kept_when_a_signal_comes_before_on_save(tmp_path):
    """The Trainer writes a checkpoint's trainer_state.json, then rotates older checkpoints away (deleting one can
    take seconds), then calls `on_save`: a signal in between removed the new checkpoint as incomplete."""
    output_dir = tmp_path / "out"
    (output_dir / "checkpoint-4").mkdir(parents=True)  # an earlier run's, left as it is
    (output_dir / "checkpoint-4" / "trainer_state.json").write_text('{"global_step": 4}')
    completed = CompletedCheckpoints({"optim": "adamw_torch"})
    with pytest.raises(KeyboardInterrupt) as stopped:
        with incomplete_outputs_removed(str(output_dir), completed, writes=True):
            for step, state in ((8, '{"global_step": 8}'), (12, '{"global_st'), (16, None)):
                folder = output_dir / f"checkpoint-{step}"
                folder.mkdir()
                (folder / "model.safetensors").write_bytes(b"weights")
                if state is not None:
                    (folder / "trainer_state.json").write_text(state)
            raise KeyboardInterrupt  # checkpoint-8 saved whole, its on_save not yet called
    assert sorted(os.listdir(output_dir)) == ["checkpoint-4", "checkpoint-8"]
    assert json.loads((output_dir / "checkpoint-8" / OPTIMIZER_SETTINGS_NAME).read_text()) == {"optim": "adamw_torch"}
    assert not (output_dir / "checkpoint-4" / OPTIMIZER_SETTINGS_NAME).exists()
    assert stopped.value.detail == (
        "removed the incomplete checkpoint-12, checkpoint-16; kept checkpoint-8 (--resume_from_checkpoint true "
        "resumes from the last)"
    )


def test_sigterm_ends_predict_without_leaving_its_output(tiny_encoder_dir, tmp_path):
    import sts_models

    model_dir = tmp_path / "model"
    sts_models.get_model_class("bert").from_encoder(tiny_encoder_dir).save_pretrained(model_dir)
    pairs = tmp_path / "pairs.jsonl"
    rows = [{"sentence1": f"a man number {i} plays", "sentence2": f"a woman {i} sings"} for i in range(200_000)]
    pairs.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    output = tmp_path / "scores.jsonl"
    run = start("predict.py", [str(model_dir), str(pairs), str(output), "--no_progress_bar"])
    wait_for(lambda: any(tmp_path.glob(".scores.jsonl.partial-*")), run)
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 143, err[-3000:]
    assert err.strip().splitlines()[-1] == "predict.py: stopped by SIGTERM"
    assert sorted(os.listdir(tmp_path)) == ["model", "pairs.jsonl"]


def test_json_is_written_whole_and_valid_without_nan(tmp_path):
    path = tmp_path / "all_results.json"
    write_json(str(path), {"eval_spearman": float("nan"), "eval_loss": float("inf"), "runs": [1.0, math.nan]})
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"eval_loss": None, "eval_spearman": None, "runs": [1.0, None]}
    with pytest.raises(TypeError):
        write_json(str(path), {"not json": object()})
    assert json.loads(path.read_text())["eval_loss"] is None  # the earlier file, whole
    assert sorted(os.listdir(tmp_path)) == ["all_results.json"]


def test_a_file_is_written_through_a_partial_file_of_its_own_process(tmp_path):
    target = tmp_path / "silver.jsonl"
    target.write_text("earlier\n")
    ours = Path(sibling(target, PARTIAL)).name  # .silver.jsonl.partial-HOST-PID
    writer = ours[: ours.rindex("-")]
    assert ours == f"{writer}-{os.getpid()}" and socket.gethostname() in writer
    (tmp_path / f"{writer}-999999999").write_text("left by a writer that was killed")
    (tmp_path / ".silver.jsonl.partial-999999998").write_text("left by a killed writer of an earlier version")
    live = tmp_path / f"{writer}-{os.getppid()}"  # another writer, still running: kept
    live.write_text("being written")
    elsewhere = tmp_path / f"{writer}x-999999999"  # another machine's: whether it runs is unknown
    elsewhere.write_text("being written")
    with partial_file(target) as partial:
        assert Path(partial) == tmp_path / ours
        Path(partial).write_text("new\n")
        assert target.read_text() == "earlier\n"
    assert target.read_text() == "new\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([live.name, elsewhere.name, target.name])
    with pytest.raises(RuntimeError), file_written_whole(str(target)) as handle:
        handle.write("half a file")
        raise RuntimeError("stopped")
    assert target.read_text() == "new\n"  # the earlier file, whole
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([live.name, elsewhere.name, target.name])


def test_a_write_that_fails_names_the_file_not_its_partial_copy(tmp_path):
    """A full disk (no file named) or a refused partial file is told under the name the user gave, with its kind,
    errno and reason kept (the train command's message reads them)."""
    target = tmp_path / "scores.tsv"
    with pytest.raises(OSError) as caught, file_written_whole(str(target)):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    error = caught.value
    assert (error.errno, error.strerror, error.filename) == (errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))
    assert not target.exists()
    with pytest.raises(PermissionError) as caught, written_whole(str(tmp_path / "onnx")) as folder:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.path.join(folder, "model.onnx"))
    assert caught.value.filename == str(tmp_path / "onnx" / "model.onnx")
    with pytest.raises(FileNotFoundError, match="elsewhere"), partial_file(target):  # another file's error: as it is
        open(tmp_path / "elsewhere")
    assert not os.listdir(tmp_path)  # no partial file left


def test_a_symlinked_folder_or_file_is_written_through_the_link(tmp_path):
    """Writing over a symlink replaces what it points to and keeps the link: the rename replaced the link with a
    new folder, left the target as it was, and left the link behind under a hidden name."""
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "model.onnx").write_text("earlier")
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    with written_whole(str(tmp_path / "link")) as folder:
        Path(folder, "model.onnx").write_text("new")
    assert (tmp_path / "link").is_symlink() and (tmp_path / "real" / "model.onnx").read_text() == "new"
    (tmp_path / "scores.tsv").write_text("earlier")
    (tmp_path / "scores-link.tsv").symlink_to(tmp_path / "scores.tsv")
    with file_written_whole(str(tmp_path / "scores-link.tsv")) as handle:
        handle.write("new")
    assert (tmp_path / "scores-link.tsv").is_symlink() and (tmp_path / "scores.tsv").read_text() == "new"
    assert sorted(os.listdir(tmp_path)) == ["link", "real", "scores-link.tsv", "scores.tsv"]


def test_what_is_renamed_into_place_is_on_disk_first(tmp_path, monkeypatch):
    """Each file and folder is flushed (fsync) before the rename that puts it in place, and the folder holding it
    after: a power loss cannot leave the new name pointing at empty or short files."""
    events = []
    real_fsync, real_rename, real_replace = os.fsync, os.rename, os.replace

    def fsync(descriptor):
        events.append(("fsync", os.path.realpath(os.readlink(f"/proc/self/fd/{descriptor}"))))
        real_fsync(descriptor)

    def renaming(real):
        def rename(source, target):
            events.append(("rename", os.path.realpath(source), os.path.realpath(target)))
            real(source, target)

        return rename

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", renaming(real_rename))
    monkeypatch.setattr(os, "replace", renaming(real_replace))

    def check(target, holder):
        """Every file renamed to `target` (or into it) was flushed before its rename, and `holder` after the last."""
        renames = [i for i, event in enumerate(events) if event[0] == "rename" and event[2].startswith(target)]
        assert renames, events
        for i in renames:
            source = events[i][1]
            flushed = {event[1] for event in events[:i] if event[0] == "fsync"}
            files = [source] if not os.path.isdir(events[i][2]) else [
                os.path.join(source, os.path.relpath(os.path.join(root, name), events[i][2]))
                for root, _, names in os.walk(events[i][2]) for name in names
            ]  # fmt: skip
            assert set(files) <= flushed, (files, events)
        assert ("fsync", holder) in events[renames[-1] + 1 :]
        events.clear()

    with written_whole(str(tmp_path / "onnx")) as folder:
        Path(folder, "model.onnx").write_text("graph")
        os.makedirs(os.path.join(folder, "tokenizer"))
        Path(folder, "tokenizer", "vocab.txt").write_text("words")
    check(str(tmp_path / "onnx"), str(tmp_path))
    with file_written_whole(str(tmp_path / "scores.tsv")) as handle:
        handle.write("0.5\n")
    check(str(tmp_path / "scores.tsv"), str(tmp_path))
    (tmp_path / "out").mkdir()
    with staged_into(str(tmp_path / "out")) as stage:
        Path(stage, "model.safetensors").write_text("weights")
        Path(stage, "config.json").write_text("{}")
    check(str(tmp_path / "out"), str(tmp_path / "out"))


def test_a_file_system_that_cannot_sync_a_folder_still_saves(tmp_path, monkeypatch):
    """SMB and FUSE mounts (s3fs, gcsfuse) refuse to sync a folder (EINVAL): the flush is skipped there, rather than
    every export and save failing; another error (EIO: the disk failed) still stops the save."""
    real_fsync = os.fsync

    def fsync(descriptor):
        if os.path.isdir(os.readlink(f"/proc/self/fd/{descriptor}")):
            raise OSError(errno.EINVAL, "Invalid argument")
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)
    with written_whole(str(tmp_path / "onnx")) as folder:
        Path(folder, "model.onnx").write_text("graph")
    write_json(str(tmp_path / "results.json"), {"spearman": 0.8})
    assert sorted(os.listdir(tmp_path)) == ["onnx", "results.json"]
    monkeypatch.setattr(os, "fsync", lambda descriptor: (_ for _ in ()).throw(OSError(errno.EIO, "I/O error")))
    with pytest.raises(OSError, match="I/O error"), written_whole(str(tmp_path / "other")) as folder:
        Path(folder, "model.onnx").write_text("graph")
    assert sorted(os.listdir(tmp_path)) == ["onnx", "results.json"]


def test_a_failed_final_save_leaves_the_earlier_model(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "config.json").write_text('{"old": true}')
    (folder / "model.safetensors").write_text("old weights")
    with pytest.raises(OSError):
        with staged_into(str(folder)) as stage:
            Path(stage, "model.safetensors").write_text("new weights")
            raise OSError(28, "No space left on device")
    assert (folder / "config.json").read_text() == '{"old": true}'
    assert (folder / "model.safetensors").read_text() == "old weights"
    with staged_into(str(folder)) as stage:
        Path(stage, "model.safetensors").write_text("new weights")
        Path(stage, "config.json").write_text('{"new": true}')
    assert (folder / "config.json").read_text() == '{"new": true}'
    assert sorted(os.listdir(folder)) == ["config.json", "model.safetensors"]


SAVES = {"whole": {}, "sharded": {"max_shard_size": "20KB"}, "fp16": {"variant": "fp16"},
         "fp16-sharded": {"variant": "fp16", "max_shard_size": "20KB"}}  # fmt: skip


def weight_layout(folder) -> dict[str, str]:
    """{variant: "whole" or "sharded"} of the weight files in a folder."""
    from sts_models.artifacts import weights_variant

    layout = {}
    for name in os.listdir(folder):
        variant = weights_variant(name)
        if variant is not None and not name.endswith(".json"):
            layout.setdefault(variant, set()).add("sharded" if "-of-" in name else "whole")
    return {variant: "+".join(sorted(kinds)) for variant, kinds in layout.items()}


@pytest.mark.parametrize(
    "first, second, layout",
    [
        ("whole", "sharded", {"": "sharded"}),
        ("sharded", "whole", {"": "whole"}),
        ("whole", "fp16", {"": "whole", "fp16": "whole"}),  # a variant beside the main weights: both kept
        ("fp16", "fp16-sharded", {"fp16": "sharded"}),
    ],
)
def test_a_save_over_weights_of_another_layout_leaves_only_its_own(tiny_encoder_dir, tmp_path, first, second, layout):
    """Sharded weights saved over whole ones left the earlier model.safetensors, which from_pretrained loaded first:
    the earlier model came back. The earlier weight files of the variant saved go; other variants and files stay."""
    import torch
    from transformers import AutoModel

    from sts_models import STSRegressionModel

    folder = tmp_path / "model"
    earlier = STSRegressionModel.from_encoder(tiny_encoder_dir)
    later = STSRegressionModel.from_encoder(tiny_encoder_dir)
    with torch.no_grad():
        for parameter in later.parameters():
            parameter.add_(1.0)  # every tensor differs from the earlier model's
    earlier.save_pretrained(folder, **SAVES[first])
    (folder / "notes.txt").write_text("mine")
    later.save_pretrained(folder, **SAVES[second])
    assert weight_layout(folder) == layout
    assert (folder / "notes.txt").read_text() == "mine"
    loaded = AutoModel.from_pretrained(folder, variant=SAVES[second].get("variant"))
    for name, tensor in later.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name


def test_a_save_over_weights_without_their_config_goes_through_a_stage(tiny_encoder_dir, tmp_path):
    """Weights left without config.json (a save killed between its renames, a copy): the next save still replaces
    them whole (it wrote straight into the folder, and sharded weights left the stale model.safetensors)."""
    from sts_models import STSRegressionModel

    folder = tmp_path / "model"
    STSRegressionModel.from_encoder(tiny_encoder_dir).save_pretrained(folder)
    (folder / "config.json").unlink()
    STSRegressionModel.from_encoder(tiny_encoder_dir).save_pretrained(folder, **SAVES["sharded"])
    assert weight_layout(folder) == {"": "sharded"}


def test_the_final_save_goes_through_a_stage_and_checkpoints_do_not(run_sts_module, tiny_encoder_dir, tmp_path):
    from sts_models import trainer as trainer_module

    stages = []
    real = trainer_module.staged_into

    def recording(folder, *args, **kwargs):
        stages.append(folder)
        return real(folder, *args, **kwargs)

    output_dir = tmp_path / "out"
    trainer_module.staged_into = recording
    try:
        argv = tiny_run(tiny_encoder_dir, output_dir, "--max_steps", "4", "--save_strategy", "steps")
        assert (
            run_sts_module.cli(
                [
                    *argv,
                    "--save_steps",
                    "2",
                    "--eval_strategy",
                    "no",
                    "--load_best_model_at_end",
                    "false",
                    "--save_total_limit",
                    "5",
                ]
            )
            == 0
        )
    finally:
        trainer_module.staged_into = real
    assert stages == [str(output_dir)]
    assert (output_dir / "model.safetensors").is_file() and (
        output_dir / "checkpoint-2" / "model.safetensors"
    ).is_file()
