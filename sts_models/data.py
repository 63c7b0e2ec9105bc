"""Loading sentence data from the Hub, an STS-B folder or csv/tsv/json/jsonl files, and tokenizing it once.

Every loader returns a `DatasetDict` whose splits (`train`, `validation`, `test`) hold the columns of
one data shape of `sts_models.losses.DATA_SHAPES`: `sentence1, sentence2, score` (scored pairs, the
score on its original range), `sentence1, sentence2, label`, `anchor, positive[, negative]` or
`sentence, label`. The shape is recognized from the column names.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TextIO

import datasets
from datasets import Dataset, DatasetDict, load_dataset

from .configuration import check_score_range
from .data_collator import sequence_lengths
from .errors import STSInputError
from .hub import hub_reachable, hub_unreachable_reason, looks_like_local_path
from .losses import DATA_SHAPES

DEFAULT_DATASET = "mteb/stsbenchmark-sts"
STSB_FILES = {"train": "sts-train.csv", "validation": "sts-dev.csv", "test": "sts-test.csv"}
STSB_COLUMNS = "genre, file, year, id, score, sentence1, sentence2"
SPLIT_ALIASES = {"train": "train", "validation": "validation", "dev": "validation", "test": "test"}
LOCAL_DATA_HINT = (
    "pass a local STS-B folder with --dataset_name (make train DATA=/path/to/stsbenchmark) or files with "
    "--train_file/--validation_file/--test_file"
)
# UTF-8, with the byte order mark that some editors and spreadsheet exports put first read as no character
# (plain "utf-8" would make it part of the first column's name, or an error for JSON)
ENCODING = "utf-8-sig"


def _parse_score(value, where: str) -> float:
    if isinstance(value, bool):  # JSON true/false: float() would read them as 1.0 and 0.0
        raise STSInputError(f"{where}: score {value!r} is not a number")
    try:
        score = float(value)
    except (TypeError, ValueError):
        raise STSInputError(f"{where}: score {value!r} is not a number") from None
    if math.isnan(score):
        raise STSInputError(f"{where}: score is NaN")
    return score


def _parse_label(value, where: str) -> int:
    if isinstance(value, bool):
        return int(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise STSInputError(f"{where}: label {value!r} is not an integer class") from None
    if not number.is_integer():
        raise STSInputError(f"{where}: label {value!r} is not an integer class")
    return int(number)


def describe_shapes(names: Iterable[str], shapes: dict[str, tuple[str, ...]] = DATA_SHAPES) -> str:
    """'[sentence1, sentence2, score] (scored_pairs) or ...', for error messages."""
    return " or ".join(f"[{', '.join(shapes[name])}] ({name})" for name in names)


def detect_data_shape(
    columns: Iterable[str],
    where: str,
    data_shape: str | None = None,
    shapes: dict[str, tuple[str, ...]] = DATA_SHAPES,
) -> str:
    """The first data shape of `shapes` whose columns are all present (only `data_shape`, when given).

    Otherwise the error names the columns missing from the closest shape.
    """
    columns = list(columns)
    candidates = [data_shape] if data_shape else list(shapes)
    for shape in candidates:
        if set(shapes[shape]) <= set(columns):
            return shape
    closest = min(candidates, key=lambda shape: len(set(shapes[shape]) - set(columns)))
    missing = [name for name in shapes[closest] if name not in columns]
    raise STSInputError(
        f"{where}: missing column(s) {missing} of {describe_shapes([closest], shapes)}; found columns {columns}. "
        "Rename the pair columns with --sentence1_column, --sentence2_column and --score_column "
        "(docs/embeddings.md lists every data shape)"
    )


def _check_sentence(value, column: str, where: str) -> str:
    if not isinstance(value, str):
        raise STSInputError(f"{where}: column {column!r} must hold text, got {value!r}")
    if not value.strip():
        raise STSInputError(f"{where}: column {column!r} is empty{' (only whitespace)' if value else ''}")
    return value


def _invalid_utf8(path: str) -> STSInputError:
    """The error for a file that is not UTF-8, naming its first line that is not (the decoder of a text
    stream reads ahead, so its error tells no line)."""
    with open(path, "rb") as handle:
        for line_number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as error:
                return STSInputError(
                    f"{path}, line {line_number}: not UTF-8 (byte {line[error.start]:#04x} at character "
                    f"{len(line[: error.start].decode('utf-8')) + 1}); save the file as UTF-8"
                )
    return STSInputError(f"{path}: not UTF-8; save the file as UTF-8")


@contextmanager
def _open_text(path: str, **kwargs) -> Iterator[TextIO]:
    """`open(path)` to read text in ENCODING; a byte that is not UTF-8 raises `STSInputError` naming its line."""
    with open(path, encoding=ENCODING, **kwargs) as handle:
        try:
            yield handle
        except UnicodeDecodeError:
            raise _invalid_utf8(path) from None


def read_stsb_file(path: str) -> Iterator[tuple[str, str, float]]:
    """Rows of an original STS-B file: tab-separated, no header, no quoting, extra trailing columns allowed."""
    for _, sentence1, sentence2, score in _stsb_rows(path):
        yield sentence1, sentence2, score


def _stsb_rows(path: str) -> Iterator[tuple[str, str, str, float]]:
    """(where, sentence1, sentence2, score) of each row of an original STS-B file."""
    with _open_text(path) as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            fields = line.rstrip("\r\n").split("\t")
            where = f"{path}, line {line_number}"
            if len(fields) < 7:
                raise STSInputError(
                    f"{where}: expected at least 7 tab-separated columns ({STSB_COLUMNS}), found {len(fields)}"
                )
            yield where, fields[5], fields[6], _parse_score(fields[4], where)


def _looks_like_stsb(first_line: str) -> bool:
    fields = first_line.rstrip("\r\n").split("\t")
    if len(fields) < 7:
        return False
    try:
        float(fields[4])
    except ValueError:
        return False
    return True


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object, refusing a key given twice (json.loads would keep the last value silently)."""
    record = {}
    for key, value in pairs:
        if key in record:
            raise _DuplicateKey(key)
        record[key] = value
    return record


def _parse_json(text: str, where: str):
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as error:
        raise STSInputError(f"{where}: column {error.args[0]!r} appears twice") from None


def _records(path: str) -> Iterator[tuple[str, dict]]:
    """(where, record) for each row of a csv, tsv, json or jsonl file."""
    extension = os.path.splitext(path)[1].lower()
    if extension in (".csv", ".tsv"):
        with _open_text(path, newline="") as handle:
            reader = csv.DictReader(handle, delimiter="\t" if extension == ".tsv" else ",")
            header = reader.fieldnames or []
            twice = sorted({name for name in header if header.count(name) > 1})
            if twice:  # DictReader would keep only the last column of each name
                raise STSInputError(f"{path}, line 1: column(s) {twice} appear more than once in the header {header}")
            for row_number, row in enumerate(reader, start=2):
                yield f"{path}, line {row_number}", row
    elif extension == ".jsonl":
        with _open_text(path) as handle:
            for line_number, line in enumerate(handle, start=1):
                if line.strip():
                    try:
                        yield f"{path}, line {line_number}", _parse_json(line, f"{path}, line {line_number}")
                    except json.JSONDecodeError as error:
                        raise STSInputError(f"{path}, line {line_number}: invalid JSON ({error.msg})") from None
    elif extension == ".json":
        with _open_text(path) as handle:
            try:
                content = _parse_json(handle.read(), path)
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


def is_stsb_file(path: str) -> bool:
    """Whether a .csv/.tsv file is in the original STS-B layout (no header, the score in column 5)."""
    if not path.lower().endswith((".csv", ".tsv")) or not os.path.isfile(path):
        return False
    with _open_text(path) as handle:
        return _looks_like_stsb(handle.readline())


def _read_records(path: str) -> Iterator[tuple[str, dict]]:
    """(where, record) of a csv/tsv/json/jsonl file, or of an original STS-B file (its columns named)."""
    if os.path.isdir(path):
        raise STSInputError(f"{path} is a folder, not a data file (csv, tsv, json or jsonl)")
    if not os.path.isfile(path):
        raise STSInputError(f"data file not found: {path}")
    if is_stsb_file(path):
        for where, sentence1, sentence2, score in _stsb_rows(path):
            yield where, {"sentence1": sentence1, "sentence2": sentence2, "score": score}
        return
    for where, record in _records(path):
        if not isinstance(record, dict):
            raise STSInputError(f"{where}: expected a record with named columns, got {record!r}")
        yield where, record


def _rename(record: dict, column_mapping: dict[str, str]) -> dict:
    """The record with its columns renamed. A column named for another (`{"gold": "score"}`) replaces the
    record's own column of that name, which is then not read."""
    targets = set(column_mapping.values())
    return {
        column_mapping.get(key, key): value
        for key, value in record.items()
        if key in column_mapping or key not in targets
    }


def _checked_records(
    records: Iterable[tuple[str, dict]],
    source: str,
    score_range: tuple[float, float],
    data_shape: str | None,
    column_mapping: dict[str, str] | None = None,
    shapes: dict[str, tuple[str, ...]] = DATA_SHAPES,
) -> Iterator[dict]:
    """The records as `{column: value}` of one data shape of `shapes` (detected from the first record's
    columns), every value checked, read lazily.

    `column_mapping` renames columns; a column it names must be there when the data shape reads it, so
    a misspelt name is refused instead of leaving the record's own column of that name to be read.
    """
    column_mapping = column_mapping or {}
    columns: tuple[str, ...] | None = None
    low, high = score_range

    def refuse_missing(where: str, original: dict, targets) -> None:
        for name, target in column_mapping.items():
            if name not in original and target in targets:
                raise STSInputError(
                    f"{where}: no column {name!r} to read as {target!r} (--{target}_column); "
                    f"found columns {list(original)}"
                )

    for where, original in records:
        # a renamed column must be there where the data shape reads it, or where the record has a column of
        # the default name (which would otherwise be read instead)
        refuse_missing(where, original, original if columns is None else {*original, *columns})
        record = _rename(original, column_mapping)
        if columns is None:
            try:
                shape = detect_data_shape(record, source, data_shape, shapes)
            except STSInputError:
                refuse_missing(where, original, column_mapping.values())
                raise
            columns = shapes[shape]
        missing = [name for name in columns if name not in record]
        if missing:
            raise STSInputError(f"{where}: missing column(s) {missing}; found columns {list(record)}")
        checked = {}
        for name in columns:
            value = record[name]
            if name == "score":
                value = _parse_score(value, where)
                if not low <= value <= high:
                    raise STSInputError(f"{where}: score {value} is outside the score range [{low}, {high}]")
            elif name == "label":
                value = _parse_label(value, where)
            else:
                value = _check_sentence(value, name, where)
            checked[name] = value
        yield checked
    if columns is None:
        raise STSInputError(f"{source}: no examples found")


def _to_dataset(
    records: Iterable[tuple[str, dict]],
    source: str,
    score_range: tuple[float, float],
    data_shape: str | None,
    column_mapping: dict[str, str] | None = None,
) -> Dataset:
    """A Dataset of one data shape (detected from the first record's columns), every value checked."""
    columns: dict[str, list] = {}
    for record in _checked_records(records, source, score_range, data_shape, column_mapping):
        for name, value in record.items():
            columns.setdefault(name, []).append(value)
    return Dataset.from_dict(columns)


# What a file of pairs to score holds: pairs with gold scores (to report metrics beside the predictions), or bare pairs.
PAIRS_TO_SCORE = {"scored_pairs": DATA_SHAPES["scored_pairs"], "pairs": ("sentence1", "sentence2")}


def read_sentence_pairs(
    path: str, column_mapping: dict[str, str] | None = None, score_range: tuple[float, float] = (0.0, 5.0)
) -> Iterator[dict]:
    """The rows of a file of pairs to score, `{"sentence1", "sentence2"[, "score"]}` (the score when the file
    has one), checked and read one at a time, so a file of any size streams through.

    csv, tsv, jsonl (json files are read whole) or an original STS-B file; `column_mapping` as in
    `load_sts_dataset`. Errors name the file and line.
    """
    return _checked_records(
        _read_records(path), path, score_range, None, _file_column_mapping(path, column_mapping), PAIRS_TO_SCORE
    )


def _file_column_mapping(path: str, column_mapping: dict[str, str] | None) -> dict[str, str]:
    """The renames that apply to a data file: none for an original STS-B file (its columns have fixed places)."""
    if is_stsb_file(path):
        return {}
    return {name: target for name, target in (column_mapping or {}).items() if name != target}


def _load_hub_dataset(
    name: str,
    config_name: str | None,
    column_mapping: dict[str, str],
    score_range: tuple[float, float],
    data_shapes: dict[str, str | None],
    cache_dir: str | None,
    skip: Iterable[str] = (),
) -> dict[str, Dataset]:
    # Offline (HF_HUB_OFFLINE=1 or HF_DATASETS_OFFLINE=1), `datasets` reads its cache at once; online, a Hub it
    # cannot reach would cost minutes of retries before failing: one quick probe first.
    offline = datasets.config.HF_HUB_OFFLINE
    if not offline and not hub_reachable():
        raise STSInputError(
            f"dataset {name} could not be loaded: {hub_unreachable_reason()} (the datasets cache); {LOCAL_DATA_HINT}"
        )
    try:
        loaded = load_dataset(name, config_name, cache_dir=cache_dir)
    except (ConnectionError, FileNotFoundError) as error:  # DatasetNotFoundError is a FileNotFoundError
        reason = (
            "offline mode is on (HF_HUB_OFFLINE=1 or HF_DATASETS_OFFLINE=1) and it is not in the local datasets cache"
            if offline
            else " ".join(str(error).split())
        )
        raise STSInputError(f"dataset {name} could not be loaded: {reason}; {LOCAL_DATA_HINT}") from None
    splits = {}
    for split_name, split in loaded.items():
        if split_name not in SPLIT_ALIASES or SPLIT_ALIASES[split_name] in skip:
            continue
        source = f"dataset {name} ({split_name})"
        records = ((f"{source}, row {index}", row) for index, row in enumerate(split))
        split_key = SPLIT_ALIASES[split_name]
        splits[split_key] = _to_dataset(records, source, score_range, data_shapes.get(split_key), column_mapping)
    return splits


def load_sts_dataset(
    dataset_name: str | None = None,
    data_files: dict[str, str] | None = None,
    dataset_config_name: str | None = None,
    column_mapping: dict[str, str] | None = None,
    score_range: tuple[float, float] = (0.0, 5.0),
    data_shapes: dict[str, str | None] | None = None,
    cache_dir: str | None = None,
) -> DatasetDict:
    """Load sentence data.

    Args:
        dataset_name: a Hub dataset id (default `mteb/stsbenchmark-sts` when no `data_files` are
            given) or a local folder in the original STS-B layout (`sts-train.csv`, `sts-dev.csv`,
            `sts-test.csv`).
        data_files: `{"train"|"validation"|"test": path}`; csv, tsv, json or jsonl files (original
            STS-B files are recognized too). They add to or replace the splits of `dataset_name`.
        column_mapping: `{column in the data: column of the data shape}`, e.g. `{"text_a": "sentence1"}`.
        score_range: scores outside it are refused, naming the file and row.
        data_shapes: `{split: key of DATA_SHAPES}` to require for a split, instead of recognizing the
            shape from its columns.
    """
    check_score_range(*score_range)
    data_files = {split: path for split, path in (data_files or {}).items() if path}
    column_mapping = {k: v for k, v in (column_mapping or {}).items() if k != v}
    data_shapes = data_shapes or {}
    if dataset_name is None and not data_files:
        dataset_name = DEFAULT_DATASET
    splits: dict[str, Dataset] = {}
    if dataset_name is not None:
        if os.path.isdir(dataset_name):
            found = {s: os.path.join(dataset_name, f) for s, f in STSB_FILES.items()}
            found = {s: path for s, path in found.items() if os.path.isfile(path)}
            if not found:
                raise STSInputError(
                    f"dataset folder {dataset_name} has none of {', '.join(STSB_FILES.values())}; "
                    "pass --train_file/--validation_file/--test_file for other layouts"
                )
            for split, path in found.items():
                if split in data_files:
                    continue
                splits[split] = _to_dataset(_read_records(path), path, score_range, data_shapes.get(split))
        elif looks_like_local_path(dataset_name):
            raise STSInputError(f"dataset folder not found: {dataset_name}")
        else:
            splits.update(
                _load_hub_dataset(
                    dataset_name, dataset_config_name, column_mapping, score_range, data_shapes, cache_dir, data_files
                )
            )
    for split, path in data_files.items():
        mapping = _file_column_mapping(path, column_mapping)
        splits[split] = _to_dataset(_read_records(path), path, score_range, data_shapes.get(split), mapping)
    return DatasetDict(splits)


def check_data_fits_model(dataset: Dataset, model, split: str) -> str:
    """The data shape of `dataset`, after checking `model` (its loss) can learn from it."""
    shape = detect_data_shape(dataset.column_names, split)
    if shape not in model.data_shapes:
        loss = getattr(model.config, "loss", "mse")
        raise STSInputError(
            f"loss {loss!r} of the {model.config.arch} model needs columns {describe_shapes(model.data_shapes)}; "
            f"the {split} data has columns {dataset.column_names} ({shape})"
        )
    return shape


def tokenize_dataset(dataset: Dataset, model, desc: str | None = None, length_column: str | None = None) -> Dataset:
    """Tokenize once, the way `model` reads its data shape.

    Pairs go through `model.tokenize` (joint or per sentence, as the arch reads them) and scores are
    scaled to the 0-1 `labels` the model trains on; the sentences of other shapes become inputs
    1, 2, 3 in column order; class labels stay integers. With `length_column`, a column of that name holds
    each example's tokens over all its sequences, for the Trainer's length-grouped sampler
    (`train_sampling_strategy="group_by_length"` with `length_column_name`; it reads the column only with
    `remove_unused_columns=False`, since the model's `forward` takes no such argument).
    """
    shape = detect_data_shape(dataset.column_names, desc or "dataset")
    texts = [column for column in DATA_SHAPES[shape] if column not in ("score", "label")]

    def tokenize(batch):
        if shape in ("scored_pairs", "labelled_pairs"):
            features = model.tokenize(batch["sentence1"], batch["sentence2"])
        else:
            features = {}
            for number, column in enumerate(texts, start=1):
                encoded = model.tokenize_sentences(batch[column])
                features.update({f"{key}_{number}": value for key, value in encoded.items()})
        if shape == "scored_pairs":
            features["labels"] = [model.config.to_unit_range(score) for score in batch["score"]]
        elif "label" in batch:
            features["labels"] = batch["label"]
        if length_column:
            features[length_column] = sequence_lengths(features)
        return features

    return dataset.map(tokenize, batched=True, remove_columns=dataset.column_names, desc=desc)
