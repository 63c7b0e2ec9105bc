"""Loading sentence data from the Hub, an STS-B folder or csv/tsv/json/jsonl files, and tokenizing it once.

Every loader returns a `DatasetDict` whose splits (`train`, `validation`, `test`) hold the columns of
one data shape of `sts_models.registry.DATA_SHAPES`: `sentence1, sentence2, score` (scored pairs, the
score on its original range), `sentence1, sentence2, label`, `anchor, positive[, negative]` or
`sentence, label`. The shape is recognized from the column names.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Iterator

from datasets import Dataset, DatasetDict, Features, Value, load_dataset
from datasets.fingerprint import Hasher

from .configuration import check_score_range
from .data_collator import sequence_lengths
from .data_files import (
    ENCODING,
    STSB_FILES,
    ScoreOutOfRangeError,
    is_stsb_file,
    parse_score,
    read_records,
    spans_rows,
    split_of,
)
from .data_shapes import describe_shapes, detect_data_shape
from .errors import STSUserError, has_text, refuse_surrogates
from .hub import looks_like_local_path
from .hub_data import DEFAULT_DATASET, hub_dataset_splits
from .registry import DATA_SHAPES


def _parse_label(value, where: str) -> int:
    if isinstance(value, bool):
        return int(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise STSUserError(f"{where}: label {value!r} is not an integer class") from None
    if not number.is_integer():
        raise STSUserError(f"{where}: label {value!r} is not an integer class")
    return int(number)


def _check_sentence(value, column: str, where: str) -> str:
    if not isinstance(value, str):
        raise STSUserError(f"{where}: column {column!r} must hold text, got {value!r}")
    if not has_text(value):
        detail = "" if not value else " (only whitespace)" if not value.strip() else " (only control characters)"
        raise STSUserError(f"{where}: column {column!r} is empty{detail}")
    refuse_surrogates(value, f"{where}: column {column!r}")
    return value


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
    score_range: tuple[float, float] | None,
    data_shape: str | None,
    column_mapping: dict[str, str] | None = None,
    shapes: dict[str, tuple[str, ...]] = DATA_SHAPES,
    with_places: bool = False,
) -> Iterator[dict] | Iterator[tuple[str, dict]]:
    """The records as `{column: value}` of one data shape of `shapes` (detected from the first record's
    columns), every value checked, read lazily; with `with_places`, `(where, record)` (file and line).

    `column_mapping` renames columns; a column it names must be there when the data shape reads it, so
    a misspelt name is refused instead of leaving the record's own column of that name to be read.
    """
    column_mapping = column_mapping or {}
    columns: tuple[str, ...] | None = None
    low, high = score_range if score_range is not None else (-math.inf, math.inf)

    def refuse_missing(where: str, original: dict, targets) -> None:
        for name, target in column_mapping.items():
            if name not in original and target in targets:
                found = f"found columns {list(original)}"
                raise STSUserError(
                    f"{where}: no column {name!r} to read as {target!r} (column_mapping); {found}",
                    command_line=f"{where}: no column {name!r} to read as {target!r} (--{target}_column); {found}",
                )

    for where, original in records:
        # a renamed column must be there where the data shape reads it, or where the record has a column of
        # the default name (which would otherwise be read instead)
        refuse_missing(where, original, original if columns is None else {*original, *columns})
        record = _rename(original, column_mapping)
        if columns is None:
            try:
                shape = detect_data_shape(record, source, data_shape, shapes)
            except STSUserError:
                refuse_missing(where, original, column_mapping.values())
                raise
            columns, first_where = shapes[shape], where
            # the columns another shape would read: in a later record (json), not in the first, they would be dropped
            others = {name for other in ([] if data_shape else shapes) for name in shapes[other]} - {*columns, *record}
        elif others.intersection(record):
            name = min(others.intersection(record))
            raise STSUserError(
                f"{where}: column {name!r} is not in the first record ({first_where}), whose columns make the data "
                f"{describe_shapes([shape], shapes)}: give every record the columns of one data shape"
            )
        missing = [name for name in columns if name not in record]
        if missing:
            raise STSUserError(f"{where}: missing column(s) {missing}; found columns {list(record)}")
        checked = {}
        for name in columns:
            value = record[name]
            if name == "score":
                value = parse_score(value, where)
                if not low <= value <= high:
                    raise ScoreOutOfRangeError(where, value, low, high)
            elif name == "label":
                value = _parse_label(value, where)
            else:
                value = _check_sentence(value, name, where)
            checked[name] = value
        yield (where, checked) if with_places else checked
    if columns is None:
        raise STSUserError(f"{source}: no examples found")


def _to_dataset(
    records: Iterable[tuple[str, dict]],
    source: str,
    score_range: tuple[float, float] | None,
    data_shape: str | None,
    column_mapping: dict[str, str] | None = None,
) -> Dataset:
    """A Dataset of one data shape (detected from the first record's columns), every value checked."""
    columns: dict[str, list] = {}
    for record in _checked_records(records, source, score_range, data_shape, column_mapping):
        for name, value in record.items():
            columns.setdefault(name, []).append(value)
    return Dataset.from_dict(columns)


# `datasets` builders for local files, by extension (an original STS-B file is read by `read_records`)
ARROW_BUILDERS = {
    ".csv": ("csv", {"sep": ","}),
    ".tsv": ("csv", {"sep": "\t"}),
    ".jsonl": ("json", {}),
    ".json": ("json", {}),
}


def _load_file(
    path: str,
    score_range: tuple[float, float] | None,
    data_shape: str | None,
    column_mapping: dict[str, str],
    cache_dir: str | None = None,
) -> Dataset:
    """A local data file as an Arrow-backed, cached Dataset of one data shape, every value checked.

    `datasets.load_dataset` converts the file once (a later run reads its cache) and the row checks run as a
    batched `map`, so a file of millions of rows never sits in memory as Python objects. Where `datasets` cannot
    read the file as it is, or a row fails a check, the reference reader (`read_records`, row by row) reads it
    instead: it names the file, line and column at fault, and reads what `datasets` types differently (a sentence
    that looks like a number) as the text it is.
    """
    builder = ARROW_BUILDERS.get(os.path.splitext(path)[1].lower())
    if builder is None or not os.path.isfile(path) or is_stsb_file(path):
        return _to_dataset(read_records(path), path, score_range, data_shape, column_mapping)
    name, options = builder
    if name == "csv":
        header = _csv_header(path, options["sep"])
        if header is None or len(header) != len(set(header)):  # pandas would rename a second column silently
            return _to_dataset(read_records(path), path, score_range, data_shape, column_mapping)
        # every field as the text it is (no NaN for empty fields, no numbers for sentences)
        text = Features({column: Value("string") for column in header})
        options = {**options, "keep_default_na": False, "features": text, "encoding": ENCODING, "quoting": 0}
    try:
        raw = load_dataset(name, data_files=path, split="train", cache_dir=cache_dir, **options)
    except Exception:  # noqa: BLE001 - any failure of the fast path: the reference reader reads the file
        return _to_dataset(read_records(path), path, score_range, data_shape, column_mapping)

    def check(batch: dict, indices: list[int]) -> dict:
        if options.get("sep") == "\t" and any(spans_rows(value) for values in batch.values() for value in values):
            raise ValueError("the row reader refuses this file, naming the line")  # (`data_files._csv_rows`)
        rows = ({column: values[i] for column, values in batch.items()} for i in range(len(indices)))
        records = ((f"{path}, row {index}", row) for index, row in zip(indices, rows))
        checked = list(_checked_records(records, path, score_range, data_shape, column_mapping))
        return {column: [row[column] for row in checked] for column in (checked[0] if checked else {})}

    try:
        if len(raw) == 0:
            raise STSUserError(f"{path}: no examples found")
        return raw.map(check, batched=True, with_indices=True, remove_columns=raw.column_names,
                       desc=f"Checking {os.path.basename(path)}")  # fmt: skip
    except Exception:  # noqa: BLE001 - a failed check, or bytes Arrow took and Python cannot decode
        # the reference reader names the line and column at fault (or reads the text datasets typed otherwise)
        return _to_dataset(read_records(path), path, score_range, data_shape, column_mapping)


def _csv_header(path: str, separator: str) -> list[str] | None:
    """The column names of a csv/tsv file; None where it cannot be read (the reference reader says why)."""
    try:
        with open(path, encoding=ENCODING, newline="") as handle:
            return next(csv.reader(handle, delimiter=separator), None)
    except (OSError, UnicodeDecodeError, csv.Error):
        return None


# What a file of pairs to score holds: pairs with gold scores (to report metrics beside the predictions), or bare pairs.
PAIRS_TO_SCORE = {"scored_pairs": DATA_SHAPES["scored_pairs"], "pairs": ("sentence1", "sentence2")}


def read_sentence_pairs(
    path: str,
    column_mapping: dict[str, str] | None = None,
    score_range: tuple[float, float] = (0.0, 5.0),
    with_places: bool = False,
) -> Iterator[dict] | Iterator[tuple[str, dict]]:
    """The rows of a file of pairs to score, `{"sentence1", "sentence2"[, "score"]}` (the score when the file
    has one), checked and read one at a time, so a file of any size streams through.

    csv, tsv, jsonl (json files are read whole) or an original STS-B file; `column_mapping` as in
    `load_sts_dataset`. Errors name the file and line. With `with_places`, `(where, row)`: where names the
    file and the row's line (or a json file's record), for the caller's own errors about the row.
    """
    (renames,) = _file_column_mappings([path], column_mapping)
    return _checked_records(read_records(path), path, score_range, None, renames, PAIRS_TO_SCORE, with_places)


def _file_column_mappings(
    paths: list[str], column_mapping: dict[str, str] | None, hub_dataset: bool = False
) -> list[dict[str, str]]:
    """The renames that apply to each data file: none for an original STS-B file (its columns have fixed places).
    A rename no source of the call reads (only original STS-B files, no Hub dataset) is refused rather than ignored."""
    renames = {name: target for name, target in (column_mapping or {}).items() if name != target}
    stsb = [bool(renames) and is_stsb_file(path) for path in paths]
    if renames and paths and all(stsb) and not hub_dataset:
        place = f"{paths[0]} is an original STS-B file, whose columns have fixed places: drop"
        name = next(iter(renames))
        raise STSUserError(
            f"{place} {name!r} from column_mapping", command_line=f"{place} the column flag naming {name!r}"
        )
    return [{} if is_stsb else renames for is_stsb in stsb]


def load_sts_dataset(
    dataset_name: str | None = None,
    data_files: dict[str, str] | None = None,
    dataset_config_name: str | None = None,
    column_mapping: dict[str, str] | None = None,
    score_range: tuple[float, float] | None = (0.0, 5.0),
    data_shapes: dict[str, str | None] | None = None,
    cache_dir: str | None = None,
    splits: Iterable[str] | None = None,
    sentences_only: Iterable[str] = (),
) -> DatasetDict:
    """Load sentence data.

    Args:
        dataset_name: a Hub dataset id (default `mteb/stsbenchmark-sts` when no `data_files` are
            given) or a local folder in the original STS-B layout (`sts-train.csv`, `sts-dev.csv`,
            `sts-test.csv`).
        data_files: `{"train"|"validation"|"test": path}` ("dev" for "validation"; another key is refused); csv,
            tsv, json or jsonl files (original STS-B files are recognized too). They add to or replace the splits of
            `dataset_name`, which is not read when `data_files` names a file, whichever `splits` are read.
        column_mapping: `{column in the data: column of the data shape}`, e.g. `{"text_a": "sentence1"}`.
        score_range: scores outside it are refused, naming the file and row; None reads them unchecked (splits
            read for their sentences only, such as GLUE's STS-B test split, scored -1).
        data_shapes: `{split: key of DATA_SHAPES}` to require for a split, instead of recognizing the
            shape from its columns.
        splits: the splits to read (default: all three; "dev" for "validation"); the others are neither read nor
            checked.
        sentences_only: splits read for their sentences only, their scores unchecked (as with `score_range` None).
    """
    if score_range is not None:
        check_score_range(*score_range)
    _refuse_empty_sources(dataset_name, data_files)
    wanted = set(STSB_FILES) if splits is None else {split_of(split, "splits entry") for split in splits}
    data_files, data_shapes = _by_split(data_files, "data_files"), _by_split(data_shapes, "data_shapes")
    if dataset_name is None and all(path is None for path in data_files.values()):  # whichever splits are read
        dataset_name = DEFAULT_DATASET
    data_files = {split: path for split, path in data_files.items() if path is not None and split in wanted}
    column_mapping = {k: v for k, v in (column_mapping or {}).items() if k != v}
    sentences_only = {split_of(split, "sentences_only entry") for split in sentences_only}
    ranges = dict.fromkeys(wanted, score_range) | dict.fromkeys(wanted & sentences_only, None)
    splits: dict[str, Dataset] = {}
    if dataset_name is not None:
        if os.path.isdir(dataset_name):
            found = {s: os.path.join(dataset_name, f) for s, f in STSB_FILES.items()}
            found = {s: path for s, path in found.items() if os.path.isfile(path)}
            if not found:
                none = f"dataset folder {dataset_name} has none of {', '.join(STSB_FILES.values())}"
                raise STSUserError(
                    f"{none}; pass data_files={{split: path}} for other layouts",
                    command_line=f"{none}; pass --train_file/--validation_file/--test_file for other layouts",
                )
            if dataset_config_name is not None:  # a configuration of a Hub dataset: ignored by a folder
                raise STSUserError(
                    f"dataset_config_name {dataset_config_name!r} names a configuration of a Hub dataset, and "
                    f"{dataset_name} is a local folder: leave it out",
                    command_line=f"--dataset_config_name {dataset_config_name} names a configuration of a Hub "
                    f"dataset, and --dataset_name {dataset_name} is a local folder: leave it out",
                )
            # its files are read as data_files are (an sts-*.csv file may be a csv file with a header)
            data_files = {split: found[split] for split in found if split in wanted} | data_files
        elif looks_like_local_path(dataset_name):
            raise STSUserError(f"dataset folder not found: {dataset_name}")
        else:
            skip = {*data_files, *(set(STSB_FILES) - wanted)}
            for split, (source, records) in hub_dataset_splits(
                dataset_name, dataset_config_name, cache_dir, skip
            ).items():
                splits[split] = _to_dataset(records, source, ranges[split], data_shapes.get(split), column_mapping)
    mappings = _file_column_mappings(list(data_files.values()), column_mapping, hub_dataset=bool(splits))
    for (split, path), mapping in zip(data_files.items(), mappings):
        splits[split] = _load_file(path, ranges[split], data_shapes.get(split), mapping, cache_dir)
    return DatasetDict({split: _with_integer_labels(dataset) for split, dataset in splits.items()})


def _refuse_empty_sources(dataset_name: str | None, data_files: dict | None) -> None:
    """Refuse an empty dataset name or file (`--train_file "$TRAIN"` with TRAIN unset), which would read the default
    Hub dataset instead."""
    empty = [("dataset_name", "--dataset_name", dataset_name)] + [
        (f"data_files[{key!r}]", f"--{split_of(key, 'data_files key')}_file", path)
        for key, path in (data_files or {}).items()
    ]
    for argument, flag, value in empty:
        if isinstance(value, str) and not value.strip():
            what = "a data file" if flag.endswith("_file") else "a Hub dataset or a local STS-B folder"
            raise STSUserError(
                f"{argument} is empty ({value!r}): name {what}, or leave it out",
                command_line=f"{flag} is empty ({value!r}; an unset variable?): name {what}, or leave the flag out",
            )


def _by_split(values: dict | None, argument: str) -> dict:
    """`{split: value}` of `load_sts_dataset`'s `{key: value}` argument, where a key may be an alias ("dev"); a key
    that names no split, or a split named twice, is refused."""
    by_split = {}
    for key, value in (values or {}).items():
        split = split_of(key, f"{argument} key")
        if split in by_split:
            raise STSUserError(f"{argument} names the {split} split twice: {list(values)}")
        by_split[split] = value
    return by_split


def _with_integer_labels(dataset: Dataset) -> Dataset:
    """`dataset` with its class labels typed as integers: checked to be whole numbers, they may still be typed as
    the file's floats (`"label": 1.0` in JSON lines), which a loss of classes would take for scores."""
    if "label" in dataset.column_names and dataset.features["label"] != Value("int64"):
        return dataset.cast_column("label", Value("int64"))
    return dataset


def tokenize_dataset(dataset: Dataset, model, desc: str | None = None, length_column: str | None = None) -> Dataset:
    """Tokenize once, the way `model` reads its data shape.

    Pairs go through `model.tokenize` (joint or per sentence, as the arch reads them) and scores are
    scaled to the 0-1 `labels` the model trains on; the sentences of other shapes become inputs
    1, 2, 3 in column order; class labels stay integers. With `length_column`, a column of that name holds
    each example's tokens over all its sequences, for the Trainer's length-grouped sampler
    (`train_sampling_strategy` `group_by_length` or `batch_rebalance`, with `length_column_name`; it reads it only with
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

    fingerprint = tokenization_fingerprint(dataset, model, length_column)
    return dataset.map(
        tokenize, batched=True, remove_columns=dataset.column_names, desc=desc, new_fingerprint=fingerprint
    )


def tokenization_fingerprint(dataset: Dataset, model, length_column: str | None = None) -> str:
    """What the tokenized dataset depends on, for `datasets`' cache: the data (its own fingerprint), the
    tokenizer (its whole definition) and the options that shape the features. A second run over the same file and
    model reads the cached features instead of tokenizing again (`datasets` could not hash the model itself)."""
    tokenizer = model.tokenizer
    if getattr(tokenizer, "is_fast", False):
        definition = json.loads(tokenizer.backend_tokenizer.to_str())
        for state in ("truncation", "padding"):  # set by each call: not what the tokenizer is
            definition.pop(state, None)
        definition = json.dumps(definition, sort_keys=True)
    else:
        definition = repr(sorted(tokenizer.get_vocab().items()))
    config = model.config
    options = [type(model).__name__, config.max_seq_length, getattr(config, "symmetric", False), config.score_min,
               config.score_max, length_column]  # fmt: skip
    return Hasher.hash([dataset._fingerprint, definition, repr(tokenizer.init_kwargs.get("do_lower_case")), options])
