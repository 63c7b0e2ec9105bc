"""`sts-models predict` (`predict.py`): score a file of sentence pairs of any size with an STS model, streaming it
chunk by chunk.

    sts-models predict outputs/siamese pairs.jsonl scores.tsv
    sts-models predict outputs/cross-onnx-int8 pairs.csv scores.jsonl --batch_size 64
    sts-models predict outputs/bert /data/stsbenchmark/sts-test.csv predictions.tsv   # metrics too

The model is a saved STS model (a folder or a Hub id) or a folder written by `sts-models export-onnx`. The pairs file is
csv, tsv or jsonl (or an original STS-B file) with columns `sentence1` and `sentence2` (renamed with
`--sentence1_column`/`--sentence2_column`), and optionally `score`: then Pearson and Spearman are printed (gold
scores on another scale than the model's: `--score_min`/`--score_max`). Pairs
are read, scored and written `--chunk_size` at a time, so memory stays flat however large the file; the output
(tsv, csv or jsonl, by its extension) holds `index, sentence1, sentence2[, score], prediction` and appears only
once every pair is scored.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from array import array
from collections import deque
from itertools import chain

import numpy as np

from ..architectures import load_model
from ..artifacts import file_written_whole, json_safe
from ..configuration import check_score_range
from ..data import read_sentence_pairs
from ..data_files import is_stsb_file, spans_rows
from ..errors import NonFiniteScoresError, STSUserError, check_positive_int, refuse_dropped_text, run_cli
from ..inference import CHUNK_SIZE
from ..metrics import correlation_metrics
from ..registry import COLUMN_FLAGS
from .arguments import check_column_flags

OUTPUT_FORMATS = (".tsv", ".csv", ".jsonl")
PROG = "predict.py"


def parse_args(argv: list[str], prog: str = PROG) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog, description="Score a file of sentence pairs of any size.")
    parser.add_argument("model_name_or_path", help="a saved STS model (folder or Hub id), or an exported ONNX folder")
    parser.add_argument("pairs_file", help="csv, tsv or jsonl with sentence1, sentence2 and optionally score")
    parser.add_argument("output_file", help="where to write the scores: .tsv, .csv or .jsonl")
    parser.add_argument("--batch_size", type=int, default=32, help="pairs per forward pass (default 32)")
    parser.add_argument(
        "--chunk_size", type=int, default=CHUNK_SIZE, help=f"pairs read, tokenized and scored at a time ({CHUNK_SIZE})"
    )
    parser.add_argument("--sentence1_column", default="sentence1", help="the column of the first sentences")
    parser.add_argument("--sentence2_column", default="sentence2", help="the column of the second sentences")
    parser.add_argument(
        "--score_column", help="the column of gold scores (default: `score`, when there is one; named, it must exist)"
    )
    parser.add_argument("--score_min", type=float, help="lowest gold score of the file (default: the model's own)")
    parser.add_argument("--score_max", type=float, help="highest gold score of the file (default: the model's own)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output_file")
    parser.add_argument("--no_progress_bar", action="store_true", help="do not show the progress bar")
    return parser.parse_args(argv)


def load_scorer(model_name_or_path: str):
    """The STS model to score with: ONNX Runtime for a folder written by `export_onnx`, else PyTorch."""
    if os.path.isdir(model_name_or_path):
        from ..backends.onnx import ONNX_CONFIG_NAME, ORTSTSModel  # only where asked: onnxruntime is an extra

        if os.path.isfile(os.path.join(model_name_or_path, ONNX_CONFIG_NAME)):
            return ORTSTSModel.from_pretrained(model_name_or_path)
    return load_model(None, model_name_or_path)


def count_rows(path: str) -> int | None:
    """The number of rows of a line-based file, for the progress bar (quoted line breaks in a csv overcount)."""
    if not path.lower().endswith((".csv", ".tsv", ".jsonl")):
        return None
    with open(path, "rb") as handle:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    has_header = path.lower().endswith((".csv", ".tsv")) and not is_stsb_file(path)  # STS-B files have none
    return max(lines - has_header, 0)


class RowWriter:
    """Rows `{index, sentence1, sentence2[, score], prediction}` to a tsv, csv or jsonl file."""

    def __init__(self, handle, extension: str, columns: list[str], path: str):
        self.handle, self.path, self.tsv = handle, path, extension == ".tsv"
        self.columns = ["index", *columns, "prediction"]
        self.writer = None
        if extension != ".jsonl":
            self.writer = csv.writer(handle, delimiter="\t" if extension == ".tsv" else ",")
            self.writer.writerow(self.columns)

    def check(self, record: dict, where: str) -> None:
        """Refuse a row the file type cannot hold for reading back: a line break in a tsv (`spans_rows`)."""
        if self.tsv and any(map(spans_rows, record.values())):
            raise STSUserError(
                f"output_file {self.path}: the pair of {where} holds a line break, which a tsv file cannot hold for "
                "reading back: write .jsonl or .csv"
            )

    def write(self, index: int, record: dict, prediction: float) -> None:
        row = {"index": index, **record, "prediction": round(float(prediction), 6)}
        if self.writer is None:
            self.handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            self.writer.writerow([row[column] for column in self.columns])


def check_output_file(path: str, overwrite: bool, pairs_file: str) -> str:
    extension = os.path.splitext(path)[1].lower()
    if os.path.exists(path) and os.path.exists(pairs_file) and os.path.samefile(path, pairs_file):
        raise STSUserError(f"output_file {path} is the pairs_file: write the scores to another file")
    if extension not in OUTPUT_FORMATS:
        raise STSUserError(f"output_file {path}: unsupported type {extension!r}; use {', '.join(OUTPUT_FORMATS)}")
    if os.path.isdir(path):
        raise STSUserError(f"output_file {path} is a folder")
    if os.path.exists(path) and not overwrite:
        raise STSUserError(f"output_file {path} exists: pass --overwrite to replace it")
    folder = os.path.dirname(path)
    if folder and not os.path.isdir(folder):
        raise STSUserError(f"output_file {path}: folder {folder} not found")
    return extension


def main(argv: list[str], prog: str = PROG) -> dict[str, float] | None:
    """Score the file; the metrics against its gold scores when it has them."""
    args = parse_args(argv, prog)
    for flag in ("batch_size", "chunk_size"):
        check_positive_int(f"--{flag}", getattr(args, flag))
    extension = check_output_file(args.output_file, args.overwrite, args.pairs_file)
    # the gold scores' own range, both bounds or neither (the model's): the correlations do not depend on it, the
    # MSE compares both ranges scaled to 0-1
    if (args.score_min is None) != (args.score_max is None):
        given, missing = ("min", "max") if args.score_max is None else ("max", "min")
        raise STSUserError(f"--score_{given} needs --score_{missing} too: the gold scores' range, both bounds")
    if args.score_min is not None:
        check_score_range(args.score_min, args.score_max)
    if os.path.isdir(args.pairs_file):
        raise STSUserError(f"pairs_file {args.pairs_file} is a folder, not a file of pairs")
    if not os.path.isfile(args.pairs_file):
        raise STSUserError(f"pairs_file not found: {args.pairs_file}")
    model = load_scorer(args.model_name_or_path)
    config = model.config
    columns = {f"{name}_column": getattr(args, f"{name}_column") or name for name in COLUMN_FLAGS}
    check_column_flags(columns)
    mapping = {column: flag.removesuffix("_column") for flag, column in columns.items()}
    gold_min, gold_max = (
        (config.score_min, config.score_max) if args.score_min is None else (args.score_min, args.score_max)
    )
    records = read_sentence_pairs(args.pairs_file, mapping, score_range=(gold_min, gold_max), with_places=True)
    first_place, first = next(records)  # checks the columns before any scoring
    if args.score_column is not None and "score" not in first:
        raise STSUserError(f"pairs_file {args.pairs_file}: no column {args.score_column!r} (--score_column)")
    if args.score_min is not None and "score" not in first:
        raise STSUserError(
            f"pairs_file {args.pairs_file}: no gold scores for --score_min/--score_max (no column 'score')"
        )
    total = count_rows(args.pairs_file)
    gold, predicted = array("d"), []
    read: deque[tuple[str, dict]] = deque()  # (where, record) of the chunk being scored, in order

    normalize = model.normalized_text()

    def pairs():
        for where, record in chain([(first_place, first)], records):
            for sentence in (record["sentence1"], record["sentence2"]):
                refuse_dropped_text(sentence, normalize, where)
            writer.check(record, where)  # before the pair is scored: a late row does not cost the run
            read.append((where, record))
            yield record["sentence1"], record["sentence2"]

    with file_written_whole(args.output_file, newline="") as handle:
        writer = RowWriter(handle, extension, list(first), args.output_file)
        index = 0
        chunks = model.predict_chunks(
            pairs(), args.batch_size, not args.no_progress_bar, chunk_size=args.chunk_size, total=total
        )
        while True:
            try:
                scores = next(chunks, None)
            except NonFiniteScoresError as error:  # a model whose run diverged: the pair named by its line
                raise STSUserError(
                    f"{args.model_name_or_path} scored the pair of {read[error.index - index][0]} as {error.score}: "
                    "its weights are not finite (a run that diverged?)"
                ) from None
            if scores is None:
                break
            for score in scores:
                _, record = read.popleft()
                writer.write(index, record, score)
                if "score" in first:
                    gold.append(record["score"])
                index += 1
            predicted.append(scores)
        # MSE on the 0-1 scale the models train on, as run_sts.py's results report it. Gold scores that allow no
        # correlation (one pair, or all equal) leave the predictions whole and the metrics out, with a note
        metrics, no_correlation = None, None
        if gold:
            predictions, references = np.concatenate(predicted), np.asarray(gold)
            try:
                metrics = correlation_metrics(predictions, references)
            except STSUserError as error:
                no_correlation = f"{args.pairs_file}: no Pearson or Spearman reported: {error}"
            else:
                scaled = (predictions - config.score_min) / (config.score_max - config.score_min)
                metrics["mse"] = float(np.mean((scaled - (references - gold_min) / (gold_max - gold_min)) ** 2))
                if np.isnan(metrics["spearman"]):  # correlation_metrics: the predictions are all equal
                    no_correlation = (
                        f"{args.model_name_or_path} scored all {index:,} pairs {predictions[0]:g}: Pearson and "
                        "Spearman are undefined (null)"
                    )
    print(f"Scored {index:,} pairs into {args.output_file}", file=sys.stderr)
    if no_correlation:
        print(no_correlation, file=sys.stderr)
    if metrics is not None:
        print(json.dumps(json_safe({"pairs": index, **metrics}), allow_nan=False))
    return metrics


def cli(argv: list[str], prog: str = PROG) -> int:
    return run_cli(prog, lambda args: main(args, prog), argv)
