"""`predict.py`: a pairs file of any size scored chunk by chunk into an output file, or one error line."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from sts_models import STSRegressionModel, STSSiameseModel
from sts_models.architectures import load_model
from sts_models.metrics import correlation_metrics

from .conftest import REPO_ROOT


@pytest.fixture(scope="module")
def predict_module():
    from sts_models.cli import predict

    return predict


@pytest.fixture(scope="module")
def saved_model(tiny_encoder_dir, tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("predict-cli") / "siamese"
    STSSiameseModel.from_encoder(tiny_encoder_dir).save_pretrained(folder)
    return str(folder)


def write_jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def run(predict_module, argv: list[str], capsys) -> tuple[int, str]:
    status = predict_module.run_cli("predict.py", predict_module.main, argv)
    return status, capsys.readouterr().err


@pytest.mark.parametrize("output_name", ["scores.tsv", "scores.csv", "scores.jsonl"])
def test_scores_a_file_in_chunks(predict_module, saved_model, stsb_pairs, tmp_path, capsys, output_name):
    """Chunks of 4 with batches of 3 give the scores of `model.predict` over the whole list, in file order, and
    the metrics against the file's gold scores."""
    rows = [{"sentence1": a, "sentence2": b, "score": s} for a, b, s in stsb_pairs[:10]]
    write_jsonl(tmp_path / "pairs.jsonl", rows)
    output = tmp_path / output_name
    argv = [saved_model, str(tmp_path / "pairs.jsonl"), str(output), "--chunk_size", "4", "--batch_size", "3"]
    status, err = run(predict_module, argv, capsys)
    assert status == 0, err
    expected = load_model(None, saved_model).predict([(r["sentence1"], r["sentence2"]) for r in rows])
    if output_name.endswith(".jsonl"):
        written = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    else:
        delimiter = "\t" if output_name.endswith(".tsv") else ","
        with open(output, encoding="utf-8", newline="") as handle:
            written = list(csv.DictReader(handle, delimiter=delimiter))
    assert [int(row["index"]) for row in written] == list(range(10))
    assert [row["sentence2"] for row in written] == [row["sentence2"] for row in rows]
    np.testing.assert_allclose([float(row["prediction"]) for row in written], expected, atol=1e-5)
    assert [float(row["score"]) for row in written] == [row["score"] for row in rows]
    status, err = run(predict_module, [*argv, "--overwrite"], capsys)
    assert status == 0, err


def test_pairs_without_scores_and_metrics_on_stdout(predict_module, saved_model, stsb_pairs, tmp_path, capsys):
    write_jsonl(tmp_path / "pairs.jsonl", [{"a": a, "b": b} for a, b, _ in stsb_pairs[:5]])
    argv = [saved_model, str(tmp_path / "pairs.jsonl"), str(tmp_path / "out.tsv")]
    status = predict_module.run_cli(
        "predict.py", predict_module.main, [*argv, "--sentence1_column", "a", "--sentence2_column", "b"]
    )
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert captured.out == ""  # no gold scores: no metrics
    header = (tmp_path / "out.tsv").read_text(encoding="utf-8").splitlines()[0]
    assert header.split("\t") == ["index", "sentence1", "sentence2", "prediction"]

    rows = [{"sentence1": a, "sentence2": b, "score": s} for a, b, s in stsb_pairs[:8]]
    write_jsonl(tmp_path / "scored.jsonl", rows)
    status = predict_module.run_cli(
        "predict.py", predict_module.main, [saved_model, str(tmp_path / "scored.jsonl"), str(tmp_path / "s.tsv")]
    )
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    expected = load_model(None, saved_model).predict([(r["sentence1"], r["sentence2"]) for r in rows])
    assert printed["pairs"] == 8
    assert printed["spearman"] == pytest.approx(
        correlation_metrics(expected, [r["score"] for r in rows])["spearman"], abs=1e-6
    )


@pytest.mark.parametrize(
    "case, message",
    [
        ("bad-row-late", r"pairs.jsonl, line 7: column 'sentence2' is empty"),
        ("missing-column", r"pairs.jsonl: missing column\(s\) \['sentence2'\] of \[sentence1, sentence2\] \(pairs\)"),
        ("output-exists", r"output_file .*out.tsv exists: pass --overwrite to replace it"),
        ("output-type", r"output_file .*out.txt: unsupported type '.txt'; use .tsv, .csv, .jsonl"),
        ("no-pairs-file", r"pairs_file not found: .*nowhere.jsonl"),
        ("batch-size", r"--batch_size must be a positive integer, got 0"),
        ("chunk-size", r"--chunk_size must be a positive integer, got 0"),
        ("no-model", r"model folder not found: .*no-model"),
        ("misspelt-score-column", r"pairs.jsonl: no column 'simlarity' \(--score_column\)"),
        ("pairs-file-folder", r"pairs_file .*folder-of-pairs is a folder, not a file of pairs"),
        ("same-column-twice", r"--sentence1_column and --sentence2_column both name column 'sentence1'"),
        ("nan-weights", r"nan-model scored the pair of .*pairs.jsonl, line 1 as nan: its weights are not finite"),
        (
            "gold-on-another-scale",
            r"pairs.jsonl, line 1: score 40.0 is outside the score range \[0.0, 5.0\] \(gold scores on another "
            r"scale: --score_min/--score_max\)",
        ),
        ("empty-score-range", r"score_max \(0.0\) must be greater than score_min \(0.0\)"),
        ("one-score-bound", r"--score_max needs --score_min too: the gold scores' range, both bounds"),
        ("score-range-without-scores", r"pairs.jsonl: no gold scores for --score_min/--score_max"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    predict_module, saved_model, stsb_pairs, tmp_path, capsys, case, message
):
    rows = [{"sentence1": a, "sentence2": b} for a, b, _ in stsb_pairs[:8]]
    model, pairs, output, extra = saved_model, tmp_path / "pairs.jsonl", tmp_path / "out.tsv", []
    if case == "bad-row-late":
        rows[6]["sentence2"] = " "
    elif case == "missing-column":
        rows = [{"sentence1": row["sentence1"]} for row in rows]
    elif case == "output-exists":
        output.write_text("earlier\n")
    elif case == "output-type":
        output = tmp_path / "out.txt"
    elif case == "no-pairs-file":
        pairs = tmp_path / "nowhere.jsonl"
    elif case == "batch-size":
        extra = ["--batch_size", "0"]
    elif case == "chunk-size":
        extra = ["--chunk_size", "0"]
    elif case == "no-model":
        model = str(tmp_path / "no-model")
    elif case == "misspelt-score-column":
        rows = [{**row, "similarity": 2.5} for row in rows]
        extra = ["--score_column", "simlarity"]
    elif case == "same-column-twice":
        extra = ["--sentence2_column", "sentence1"]
    elif case == "pairs-file-folder":
        pairs = tmp_path / "folder-of-pairs"
        pairs.mkdir()
    elif case == "nan-weights":  # a run that diverged
        diverged = load_model(None, saved_model)
        with torch.no_grad():
            diverged.encoder.embeddings.word_embeddings.weight.fill_(float("nan"))
        model = str(tmp_path / "nan-model")
        diverged.save_pretrained(model)
    elif case == "gold-on-another-scale":
        rows = [{**row, "score": 40.0} for row in rows]
    elif case == "empty-score-range":
        extra = ["--score_min", "0", "--score_max", "0"]
    elif case == "one-score-bound":
        extra = ["--score_max", "100"]
    elif case == "score-range-without-scores":
        extra = ["--score_min", "0", "--score_max", "100"]
    if case != "no-pairs-file":
        write_jsonl(tmp_path / "pairs.jsonl", rows)
    status, err = run(predict_module, [model, str(pairs), str(output), "--chunk_size", "4", *extra], capsys)
    assert status == 1
    last = err.strip().splitlines()[-1]  # after the progress bars, if any
    assert last.startswith("predict.py: error: ") and "Traceback" not in err, err
    assert re.search(message, last), last
    if case == "output-exists":
        assert output.read_text() == "earlier\n"
    else:
        assert not output.exists()
    assert not list(tmp_path.glob("*partial*"))


def test_a_pair_scored_nan_in_a_later_chunk_is_named_by_its_line(
    predict_module, saved_model, stsb_pairs, tmp_path, capsys
):
    """Only the pair whose token has NaN weights scores NaN; it is named by its line, counted across chunks."""
    from transformers import AutoTokenizer

    rows = [{"sentence1": a, "sentence2": b} for a, b, _ in stsb_pairs[:8]]
    rows[6]["sentence2"] = "xylophone quartz"
    tokenizer = AutoTokenizer.from_pretrained(saved_model)
    others = {i for row in rows[:6] + rows[7:] for text in row.values() for i in tokenizer(text)["input_ids"]}
    others |= {i for i in tokenizer(rows[6]["sentence1"])["input_ids"]}
    (token, *_) = sorted(set(tokenizer(rows[6]["sentence2"])["input_ids"]) - others)
    diverged = load_model(None, saved_model)
    with torch.no_grad():
        diverged.encoder.embeddings.word_embeddings.weight[token] = float("nan")
    diverged.save_pretrained(tmp_path / "nan-model")
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(row) + "\n" + ("\n" if i == 2 else "") for i, row in enumerate(rows)))
    argv = [str(tmp_path / "nan-model"), str(pairs), str(tmp_path / "out.tsv"), "--chunk_size", "3"]
    status, err = run(predict_module, argv, capsys)
    # the 7th pair, on line 8 (after a blank line), in the third chunk
    assert status == 1 and f"scored the pair of {pairs}, line 8 as nan" in err.strip().splitlines()[-1]
    assert not (tmp_path / "out.tsv").exists()


def test_the_pairs_file_is_never_the_output_file(predict_module, saved_model, stsb_pairs, tmp_path, capsys):
    """`predict M pairs.jsonl pairs.jsonl --overwrite` replaced the input with the scores (its other columns lost)."""
    rows = [{"sentence1": a, "sentence2": b, "id": i} for i, (a, b, _) in enumerate(stsb_pairs[:4])]
    write_jsonl(tmp_path / "pairs.jsonl", rows)
    (tmp_path / "link.jsonl").symlink_to(tmp_path / "pairs.jsonl")
    for output in ("pairs.jsonl", "link.jsonl"):
        argv = [saved_model, str(tmp_path / "pairs.jsonl"), str(tmp_path / output), "--overwrite"]
        status, err = run(predict_module, argv, capsys)
        assert status == 1 and "is the pairs_file: write the scores to another file" in err.strip().splitlines()[-1]
    assert [json.loads(line) for line in (tmp_path / "pairs.jsonl").read_text().splitlines()] == rows


def test_a_tsv_output_is_refused_a_sentence_with_a_line_break(predict_module, saved_model, tmp_path, capsys):
    """A tsv written with a quoted line break could not be read back by `predict` itself; csv and jsonl can."""
    rows = [{"sentence1": f"a man plays {i}", "sentence2": "a man sings"} for i in range(7)]
    rows[5]["sentence2"] = "a man\nsings"  # in the second chunk: refused before it is scored
    write_jsonl(tmp_path / "pairs.jsonl", rows)
    argv = [saved_model, str(tmp_path / "pairs.jsonl"), str(tmp_path / "out.tsv"), "--chunk_size", "4"]
    status, err = run(predict_module, argv, capsys)
    last = err.strip().splitlines()[-1]
    assert status == 1 and "pairs.jsonl, line 6 holds a line break, which a tsv file cannot hold" in last
    assert not (tmp_path / "out.tsv").exists()
    for output in ("out.csv", "out.jsonl"):  # read back whole
        argv = [saved_model, str(tmp_path / "pairs.jsonl"), str(tmp_path / output)]
        assert run(predict_module, argv, capsys)[0] == 0
        assert (
            run(predict_module, [saved_model, str(tmp_path / output), str(tmp_path / f"again-{output}")], capsys)[0]
            == 0
        )


def test_gold_scores_on_another_scale(predict_module, saved_model, stsb_pairs, tmp_path, capsys):
    """Gold scores of 0-100 with --score_min/--score_max: the correlations are those of the 0-5 scores, and the MSE
    compares both on 0-1 (they were refused as outside the model's range)."""
    rows = [{"sentence1": a, "sentence2": b, "score": s} for a, b, s in stsb_pairs[:8]]
    write_jsonl(tmp_path / "five.jsonl", rows)
    write_jsonl(tmp_path / "hundred.jsonl", [{**row, "score": row["score"] * 20} for row in rows])
    printed = []
    for name, extra in (("five", []), ("hundred", ["--score_min", "0", "--score_max", "100"])):
        argv = [saved_model, str(tmp_path / f"{name}.jsonl"), str(tmp_path / f"{name}.tsv"), *extra]
        status = predict_module.run_cli("predict.py", predict_module.main, argv)
        captured = capsys.readouterr()
        assert status == 0, captured.err
        printed.append(json.loads(captured.out.strip().splitlines()[-1]))
    assert printed[1] == pytest.approx(printed[0], abs=1e-9)
    written = (tmp_path / "hundred.tsv").read_text(encoding="utf-8").splitlines()[1].split("\t")
    assert float(written[3]) == rows[0]["score"] * 20  # the gold as read


def test_the_command_runs_as_a_script(saved_model, stsb_pairs, tmp_path):
    write_jsonl(tmp_path / "pairs.jsonl", [{"sentence1": a, "sentence2": ""} for a, _, _ in stsb_pairs[:2]])
    result = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "predict.py"),
            saved_model,
            str(tmp_path / "pairs.jsonl"),
            str(tmp_path / "o.tsv"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("predict.py: error: ")
    assert "Traceback" not in result.stderr


def test_a_damaged_onnx_folder_is_one_line(predict_module, saved_model, tmp_path, capsys):
    from sts_models.architectures import load_model as load
    from sts_models.backends.onnx import export_onnx

    folder = tmp_path / "onnx"
    export_onnx(load(None, saved_model), folder)
    graph = next(folder.glob("*.onnx"))
    graph.write_bytes(graph.read_bytes()[:1000])  # truncated
    (tmp_path / "pairs.jsonl").write_text('{"sentence1": "a man", "sentence2": "a dog"}\n', encoding="utf-8")
    status, err = run(predict_module, [str(folder), str(tmp_path / "pairs.jsonl"), str(tmp_path / "o.tsv")], capsys)
    last = err.strip().splitlines()[-1]
    assert status == 1 and "Traceback" not in err
    assert re.match(rf"predict.py: error: {re.escape(str(graph))} does not match the checksum recorded in ", last), (
        last
    )
    (folder / "onnx_config.json").write_text("{not json", encoding="utf-8")
    status, err = run(predict_module, [str(folder), str(tmp_path / "pairs.jsonl"), str(tmp_path / "o.tsv")], capsys)
    assert status == 1 and "onnx_config.json is not valid JSON" in err.strip().splitlines()[-1]
    assert not (tmp_path / "o.tsv").exists()


def test_a_model_that_scores_every_pair_alike_reports_null_correlations(
    predict_module, tiny_encoder_dir, stsb_pairs, tmp_path, capsys
):
    """A collapsed model (here a `bert` head of zeros) allows no correlation: stdout stays valid JSON, with null
    and a note saying why, and no scipy warnings."""
    import warnings

    model = STSRegressionModel.from_encoder(tiny_encoder_dir)
    with torch.no_grad():
        for parameter in model.head.parameters():
            parameter.zero_()
    model.save_pretrained(tmp_path / "constant")
    write_jsonl(tmp_path / "pairs.jsonl", [{"sentence1": a, "sentence2": b, "score": s} for a, b, s in stsb_pairs[:6]])
    argv = [str(tmp_path / "constant"), str(tmp_path / "pairs.jsonl"), str(tmp_path / "out.tsv")]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scipy's ConstantInputWarning would fail the test
        status = predict_module.run_cli("predict.py", predict_module.main, argv)
    captured = capsys.readouterr()
    assert status == 0, captured.err
    printed = json.loads(captured.out.strip().splitlines()[-1])  # valid JSON: no NaN
    assert printed["pearson"] is None and printed["spearman"] is None and printed["mse"] > 0
    assert "scored all 6 pairs 2.5: Pearson and Spearman are undefined (null)" in captured.err


@pytest.mark.parametrize("flag", ["--score_column", "--sentence1_column"])
def test_column_flags_on_an_original_stsb_file_are_refused(predict_module, saved_model, tmp_path, capsys, flag):
    """An original STS-B file's columns have fixed places: a column flag was ignored, and the run scored and
    reported metrics as if the column existed."""
    from .conftest import STSB_DIR

    argv = [saved_model, str(STSB_DIR / "sts-dev.csv"), str(tmp_path / "out.tsv"), flag, "gold"]
    status, err = run(predict_module, argv, capsys)
    assert status == 1
    assert (
        err.strip()
        .splitlines()[-1]
        .endswith(
            "sts-dev.csv is an original STS-B file, whose columns have fixed places: drop the column flag naming 'gold'"
        )
    )
    assert not (tmp_path / "out.tsv").exists()
