"""The distinct sentences of STS-B, shared by the benchmarks that need a real corpus."""

from __future__ import annotations

from pathlib import Path

from common import STSB_DIR  # noqa: E402

from sts_models.data import STSB_FILES, read_stsb_file

DEFAULT_STSB = STSB_DIR


def unique_sentences(folder: Path, limit: int | None = None) -> list[str]:
    """The first `limit` (default: all) distinct sentences of STS-B (train, dev, test, in file order)."""
    seen: dict[str, None] = {}
    for name in STSB_FILES.values():
        for sentence1, sentence2, _ in read_stsb_file(str(folder / name)):
            seen.setdefault(sentence1)
            seen.setdefault(sentence2)
    sentences = list(seen)
    if limit is None:
        return sentences
    if len(sentences) < limit:
        raise SystemExit(f"STS-B has only {len(sentences)} unique sentences, fewer than {limit}")
    return sentences[:limit]
