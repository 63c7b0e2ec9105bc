"""Loading sentence-pair data from the Hub, an STS-B folder or csv/tsv/json/jsonl files, and tokenizing it once.

Every loader returns a `DatasetDict` whose splits (`train`, `validation`, `test`) have the columns
`sentence1`, `sentence2` and `score` (the gold score on its original range).
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Iterator

from datasets import Dataset, DatasetDict, load_dataset

from .errors import STSInputError

DEFAULT_DATASET = "mteb/stsbenchmark-sts"
STSB_FILES = {"train": "sts-train.csv", "validation": "sts-dev.csv", "test": "sts-test.csv"}
STSB_COLUMNS = "genre, file, year, id, score, sentence1, sentence2"
SPLIT_ALIASES = {"train": "train", "validation": "validation", "dev": "validation", "test": "test"}
COLUMNS = ("sentence1", "sentence2", "score")


def _parse_score(value, where: str) -> float:
    try:
        score = float(value)
    except (TypeError, ValueError):
        raise STSInputError(f"{where}: score {value!r} is not a number") from None
    if math.isnan(score):
        raise STSInputError(f"{where}: score is NaN")
    return score


def _check_sentence(value, column: str, where: str) -> str:
    if not isinstance(value, str):
        raise STSInputError(f"{where}: column {column!r} must hold text, got {value!r}")
    return value


def read_stsb_file(path: str) -> Iterator[tuple[str, str, float]]:
    """Rows of an original STS-B file: tab-separated, no header, no quoting, extra trailing columns allowed."""
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            fields = line.rstrip("\r\n").split("\t")
            where = f"{path}, line {line_number}"
            if len(fields) < 7:
                raise STSInputError(
                    f"{where}: expected at least 7 tab-separated columns ({STSB_COLUMNS}), found {len(fields)}"
                )
            yield fields[5], fields[6], _parse_score(fields[4], where)


def _looks_like_stsb(first_line: str) -> bool:
    fields = first_line.rstrip("\r\n").split("\t")
    if len(fields) < 7:
        return False
    try:
        float(fields[4])
    except ValueError:
        return False
    return True


def _records(path: str) -> Iterator[tuple[str, dict]]:
    """(where, record) for each row of a csv, tsv, json or jsonl file."""
    extension = os.path.splitext(path)[1].lower()
    if extension in (".csv", ".tsv"):
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle, delimiter="\t" if extension == ".tsv" else ",")
            for row_number, row in enumerate(reader, start=2):
                yield f"{path}, line {row_number}", row
    elif extension == ".jsonl":
        with open(path, encoding="utf-8") as handle:
            for line_number, line in enumerate(handle, start=1):
                if line.strip():
                    try:
                        yield f"{path}, line {line_number}", json.loads(line)
                    except json.JSONDecodeError as error:
                        raise STSInputError(f"{path}, line {line_number}: invalid JSON ({error.msg})") from None
    elif extension == ".json":
        with open(path, encoding="utf-8") as handle:
            try:
                content = json.load(handle)
            except json.JSONDecodeError as error:
                raise STSInputError(f"{path}: invalid JSON ({error.msg}, line {error.lineno})") from None
        if isinstance(content, dict) and isinstance(content.get("data"), list):
            content = content["data"]
        if not isinstance(content, list):
            raise STSInputError(f"{path}: expected a JSON list of records")
        for index, record in enumerate(content):
            yield f"{path}, record {index}", record
    else:
        raise STSInputError(f"{path}: unsupported file type {extension!r}; use .csv, .tsv, .json or .jsonl")


def read_pairs_file(
    path: str, sentence1_column: str = "sentence1", sentence2_column: str = "sentence2", score_column: str = "score"
) -> Iterator[tuple[str, str, float]]:
    """Rows of a csv/tsv/json/jsonl file with the named columns (or of an original STS-B file)."""
    if not os.path.isfile(path):
        raise STSInputError(f"data file not found: {path}")
    if path.lower().endswith((".csv", ".tsv")):
        with open(path, encoding="utf-8") as handle:
            first_line = handle.readline()
        if _looks_like_stsb(first_line):
            yield from read_stsb_file(path)
            return
    needed = (sentence1_column, sentence2_column, score_column)
    for where, record in _records(path):
        if not isinstance(record, dict):
            raise STSInputError(f"{where}: expected a record with columns {list(needed)}, got {record!r}")
        missing = [column for column in needed if column not in record]
        if missing:
            raise STSInputError(
                f"{path}: missing column(s) {missing}; found columns {list(record)}. "
                "Name the columns with --sentence1_column, --sentence2_column and --score_column"
            )
        yield (
            _check_sentence(record[sentence1_column], sentence1_column, where),
            _check_sentence(record[sentence2_column], sentence2_column, where),
            _parse_score(record[score_column], where),
        )


def _to_dataset(rows: Iterable[tuple[str, str, float]], source: str, score_range: tuple[float, float]) -> Dataset:
    columns = {name: [] for name in COLUMNS}
    low, high = score_range
    for index, (sentence1, sentence2, score) in enumerate(rows):
        if not low <= score <= high:
            raise STSInputError(f"{source}, pair {index}: score {score} is outside the score range [{low}, {high}]")
        columns["sentence1"].append(sentence1)
        columns["sentence2"].append(sentence2)
        columns["score"].append(score)
    if not columns["score"]:
        raise STSInputError(f"{source}: no sentence pairs found")
    return Dataset.from_dict(columns)


def _load_hub_dataset(
    name: str, config_name: str | None, columns: tuple[str, str, str], score_range, cache_dir: str | None
) -> DatasetDict:
    loaded = load_dataset(name, config_name, cache_dir=cache_dir)
    splits = {}
    for split_name, split in loaded.items():
        if split_name not in SPLIT_ALIASES:
            continue
        missing = [column for column in columns if column not in split.column_names]
        if missing:
            raise STSInputError(
                f"dataset {name} ({split_name}): missing column(s) {missing}; found columns {split.column_names}"
            )
        rows = zip(split[columns[0]], split[columns[1]], split[columns[2]])
        where = f"dataset {name} ({split_name})"
        splits[SPLIT_ALIASES[split_name]] = _to_dataset(
            ((a, b, _parse_score(s, where)) for a, b, s in rows), where, score_range
        )
    return DatasetDict(splits)


def load_sts_dataset(
    dataset_name: str | None = None,
    data_files: dict[str, str] | None = None,
    dataset_config_name: str | None = None,
    sentence1_column: str = "sentence1",
    sentence2_column: str = "sentence2",
    score_column: str = "score",
    score_range: tuple[float, float] = (0.0, 5.0),
    cache_dir: str | None = None,
) -> DatasetDict:
    """Load sentence pairs with gold scores.

    Args:
        dataset_name: a Hub dataset id (default `mteb/stsbenchmark-sts` when no `data_files` are
            given) or a local folder in the original STS-B layout (`sts-train.csv`, `sts-dev.csv`,
            `sts-test.csv`).
        data_files: `{"train"|"validation"|"test": path}`; csv, tsv, json or jsonl with the named
            columns (original STS-B files are recognized too). They add to or replace the splits of
            `dataset_name`.
        score_range: scores outside it are refused, naming the file and row.
    """
    data_files = {split: path for split, path in (data_files or {}).items() if path}
    if dataset_name is None and not data_files:
        dataset_name = DEFAULT_DATASET
    splits: dict[str, Dataset] = {}
    columns = (sentence1_column, sentence2_column, score_column)
    if dataset_name is not None:
        if os.path.isdir(dataset_name):
            found = {s: os.path.join(dataset_name, f) for s, f in STSB_FILES.items()}
            found = {s: path for s, path in found.items() if os.path.isfile(path)}
            if not found:
                raise STSInputError(
                    f"dataset folder {dataset_name} has none of {', '.join(STSB_FILES.values())}; "
                    "pass --train_file/--validation_file/--test_file for other layouts"
                )
            splits.update({s: _to_dataset(read_stsb_file(path), path, score_range) for s, path in found.items()})
        elif os.path.isabs(dataset_name) or dataset_name.startswith(".") or dataset_name.count("/") > 1:
            raise STSInputError(f"dataset folder not found: {dataset_name}")
        else:
            splits.update(_load_hub_dataset(dataset_name, dataset_config_name, columns, score_range, cache_dir))
    for split, path in data_files.items():
        splits[split] = _to_dataset(read_pairs_file(path, *columns), path, score_range)
    return DatasetDict(splits)


def tokenize_dataset(dataset: Dataset, model, desc: str | None = None) -> Dataset:
    """Tokenize pairs the way `model` reads them and scale scores to the 0-1 `labels` it trains on."""

    def tokenize(batch):
        features = model.tokenize(batch["sentence1"], batch["sentence2"])
        features["labels"] = [model.config.to_unit_range(score) for score in batch["score"]]
        return features

    return dataset.map(tokenize, batched=True, remove_columns=dataset.column_names, desc=desc)
