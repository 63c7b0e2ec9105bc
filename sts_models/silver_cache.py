"""The silver-label cache of distillation: one JSON-lines file per teachers, training data and sampling options
(`distillation.silver_labels` names it), written whole; read back only when every row is a labelled pair a teacher
could have scored."""

from __future__ import annotations

import hashlib
import json
import os

from datasets import Dataset

from .artifacts import file_written_whole

SILVER_FORMAT = 2  # bump when the cache file's rows or their meaning change (2: dev/test sentences left out)


def data_fingerprint(train: Dataset, held_out: set[str] = frozenset()) -> str:
    """sha256 of the training pairs and of the sentences kept out of the silver pairs."""
    digest = hashlib.sha256()
    for sentence_1, sentence_2, score in zip(train["sentence1"], train["sentence2"], train["score"]):
        digest.update(json.dumps([sentence_1, sentence_2, score]).encode())
    digest.update(json.dumps(sorted(held_out)).encode())
    return digest.hexdigest()


def write_json_lines(path: str, header: dict, rows: list[dict]) -> None:
    """`header` then `rows`, one JSON object a line, written whole or not at all."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with file_written_whole(path) as handle:
        for row in (header, *rows):
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


SILVER_ROW_KEYS = {"sentence1": str, "sentence2": str, "score": (int, float), "gold": bool}
SILVER_HEADER_KEYS = {"silver_pairs": int, "labelling_seconds": (int, float)}  # what a run reports of a reused cache


def teacher_score_bounds(score_range: tuple[float, float]) -> tuple[float, float]:
    """The scores a teacher on `score_range` can give: up to its maximum, and down to a width below its minimum (a
    siamese teacher's cosine of -1), each with a margin for float32 rounding (a cosine of 1.0000001)."""
    low, high = map(float, score_range)
    margin = 1e-4 * (high - low)
    return low - (high - low) - margin, high + margin


def read_silver_cache(path: str, gold_pairs: int, score_range: tuple[float, float]) -> tuple[dict, list[dict]]:
    """The header and rows `write_json_lines` wrote to a silver-label cache file of `gold_pairs` gold pairs, scored
    on `score_range`; ValueError when the file is not that (damaged, cut short or edited)."""
    low, high = teacher_score_bounds(score_range)
    with open(path, encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    header = rows[0] if rows and isinstance(rows[0], dict) else {}
    if not all(isinstance(header.get(key), t) for key, t in SILVER_HEADER_KEYS.items()):
        raise ValueError("no header line with the number of silver pairs and the labelling time")
    rows = rows[1:]
    for number, row in enumerate(rows, start=2):
        if not isinstance(row, dict) or not all(isinstance(row.get(key), t) for key, t in SILVER_ROW_KEYS.items()):
            raise ValueError(f"line {number} is not a labelled pair")
        if not low <= row["score"] <= high:  # NaN fails too
            raise ValueError(f"line {number}: score {row['score']} is not a teacher's score on {low:g} to {high:g}")
    gold = sum(row["gold"] for row in rows)
    if gold != gold_pairs or len(rows) - gold != header["silver_pairs"]:
        raise ValueError(
            f"{gold} gold and {len(rows) - gold} silver pairs, not {gold_pairs} and {header['silver_pairs']}"
        )
    return header, rows
