"""What the bad-input tables share (issue #12): bad input is refused, never read silently into wrong results.

The tables live by surface in `test_bad_input_data.py` (data files), `test_bad_input_options.py` (command-line
options and run files), `test_bad_input_model.py` (model folders and Hub ids), `test_bad_input_output_dir.py`
(the output folder) and `test_bad_input_api.py` (the Python API). Each row of a CLI table is a `CLICase`,
checked by `check_cli_refusal`: it runs `run_sts.py` in-process through `run_sts.cli` (the same one-line
handler as the command) and checks the exit status, that the last line of stderr is the one error line and
matches the row, and that the run wrote no results, no model weights and no checkpoint (`success_files`).
The `folders` fixture holds the model folders the rows name; a test module that uses it imports it.
"""

from __future__ import annotations

import json
import pickle
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from transformers import BertTokenizer

from sts_models import STSRegressionModel

from .conftest import STSB_DIR

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")
PAIRS = [("A man is playing a guitar.", "A woman slices an onion.", 0.2), ("A dog runs.", "A dog is running.", 4.6)]


def jsonl(*records: dict) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


GOOD_TRAIN = jsonl(*({"sentence1": a, "sentence2": b, "score": s} for a, b, s in PAIRS))


class RunsCodeWhenUnpickled:
    """Unpickled, it creates the file `path`: what a pickled weights file can do."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def damaged_copies(source: str, root: Path, name: str) -> dict[str, str]:
    """Copies of a model folder whose weights are cut in half or garbage, or without config or weights, or pickled
    (`pytorch_model.bin` in place of the safetensors file; unpickled, it would create `UNPICKLED` in the folder)."""
    copies = {}
    for damage in ("truncated", "garbage", "no_config", "no_weights", "pickled"):
        copy = root / f"{name}-{damage}"
        shutil.copytree(source, copy)
        weights = copy / "model.safetensors"
        if damage == "truncated":
            weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
        elif damage == "garbage":
            weights.write_bytes(b"not a safetensors file")
        elif damage == "pickled":
            weights.unlink()
            (copy / "pytorch_model.bin").write_bytes(pickle.dumps(RunsCodeWhenUnpickled(str(copy / "UNPICKLED"))))
        else:
            (copy / "config.json" if damage == "no_config" else weights).unlink()
        copies[f"{name}_{damage}"] = str(copy)
    return copies


@pytest.fixture(scope="module")
def folders(tiny_encoder_dir, tmp_path_factory) -> dict[str, str]:
    """The tiny encoder, copies of it without tokenizer files or with a tokenizer of special tokens alone,
    a saved `bert` model, a copy of it without tokenizer files, a folder laid out as its ONNX export, and damaged
    copies of both (`damaged_copies`)."""
    root = tmp_path_factory.mktemp("bad-input")
    no_tokenizer = root / "encoder-without-tokenizer"
    shutil.copytree(tiny_encoder_dir, no_tokenizer)
    for name in TOKENIZER_FILES:
        (no_tokenizer / name).unlink(missing_ok=True)
    specials_only = root / "encoder-with-empty-tokenizer"
    shutil.copytree(no_tokenizer, specials_only)
    # what `BertTokenizer(vocab_file=...)` writes in transformers 5: the vocab file ignored, 5 special tokens
    BertTokenizer().save_pretrained(specials_only)
    saved = root / "saved-bert"
    STSRegressionModel.from_encoder(tiny_encoder_dir).save_pretrained(saved)
    saved_no_tokenizer = root / "saved-bert-without-tokenizer"
    shutil.copytree(saved, saved_no_tokenizer)
    for name in TOKENIZER_FILES:
        (saved_no_tokenizer / name).unlink(missing_ok=True)
    onnx_export = root / "onnx-export"  # what `export_onnx` writes: no PyTorch weights (the graph is not read here)
    shutil.copytree(saved, onnx_export)
    (onnx_export / "model.safetensors").unlink()
    (onnx_export / "model.onnx").write_bytes(b"")
    (onnx_export / "onnx_config.json").write_text(json.dumps({"arch": "bert", "files": {}}), encoding="utf-8")
    return {
        "encoder": tiny_encoder_dir,
        "onnx_export": str(onnx_export),
        "no_tokenizer": str(no_tokenizer),
        "specials_only": str(specials_only),
        "saved": str(saved),
        "saved_no_tokenizer": str(saved_no_tokenizer),
        "stsb": str(STSB_DIR),
        **damaged_copies(tiny_encoder_dir, root, "encoder"),
        **damaged_copies(str(saved), root, "saved"),
    }


@dataclass(frozen=True)
class CLICase:
    """`argv` and `message` are formatted with the folders (and `tmp`, `out`); `files` (path under tmp:
    content, text or bytes) are written first, `train.jsonl` holding two good pairs unless a row replaces it;
    `patch` makes a library call fail (with pytest's monkeypatch)."""

    id: str
    argv: str
    message: str
    files: tuple[tuple[str, str | bytes], ...] = ()
    status: int = 1
    setup: Callable[[Path, dict], None] | None = None
    patch: Callable[[pytest.MonkeyPatch], None] | None = None


TRAIN = "--arch bert --model_name_or_path {encoder} --do_train --eval_strategy no --load_best_model_at_end false"
TRAIN_FILE = f"{TRAIN} --train_file {{tmp}}/train.jsonl --output_dir {{out}}"
EVAL = "--validation_file {tmp}/train.jsonl --do_eval"


def success_files(folder: Path) -> dict[str, int]:
    """Files under `folder` that would look like a finished run: results, weights, checkpoints."""
    if not folder.exists():
        return {}
    looks_done = ("*results.json", "predict_results.tsv", "*.safetensors", "*.bin", "trainer_state.json")
    return {
        str(path.relative_to(folder)): path.stat().st_mtime_ns
        for pattern in looks_done
        for path in folder.rglob(pattern)
    }


def check_cli_refusal(
    case: CLICase,
    run_sts_module,
    folders: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Run `case` through `run_sts.cli`: its exit status, one error line matching the row and no traceback
    on stderr, and nothing new or rewritten among the output folder's results, weights and checkpoints."""
    values = {**folders, "tmp": str(tmp_path), "out": str(tmp_path / "out")}
    for name, content in (("train.jsonl", GOOD_TRAIN),) + case.files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            (tmp_path / name).write_bytes(content)
        else:
            (tmp_path / name).write_text(content, encoding="utf-8")
    if case.setup:
        case.setup(tmp_path, folders)
    if case.patch:
        case.patch(monkeypatch)
    before, existed = success_files(tmp_path / "out"), (tmp_path / "out").exists()
    argv = [token.format(**values) for token in case.argv.split()]
    try:
        status = run_sts_module.cli(argv)
    except SystemExit as exit:  # argparse
        status = exit.code
    stderr = capsys.readouterr().err
    assert status == case.status, stderr[-3000:]
    assert "Traceback" not in stderr
    last_line = stderr.strip().splitlines()[-1]
    if case.status == 1:
        assert last_line.startswith("run_sts.py: error: ")
    escaped = {name: re.escape(value) for name, value in values.items()}
    assert re.search(case.message.format(**escaped), last_line), last_line
    assert success_files(tmp_path / "out") == before  # nothing new, nothing rewritten
    assert existed or not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
