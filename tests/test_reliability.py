"""Nothing silently wrong: degenerate scored data refused before anything is written, the Python API refusing what
the commands refuse (empty sentences), `encode` on a pair model, an unknown `model_type` and rows with more fields
than their header, each one line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import sts_models
from sts_models.errors import STSUserError

from .conftest import REPO_ROOT, STSB_DIR


@pytest.fixture(scope="module")
def saved(tiny_encoder_dir, tmp_path_factory) -> dict[str, str]:
    folders = {}
    for arch in sts_models.ARCHITECTURES:
        folder = tmp_path_factory.mktemp(f"saved-{arch}")
        sts_models.get_model_class(arch).from_encoder(tiny_encoder_dir).save_pretrained(folder)
        folders[arch] = str(folder)
    return folders


def last_error_line(run_cli, argv, capsys) -> tuple[int, str]:
    status = run_cli(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return status, err.strip().splitlines()[-1]


@pytest.mark.parametrize(
    "pairs, message",
    [
        ([("", "")], r"sentence_pairs\[0\] holds an empty sentence"),
        ([("a man", "a dog"), ("a cat", "   ")], r"sentence_pairs\[1\] holds an empty sentence"),
        ([("\x00", "a dog")], r"sentence_pairs\[0\] holds an empty sentence"),
        ([("a man", "\u200b\x00\n")], r"sentence_pairs\[0\] holds an empty sentence"),
        # text the tokenizer's normalizer drops: U+FFFD (what a decoder puts for bytes it cannot read), accents
        ([("\ufffd", "a dog")], r"sentence_pairs\[0\] holds a sentence the tokenizer reduces to nothing"),
        ([("a man", "a dog"), ("a cat", "\u0301\u0302")], r"sentence_pairs\[1\] holds a sentence the tokenizer"),
    ],
)
def test_predict_refuses_empty_sentences_as_the_commands_do(saved, pairs, message):
    for arch in sts_models.ARCHITECTURES:
        model = sts_models.architectures.load_model(None, saved[arch])
        with pytest.raises(STSUserError, match=message):
            model.predict(pairs)


def test_encode_refuses_an_empty_sentence(saved):
    model = sts_models.architectures.load_model(None, saved["siamese"])
    with pytest.raises(STSUserError, match=r"sentences\[1\] holds an empty sentence"):
        model.encode(["a man", "\x00"])
    with pytest.raises(STSUserError, match=r"sentences\[1\] holds a sentence the tokenizer reduces to nothing"):
        model.encode(["a man", "\ufffd"])
    assert model.encode(["caf\u00e9"]).shape == (1, model.hidden_size)  # an accent on a letter keeps the letter


def test_predict_cli_names_the_pair_the_tokenizer_reduces_to_nothing(saved, tmp_path, capsys):
    from sts_models.cli import predict

    data = tmp_path / "pairs.tsv"
    data.write_text("sentence1\tsentence2\na man\ta dog\n\n\ufffd\ta cat\n", encoding="utf-8")
    status, line = last_error_line(predict.cli, [saved["bert"], str(data), str(tmp_path / "o.tsv")], capsys)
    # named by its line in the file (the header and a blank line before it), as every other error about a row is
    assert status == 1 and f"{data}, line 4 holds a sentence the tokenizer reduces to nothing" in line
    assert not (tmp_path / "o.tsv").exists()


@pytest.mark.parametrize("arch", ["bert", "cross"])
def test_encode_on_a_pair_model_is_one_line(saved, arch):
    model = sts_models.architectures.load_model(None, saved[arch])
    with pytest.raises(STSUserError, match=f"encode needs a siamese model; this '{arch}' model scores pairs"):
        model.encode(["a man"])


@pytest.mark.parametrize("arch", ["bert", "cross"])
def test_encode_on_a_pair_model_exported_to_onnx_is_one_line(saved, arch, tmp_path):
    pytest.importorskip("onnxruntime")
    from sts_models.backends.onnx import ORTSTSModel, export_onnx

    served = ORTSTSModel.from_pretrained(export_onnx(sts_models.architectures.load_model(None, saved[arch]), tmp_path))
    with pytest.raises(STSUserError, match=f"encode needs a siamese model; this '{arch}' model scores pairs"):
        served.encode(["a man"])


def test_a_nul_only_sentence_in_a_file_is_refused(run_sts_module, tiny_encoder_dir, tmp_path, capsys):
    train = tmp_path / "train.jsonl"
    train.write_text(
        "\n".join(json.dumps({"sentence1": s1, "sentence2": "a dog", "score": 1.0}) for s1 in ("a man", "\x00\x00"))
    )
    argv = ["--arch", "bert", "--model_name_or_path", tiny_encoder_dir, "--train_file", str(train), "--do_train",
            "--output_dir", str(tmp_path / "out")]  # fmt: skip
    status, line = last_error_line(run_sts_module.cli, argv, capsys)
    assert status == 1
    assert line.endswith(f"{train}, line 2: column 'sentence1' is empty (only control characters)")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("suffix, separator", [(".csv", ","), (".tsv", "\t")])
def test_rows_with_more_fields_than_the_header_are_refused(
    run_sts_module, tiny_encoder_dir, tmp_path, capsys, suffix, separator
):
    data = tmp_path / f"train{suffix}"
    rows = ["sentence1,sentence2,score", "a man,a dog,1", "a b,c,2,d,3", "a cat,a dog,4"]
    data.write_text("\n".join(row.replace(",", separator) for row in rows) + "\n")
    argv = ["--arch", "bert", "--model_name_or_path", tiny_encoder_dir, "--train_file", str(data), "--do_train",
            "--output_dir", str(tmp_path / "out")]  # fmt: skip
    status, line = last_error_line(run_sts_module.cli, argv, capsys)
    assert status == 1
    assert f"{data}, line 3: 2 field(s) more than the 3 columns of the header" in line
    # predict.py reads files the same way
    from sts_models.cli import predict

    status, line = last_error_line(predict.cli, [str(tmp_path), str(data), str(tmp_path / "o.tsv")], capsys)
    assert status == 1  # (the folder is no model: the file is not even read)


def test_predict_cli_refuses_rows_with_more_fields(saved, tmp_path, capsys):
    from sts_models.cli import predict

    data = tmp_path / "pairs.csv"
    data.write_text("sentence1,sentence2\na man,a dog\na b,c,d\n")
    status, line = last_error_line(predict.cli, [saved["siamese"], str(data), str(tmp_path / "o.tsv")], capsys)
    assert status == 1 and f"{data}, line 3: 1 field(s) more than the 2 columns of the header" in line
    assert not (tmp_path / "o.tsv").exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--do_predict", "--max_predict_samples", "1"], "--do_predict: the test split has 1 scored pair"),
        (["--do_train", "--do_eval", "--max_eval_samples", "1", "--max_train_samples", "8"],
         "--do_eval: the validation split has 1 scored pair"),
    ],
)  # fmt: skip
def test_one_evaluation_pair_is_refused_before_anything_is_written(
    run_sts_module, tiny_encoder_dir, tmp_path, capsys, flags, message
):
    # siamese: a plain encoder scores zero-shot with its cosine head (a new regression head is refused first)
    argv = ["--arch", "siamese", "--model_name_or_path", tiny_encoder_dir, "--dataset_name", str(STSB_DIR),
            "--output_dir", str(tmp_path / "out"), *flags]  # fmt: skip
    status, line = last_error_line(run_sts_module.cli, argv, capsys)
    assert status == 1 and message in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "rows, message",
    [
        ([("a man", "a dog", 3.0)], "a correlation needs at least 2 scored pairs, got 1"),
        ([("a man", "a dog", 3.0), ("a cat", "a dog", 3.0)], "the 2 gold scores are all 3"),
    ],
)
def test_predict_cli_scores_pairs_whose_gold_scores_allow_no_correlation(saved, tmp_path, capsys, rows, message):
    """The predictions are written and the metrics left out, with a note naming the file: they were refused whole,
    so a file of one scored pair could not be scored at all."""
    from sts_models.cli import predict

    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"sentence1": a, "sentence2": b, "score": s}) + "\n" for a, b, s in rows))
    assert predict.cli([saved["bert"], str(data), str(tmp_path / "o.tsv")]) == 0
    captured = capsys.readouterr()
    assert f"{data}: no Pearson or Spearman reported: {message}" in captured.err and captured.out == ""
    written = (tmp_path / "o.tsv").read_text().splitlines()
    assert written[0].split("\t")[-1] == "prediction" and len(written) == len(rows) + 1


def test_an_unknown_model_type_is_one_line_and_never_a_prompt(saved, tmp_path):
    import shutil

    folder = tmp_path / "mystery"
    shutil.copytree(saved["siamese"], folder)
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "mystery_bert"  # the folder keeps its auto_map: transformers would offer to run its code
    (folder / "config.json").write_text(json.dumps(config))
    (tmp_path / "pairs.jsonl").write_text(json.dumps({"sentence1": "a man", "sentence2": "a dog"}) + "\n")
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "predict.py"), str(folder), str(tmp_path / "pairs.jsonl"),
         str(tmp_path / "o.tsv")],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Do you wish to run the custom code" not in result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert f"{folder}/config.json: model_type 'mystery_bert' is none that transformers" in last


# --- ONNX exports: written whole, never over a model or an unrelated folder -----------------------------------


@pytest.fixture
def onnx_export():
    pytest.importorskip("onnxruntime")
    from sts_models.backends.onnx import export_onnx

    return export_onnx


def folder_bytes(folder) -> dict[str, bytes]:
    from pathlib import Path

    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def test_export_refuses_the_models_own_folder_and_unrelated_folders(saved, onnx_export, tmp_path):
    model = sts_models.architectures.load_model(None, saved["bert"])
    before = folder_bytes(saved["bert"])
    with pytest.raises(STSUserError, match="is the model's own folder: export into another folder"):
        onnx_export(model, saved["bert"])
    assert folder_bytes(saved["bert"]) == before
    other = tmp_path / "notes"
    other.mkdir()
    (other / "config.json").write_text("{}")
    with pytest.raises(STSUserError, match=r"is not empty \(config.json\) and holds no earlier export"):
        onnx_export(model, other)
    assert (other / "config.json").read_text() == "{}" and len(list(other.iterdir())) == 1


def test_re_export_needs_overwrite_and_replaces_the_export_whole(saved, onnx_export, tmp_path):
    from sts_models.backends.onnx import ORTSTSModel

    target = tmp_path / "onnx"
    bert = sts_models.architectures.load_model(None, saved["bert"])
    onnx_export(bert, target)
    first = json.loads((target / "onnx_config.json").read_text())
    with pytest.raises(STSUserError, match="holds an earlier export: pass --overwrite"):
        onnx_export(bert, target)
    siamese = sts_models.architectures.load_model(None, saved["siamese"])
    onnx_export(siamese, target, overwrite=True)
    second = json.loads((target / "onnx_config.json").read_text())
    assert second["arch"] == "siamese" and second["source"]["fingerprint"] != first["source"]["fingerprint"]
    assert set(second["files"]) == {"model.onnx", "head.onnx"}
    assert ORTSTSModel.from_pretrained(target).encode(["a man"]).shape == (1, siamese.hidden_size)
    assert [p.name for p in tmp_path.iterdir()] == ["onnx"]  # no partial or retired sibling left


def test_a_failed_re_export_leaves_the_earlier_export_as_it_was(saved, onnx_export, tmp_path, monkeypatch):
    import errno
    import os

    from sts_models.backends import onnx_export as module

    target = tmp_path / "onnx"
    onnx_export(sts_models.architectures.load_model(None, saved["bert"]), target)
    before = folder_bytes(target)

    def full_disk(config):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target / "config.json"))

    monkeypatch.setattr(module, "_config_dict", full_disk)
    with pytest.raises(OSError, match="No space left"):
        onnx_export(sts_models.architectures.load_model(None, saved["cross"]), target, overwrite=True)
    assert folder_bytes(target) == before
    assert [p.name for p in tmp_path.iterdir()] == ["onnx"]


KILLED_EXPORT = """
import os, signal, sys
import sts_models
from sts_models.architectures import load_model
from sts_models.backends import onnx_export as module
real = module._config_dict
def killed(config):
    os.kill(os.getpid(), signal.SIGKILL)  # after the graphs are written, before the rest
module._config_dict = killed
module.export_onnx(load_model(None, sys.argv[1]), sys.argv[2], overwrite=True)
"""


def test_an_export_killed_midway_leaves_the_earlier_export_and_the_next_export_cleans_up(saved, onnx_export, tmp_path):
    from sts_models.backends.onnx import ORTSTSModel

    target = tmp_path / "onnx"
    bert = sts_models.architectures.load_model(None, saved["bert"])
    onnx_export(bert, target)
    before = folder_bytes(target)
    pairs = [("a man plays", "a man is playing"), ("a dog", "a cat sleeps")]
    scores = ORTSTSModel.from_pretrained(target).predict(pairs)
    result = subprocess.run([sys.executable, "-c", KILLED_EXPORT, saved["siamese"], str(target)], timeout=300)
    assert result.returncode == -9
    assert folder_bytes(target) == before  # the earlier export, whole
    assert ORTSTSModel.from_pretrained(target).predict(pairs) == pytest.approx(scores)
    assert any(p.name.startswith(".onnx.partial-") for p in tmp_path.iterdir())  # what the killed process left
    onnx_export(bert, target, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["onnx"]


def test_an_export_killed_between_its_two_renames_gets_the_earlier_export_back(saved, onnx_export, tmp_path):
    from sts_models import artifacts

    target = tmp_path / "onnx"
    bert = sts_models.architectures.load_model(None, saved["bert"])
    onnx_export(bert, target)
    before = folder_bytes(target)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a writer no longer running, killed after its first rename (the earlier export retired)
    target.rename(tmp_path / f".onnx{artifacts.RETIRED}{artifacts._writer()}-{dead.pid}")
    with pytest.raises(STSUserError, match="holds an earlier export: pass --overwrite"):
        onnx_export(bert, target)  # the earlier export is back in place, and kept without overwrite
    assert folder_bytes(target) == before and [p.name for p in tmp_path.iterdir()] == ["onnx"]


def test_export_onnx_command_takes_overwrite(saved, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from sts_models.cli import export

    argv = [saved["bert"], str(tmp_path / "out")]
    assert export.cli(argv) == 0
    status, line = last_error_line(export.cli, argv, capsys)
    assert status == 1 and line.endswith("holds an earlier export: pass --overwrite (overwrite=True) to replace it")
    assert export.cli([*argv, "--overwrite"]) == 0


@pytest.mark.parametrize("graph", ["model.onnx", "head.onnx"])
def test_a_zero_byte_graph_is_one_line(saved, onnx_export, tmp_path, graph):
    from sts_models.backends.onnx import ORTSTSModel

    target = tmp_path / "onnx"
    onnx_export(sts_models.architectures.load_model(None, saved["siamese"]), target)
    (target / graph).write_bytes(b"")
    with pytest.raises(STSUserError, match=f"{graph} does not match the checksum recorded in .*onnx_config.json"):
        ORTSTSModel.from_pretrained(target)
    # an export without checksums (an earlier sts-models): ONNX Runtime's own error, in one line
    config = json.loads((target / "onnx_config.json").read_text())
    for entry in config.get("files", {}).values():
        if isinstance(entry, dict):
            entry.pop("checksum", None)
    (target / "onnx_config.json").write_text(json.dumps(config))
    with pytest.raises(STSUserError, match=f"{graph} cannot be loaded by ONNX Runtime"):
        ORTSTSModel.from_pretrained(target)
