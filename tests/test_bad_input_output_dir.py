"""A bad output folder is refused, and one that is reused is left whole (issue #12).

Each row of OUTPUT_DIR_CASES runs `run_sts.py` in-process through `run_sts.cli` (the same one-line handler
as the command) into an output folder that is not empty, holds a checkpoint or another run's results, has no
checkpoint to resume from, is a file, or whose disk fills up mid-run. It checks the exit status, that the
last line of stderr is the one error line and matches the row, and that the run wrote no results, no model
weights and no checkpoint (`check_cli_refusal` in `bad_input_cases.py`). One test checks that a disk filling
up mid-run leaves the checkpoints completed before it (and nothing incomplete). The last tests reuse an
output folder where that is allowed (`--overwrite_output_dir`, `--resume_from_checkpoint true`, results
beside the evaluated model).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import transformers
from safetensors import SafetensorError

from .bad_input_cases import (  # noqa: F401
    GOOD_TRAIN,
    PAIRS,
    TRAIN_FILE,
    CLICase,
    check_cli_refusal,
    folders,
    jsonl,
)


def saved_model_with_results(tmp: Path, folders: dict) -> None:  # noqa: F811
    shutil.copytree(folders["saved"], tmp / "out")
    (tmp / "out" / "all_results.json").write_text('{"test_spearman": 0.9}')


def disk_full_from_write(write: int, raises: str = "OSError") -> Callable[[pytest.MonkeyPatch], None]:
    """A patch: from its `write`-th model weights file on, the disk is full (a part is written, then ENOSPC).

    `raises="SafetensorError"` fails as safetensors' writer does on a real full disk (checked on a full tmpfs):
    with a `SafetensorError`, not an OSError; the disk then reads as full too."""

    def patch(monkeypatch: pytest.MonkeyPatch) -> None:
        save_file, writes = transformers.modeling_utils.safe_save_file, []

        def save_until_full(tensors, filename, metadata=None):
            writes.append(filename)
            if len(writes) < write:
                return save_file(tensors, filename, metadata=metadata)
            Path(filename).write_bytes(b"\0" * 64)
            if raises == "SafetensorError":
                monkeypatch.setattr(sys.modules["sts_models.cli.output_dir"], "disk_full", lambda path: True)
                raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filename)

        monkeypatch.setattr(transformers.modeling_utils, "safe_save_file", save_until_full)

    return patch


OUTPUT_DIR_CASES = [
    # reusing an output folder
    CLICase(
        "output-dir-not-empty",
        TRAIN_FILE,
        r"--output_dir {out} is not empty \(all_results.json, modeling_siamese.py\): pass --overwrite_output_dir",
        files=(("out/all_results.json", "{}"), ("out/modeling_siamese.py", "")),
    ),
    CLICase(
        "output-dir-holds-a-checkpoint",
        TRAIN_FILE,
        r"is not empty \(checkpoint-2\): pass --resume_from_checkpoint true to resume from checkpoint-2, "
        "--overwrite_output_dir",
        files=(("out/checkpoint-2/trainer_state.json", "{}"),),
    ),
    CLICase(
        "resume-without-a-checkpoint",
        f"{TRAIN_FILE} --resume_from_checkpoint true",
        "--resume_from_checkpoint true: no checkpoint-N folder in {out}",
    ),
    CLICase(
        "resume-from-a-missing-folder",
        f"{TRAIN_FILE} --resume_from_checkpoint {{tmp}}/nowhere",
        "--resume_from_checkpoint: checkpoint folder not found: {tmp}/nowhere",
    ),
    CLICase(
        "overwrite-would-delete-the-checkpoint-to-resume",
        f"{TRAIN_FILE} --resume_from_checkpoint true --overwrite_output_dir",
        "--overwrite_output_dir would delete {out}/checkpoint-2, the checkpoint to resume from",
        files=(("out/checkpoint-2/trainer_state.json", "{}"),),
    ),
    CLICase(
        "overwrite-would-delete-the-checkpoint-named-with-a-slash",  # as a shell completes a folder
        f"{TRAIN_FILE} --resume_from_checkpoint {{out}}/checkpoint-2/ --overwrite_output_dir",
        "--overwrite_output_dir would delete {out}/checkpoint-2, the checkpoint to resume from",
        files=(("out/checkpoint-2/trainer_state.json", "{}"),),
    ),
    CLICase(
        "overwrite-would-delete-the-model-to-train",
        "--arch siamese --model_name_or_path {out} --train_file {tmp}/train.jsonl --do_train --output_dir {out} "
        "--overwrite_output_dir",
        "--overwrite_output_dir would delete {out}, the model this run starts from: write to another --output_dir",
        setup=saved_model_with_results,
    ),
    CLICase(
        "resume-from-a-checkpoint-with-damaged-weights",
        f"{TRAIN_FILE} --resume_from_checkpoint true",
        r"--resume_from_checkpoint {out}/checkpoint-2: model.safetensors is damaged \(.*\): resume from an earlier",
        files=(
            ("out/checkpoint-2/trainer_state.json", "{}"),
            ("out/checkpoint-2/config.json", '{"model_type": "sts_regression"}'),
            ("out/checkpoint-2/model.safetensors", b'\x10\x00\x00\x00\x00\x00\x00\x00{"a": '),  # cut short
        ),
    ),
    CLICase(
        "predict-beside-another-runs-results",
        "--model_name_or_path {out} --test_file {tmp}/train.jsonl --do_predict --output_dir {out}",
        r"--output_dir {out} already holds the results of another run \(all_results.json\): pass "
        "--overwrite_output_dir to replace them",
        setup=saved_model_with_results,
    ),
    CLICase(
        "predict-into-another-runs-folder",
        "--model_name_or_path {saved} --test_file {tmp}/train.jsonl --do_predict --output_dir {out}",
        r"--output_dir {out} is not empty \(predict_results.tsv\)",
        files=(("out/predict_results.tsv", "index\n"),),
    ),
    # an output folder that cannot be written
    CLICase(
        "output-dir-is-a-file",
        f"{TRAIN_FILE} --output_dir {{tmp}}/results.txt",
        "--output_dir {tmp}/results.txt is a file, not a folder",
        files=(("results.txt", "notes"),),
    ),
    CLICase(
        "disk-full-while-saving-a-checkpoint",
        f"{TRAIN_FILE} --max_steps 1 --save_strategy steps --save_steps 1",
        "--output_dir {out}: No space left on device writing {out}/checkpoint-1/model.safetensors; removed the "
        "incomplete checkpoint-1$",
        patch=disk_full_from_write(1),
    ),
    CLICase(
        "disk-full-as-safetensors-reports-it",
        f"{TRAIN_FILE} --max_steps 1 --save_strategy steps --save_steps 1",
        "--output_dir {out}: No space left on device writing the outputs; removed the incomplete checkpoint-1$",
        patch=disk_full_from_write(1, raises="SafetensorError"),
    ),
]


@pytest.mark.parametrize("case", OUTPUT_DIR_CASES, ids=lambda case: case.id)
def test_cli_refuses_bad_output_dirs(case, run_sts_module, folders, tmp_path, capsys, monkeypatch):  # noqa: F811
    check_cli_refusal(case, run_sts_module, folders, tmp_path, capsys, monkeypatch)


def test_a_full_disk_keeps_the_checkpoints_written_before(
    run_sts_module, tiny_encoder_dir, tmp_path, monkeypatch, capsys
):
    """The disk fills up while the second checkpoint is written: that checkpoint goes, the first one stays
    whole, and the run resumes from it once there is room."""
    data, out = tmp_path / "pairs.jsonl", tmp_path / "out"
    data.write_text(GOOD_TRAIN, encoding="utf-8")
    argv = ["--arch", "bert", "--model_name_or_path", tiny_encoder_dir, "--train_file", str(data), "--do_train",
            "--per_device_train_batch_size", "1", "--max_steps", "2", "--eval_strategy", "no",
            "--load_best_model_at_end", "false", "--save_strategy", "steps", "--save_steps", "1",
            "--save_total_limit", "5", "--output_dir", str(out)]  # fmt: skip
    with monkeypatch.context() as patch:
        disk_full_from_write(2)(patch)
        assert run_sts_module.cli(argv) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"run_sts.py: error: --output_dir {out}: No space left on device writing "
        f"{out}/checkpoint-2/model.safetensors; "
        "removed the incomplete checkpoint-2; kept checkpoint-1 (--resume_from_checkpoint true resumes from the last)"
    )
    assert os.listdir(out) == ["checkpoint-1"]
    assert json.loads((out / "checkpoint-1" / "trainer_state.json").read_text())["global_step"] == 1

    run_sts_module.main([*argv, "--resume_from_checkpoint", "true"])
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 2
    assert {"model.safetensors", "all_results.json", "checkpoint-1", "checkpoint-2"} <= set(os.listdir(out))


# Reusing an output folder where it is allowed: nothing of the earlier run stays beside the new run's files.

PAIRS_4 = jsonl(*({"sentence1": a, "sentence2": b, "score": s} for a, b, s in PAIRS * 2))


def test_overwriting_leaves_nothing_of_the_earlier_run(run_sts_module, tiny_encoder_dir, tmp_path):
    """The issue's case: a siamese train+predict, then a bert train+eval into the same folder."""
    data, out = tmp_path / "pairs.jsonl", tmp_path / "out"
    data.write_text(PAIRS_4, encoding="utf-8")
    common = ["--model_name_or_path", tiny_encoder_dir, "--train_file", str(data), "--num_train_epochs", "1",
              "--do_train", "--output_dir", str(out)]  # fmt: skip
    run_sts_module.main(
        ["--arch", "siamese", *common, "--per_device_train_batch_size", "2", "--eval_strategy", "no",
         "--load_best_model_at_end", "false", "--test_file", str(data), "--do_predict"]
    )  # fmt: skip
    assert {"predict_results.tsv", "modeling_siamese.py", "checkpoint-2"} <= set(os.listdir(out))
    (out / "notes.txt").write_text("the user's own file")

    run_sts_module.main(
        ["--arch", "bert", *common, "--per_device_train_batch_size", "4", "--validation_file", str(data),
         "--do_eval", "--overwrite_output_dir"]
    )  # fmt: skip
    names = set(os.listdir(out))
    results = json.loads((out / "all_results.json").read_text())
    assert "eval_spearman" in results and not [key for key in results if key.startswith("test_")]
    assert not names & {"predict_results.tsv", "test_results.json", "modeling_siamese.py", "checkpoint-2"}
    assert {"modeling_regression.py", "checkpoint-1", "notes.txt"} <= names
    assert json.loads((out / "config.json").read_text())["model_type"] == "sts_regression"


def test_resuming_and_evaluating_in_place(run_sts_module, tiny_encoder_dir, tmp_path):
    """`--resume_from_checkpoint true` continues from the folder's last checkpoint, dropping the earlier
    results; a later evaluation of the saved model in its own folder replaces only the results."""
    data, out = tmp_path / "pairs.jsonl", tmp_path / "out"
    data.write_text(PAIRS_4, encoding="utf-8")
    common = ["--arch", "cross", "--model_name_or_path", tiny_encoder_dir, "--train_file", str(data), "--do_train",
              "--per_device_train_batch_size", "2", "--eval_strategy", "no", "--load_best_model_at_end", "false",
              "--save_strategy", "steps", "--save_steps", "1", "--save_total_limit", "5", "--output_dir", str(out)]  # fmt: skip
    run_sts_module.main([*common, "--max_steps", "2", "--test_file", str(data), "--do_predict"])
    assert "test_spearman" in json.loads((out / "all_results.json").read_text())
    first_steps = [(out / f"checkpoint-{step}" / "model.safetensors").stat().st_mtime_ns for step in (1, 2)]

    run_sts_module.main([*common, "--max_steps", "3", "--resume_from_checkpoint", "true"])
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 3
    # steps 1 and 2 were not run again: their checkpoints are the first run's
    assert [(out / f"checkpoint-{step}" / "model.safetensors").stat().st_mtime_ns for step in (1, 2)] == first_steps
    assert "test_spearman" not in json.loads((out / "all_results.json").read_text())
    assert not (out / "predict_results.tsv").exists()

    weights = (out / "model.safetensors").stat().st_mtime_ns
    evaluate = ["--model_name_or_path", str(out), "--test_file", str(data), "--do_predict", "--output_dir", str(out)]
    run_sts_module.main([*evaluate, "--overwrite_output_dir"])
    assert set(json.loads((out / "all_results.json").read_text())) >= {"test_spearman", "test_samples"}
    assert "train_loss" not in json.loads((out / "all_results.json").read_text())
    assert (out / "model.safetensors").stat().st_mtime_ns == weights and (out / "checkpoint-3").is_dir()


def test_overwrite_refuses_only_what_it_would_delete(tmp_path):
    """A model the run trains from is refused where --overwrite_output_dir would delete it: the folder itself or a
    run output in it (a checkpoint), not a folder of the user's own inside it."""
    from sts_models.cli.output_dir import deleted_by_overwrite

    out = tmp_path / "out"
    for name in ("checkpoint-8", "base"):
        (out / name).mkdir(parents=True)
    assert deleted_by_overwrite(str(out), str(out)) and deleted_by_overwrite(str(out / "checkpoint-8"), str(out))
    assert not deleted_by_overwrite(str(out / "base"), str(out))
    assert not deleted_by_overwrite(str(tmp_path), str(out))
