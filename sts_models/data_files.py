"""Reading the rows of local data files: csv, tsv, json, jsonl and original STS-B files, in UTF-8, each row with
where it came from (file and line or record) for one-line errors."""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from .errors import STSUserError

STSB_FILES = {"train": "sts-train.csv", "validation": "sts-dev.csv", "test": "sts-test.csv"}
# the names a split may go by -> the split (a Hub dataset's "dev" is its validation split)
SPLIT_ALIASES = {"train": "train", "validation": "validation", "dev": "validation", "test": "test"}
SPLIT_NAMES = ", ".join(
    split + "".join(f" ({alias})" for alias, target in SPLIT_ALIASES.items() if target == split != alias)
    for split in STSB_FILES
)  # "train, validation (dev), test", for errors
STSB_COLUMNS = "genre, file, year, id, score, sentence1, sentence2"
# UTF-8, with the byte order mark that some editors and spreadsheet exports put first read as no character
# (plain "utf-8" would make it part of the first column's name, or an error for JSON)
ENCODING = "utf-8-sig"


def split_of(name, argument: str) -> str:
    """The split `name` stands for (`SPLIT_ALIASES`: "dev" is the validation split); another name is refused in one
    line naming `argument`, rather than its data left unread."""
    if not isinstance(name, str) or name not in SPLIT_ALIASES:
        raise STSUserError(f"{argument} {name!r} is none of {SPLIT_NAMES}")
    return SPLIT_ALIASES[name]


def parse_score(value, where: str) -> float:
    if isinstance(value, bool):  # JSON true/false: float() would read them as 1.0 and 0.0
        raise STSUserError(f"{where}: score {value!r} is not a number")
    if isinstance(value, str) and "_" in value:  # Python's digit separator: float("1_0") is 10.0
        raise STSUserError(f"{where}: score {value!r} is not a number")
    try:
        score = float(value)
    except (TypeError, ValueError):
        raise STSUserError(f"{where}: score {value!r} is not a number") from None
    if math.isnan(score):
        raise STSUserError(f"{where}: score is NaN")
    return score


class ScoreOutOfRangeError(STSUserError):
    """A gold score outside the score range. The message names the Python API's argument, `score_range`; the
    commands name their flags, `--score_min`/`--score_max`."""

    def __init__(self, where: str, score: float, low: float, high: float):
        self.where, self.score, self.low, self.high = where, score, low, high
        message = f"{where}: score {score} is outside the score range [{low}, {high}] (gold scores on another scale: "
        super().__init__(message + "score_range=(min, max))", command_line=message + "--score_min/--score_max)")

    def __reduce__(self):  # pickled (a worker process's error) with the arguments it is made of
        return type(self), (self.where, self.score, self.low, self.high)


def _invalid_utf8(path: str) -> STSUserError:
    """The error for a file that is not UTF-8, naming its first line that is not (the decoder of a text
    stream reads ahead, so its error tells no line)."""
    with open(path, "rb") as handle:
        for line_number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as error:
                return STSUserError(
                    f"{path}, line {line_number}: not UTF-8 (byte {line[error.start]:#04x} at character "
                    f"{len(line[: error.start].decode('utf-8')) + 1}); save the file as UTF-8"
                )
    return STSUserError(f"{path}: not UTF-8; save the file as UTF-8")


@contextmanager
def _open_text(path: str, **kwargs) -> Iterator[TextIO]:
    """`open(path)` to read text in ENCODING; a byte that is not UTF-8 raises `STSUserError` naming its line."""
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
                raise STSUserError(
                    f"{where}: expected at least 7 tab-separated columns ({STSB_COLUMNS}), found {len(fields)}"
                )
            yield where, fields[5], fields[6], parse_score(fields[4], where)


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
        raise STSUserError(f"{where}: column {error.args[0]!r} appears twice") from None


# A tsv field holding one of these was quoted across rows: STS files are unquoted, so a sentence that starts with a
# quote opened one (python's csv and pandas quote a field with a tab in it, which is read as it was written)
TSV_ROW_BREAKS = "\r\n"


def spans_rows(value) -> bool:
    """Whether `value` is text with a line break (`TSV_ROW_BREAKS`), which no field of a tsv file holds."""
    return isinstance(value, str) and any(mark in value for mark in TSV_ROW_BREAKS)


# csv's default limit on one field (131,072 characters) is no limit of pandas, nor of a jsonl file's sentences
CSV_FIELD_LIMIT = 2**31 - 1


def _csv_rows(path: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(the line a row starts on, its fields) of each row of a csv/tsv file that is not blank, read with CSV quoting
    as pandas reads it: a field may be quoted, with line breaks inside (not in a tsv file; tabs, yes). A quoted field
    that is never closed (which would take in the rest of the file), one of a tsv file that spans a line break (an
    unquoted sentence that starts with a quote, which takes in the rows after it) and csv's own errors are refused in
    one line naming the line."""
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
    with _open_text(path, newline="") as handle:
        lines_read = [False]  # whether the reader has asked for a line past the last one

        def tracked() -> Iterator[str]:
            yield from handle
            lines_read[0] = True

        reader = csv.reader(tracked(), delimiter=delimiter)
        start = 1  # the line the next row starts on
        try:
            for fields in reader:
                # a row ends at a line's end, so the reader goes past the last line only for a quote left open
                if lines_read[0]:
                    raise STSUserError(
                        f'{path}, line {start}: a quoted field opens on this row and is never closed (a " that '
                        'begins a field opens a quote: write such a field quoted, with "" inside, or use jsonl)'
                    )
                if delimiter == "\t" and any(map(spans_rows, fields)):
                    raise STSUserError(
                        f"{path}, line {start}: a quoted field spans a line break, taking in the rows after it: an "
                        'unquoted sentence that starts with a "? (a " that begins a field opens a quote: write such '
                        'a field quoted, with "" inside; for sentences with line breaks, use jsonl)'
                    )
                if fields:
                    yield start, fields
                start = reader.line_num + 1
        except csv.Error as error:
            raise STSUserError(f"{path}, line {reader.line_num}: {error}") from None


def _records(path: str) -> Iterator[tuple[str, dict]]:
    """(where, record) for each row of a csv, tsv, json or jsonl file."""
    extension = os.path.splitext(path)[1].lower()
    if extension in (".csv", ".tsv"):
        separator = "tab" if extension == ".tsv" else "comma"
        rows = _csv_rows(path, "\t" if extension == ".tsv" else ",")
        _, header = next(rows, (1, []))
        twice = sorted({name for name in header if header.count(name) > 1})
        if twice:  # a record would keep only the last column of each name
            raise STSUserError(f"{path}, line 1: column(s) {twice} appear more than once in the header {header}")
        for line, fields in rows:
            if len(fields) > len(header):
                raise STSUserError(
                    f"{path}, line {line}: {len(fields) - len(header)} field(s) more than the {len(header)} "
                    f"columns of the header (an unquoted {separator} in a sentence? quote it)"
                )
            yield f"{path}, line {line}", dict(zip(header, fields + [None] * (len(header) - len(fields))))
    elif extension == ".jsonl":
        with _open_text(path) as handle:
            for line_number, line in enumerate(handle, start=1):
                if line.strip():
                    try:
                        yield f"{path}, line {line_number}", _parse_json(line, f"{path}, line {line_number}")
                    except json.JSONDecodeError as error:
                        raise STSUserError(f"{path}, line {line_number}: invalid JSON ({error.msg})") from None
    elif extension == ".json":
        with _open_text(path) as handle:
            try:
                content = _parse_json(handle.read(), path)
            except json.JSONDecodeError as error:
                raise STSUserError(f"{path}: invalid JSON ({error.msg}, line {error.lineno})") from None
        if isinstance(content, dict) and isinstance(content.get("data"), list):
            content = content["data"]
        if not isinstance(content, list):
            raise STSUserError(f"{path}: expected a JSON list of records")
        for index, record in enumerate(content):
            yield f"{path}, record {index}", record
    else:
        raise STSUserError(f"{path}: unsupported file type {extension!r}; use .csv, .tsv, .json or .jsonl")


def is_stsb_file(path: str) -> bool:
    """Whether a .csv/.tsv file is in the original STS-B layout (no header, the score in column 5)."""
    if not path.lower().endswith((".csv", ".tsv")) or not os.path.isfile(path):
        return False
    with _open_text(path) as handle:  # its first line that is not blank, as `_stsb_rows` skips blank lines
        return _looks_like_stsb(next((line for line in handle if line.strip()), ""))


def read_records(path: str) -> Iterator[tuple[str, dict]]:
    """(where, record) of a csv/tsv/json/jsonl file, or of an original STS-B file (its columns named)."""
    if os.path.isdir(path):
        raise STSUserError(f"{path} is a folder, not a data file (csv, tsv, json or jsonl)")
    if not os.path.isfile(path):
        raise STSUserError(f"data file not found: {path}")
    if is_stsb_file(path):
        for where, sentence1, sentence2, score in _stsb_rows(path):
            yield where, {"sentence1": sentence1, "sentence2": sentence2, "score": score}
        return
    for where, record in _records(path):
        if not isinstance(record, dict):
            raise STSUserError(f"{where}: expected a record with named columns, got {record!r}")
        yield where, record
