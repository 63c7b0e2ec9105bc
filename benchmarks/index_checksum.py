#!/usr/bin/env python
"""What checking a saved index costs: `EmbeddingIndex.load` reads `index.faiss` once for its xxh3-128 checksum
(`sts_models.artifacts.file_checksum`) before faiss reads it. Timed on a file of the size of 1M int8 embeddings of
384 dimensions (392 MB: the checksum depends on the bytes, not on what they mean), from the page cache, raced in one
process against faiss' own read of an int8 index of that size and against sha256 of the same bytes.

    python benchmarks/index_checksum.py        # -> docs/results/checks/index_checksum.json
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from pathlib import Path

from common import RESULTS, machine, race, sha256_file, write_results

SIZE = 1_000_000 * 392  # bytes of 1M int8 embeddings of 384 dimensions, with faiss' per-vector overhead


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--results", type=Path, default=RESULTS / "checks" / "index_checksum.json")
    args = parser.parse_args(argv)
    from sts_models.artifacts import file_checksum

    load_before = Path("/proc/loadavg").read_text().strip()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "index.faiss")
        with open(path, "wb") as handle:
            for _ in range(SIZE // (1 << 24)):
                handle.write(os.urandom(1 << 24))
            handle.write(os.urandom(SIZE % (1 << 24)))
        times = race({"xxh3_128 (load's check)": lambda: file_checksum(path), "sha256": lambda: sha256_file(path)},
                     args.rounds)  # fmt: skip
    check, sha = times["xxh3_128 (load's check)"]["best_s"], times["sha256"]["best_s"]
    report = {
        "bytes": SIZE,
        "times": times,
        "check_s": round(check, 4),
        "gb_per_s": round(SIZE / check / 1e9, 2),
        "sha256_over_check": round(sha / check, 2),
        "machine": {
            **machine(),
            "loadavg_before": load_before,
            "loadavg_after": Path("/proc/loadavg").read_text().strip(),
        },
        "command": "python "
        + shlex.join(["benchmarks/index_checksum.py", *(argv if argv is not None else sys.argv[1:])]),
    }
    write_results(args.results, report)
    print(f"checksum of {SIZE / 1e6:.0f} MB: {check:.3f} s ({report['gb_per_s']} GB/s); sha256 {sha:.3f} s "
          f"({report['sha256_over_check']}x); written to {args.results}")  # fmt: skip
    return report


if __name__ == "__main__":
    main()
