#!/usr/bin/env python
"""Loading and tokenizing a large local training file through `datasets`: peak memory, and the second run reading
the cache. A positive-pairs jsonl of `--pairs` rows (STS-B sentences paired at random) is loaded with
`sts_models.data.load_sts_dataset` (Arrow-backed, row checks as a batched `map`) and tokenized for a siamese model
with `tokenize_dataset`, twice, each run in a fresh process with the same datasets cache. Targets: peak RSS under
2 GiB, and the second run under a tenth of the first's time.

    python benchmarks/data_loading.py                          # 1M pairs -> docs/results/data_loading.json
    python benchmarks/data_loading.py --pairs 20000 --results /tmp/data_loading.json   # a quick try
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import RESULTS, default_encoder, machine, peak_rss_mib, unique_sentences, write_results

RUN = """
import json, sys, time
from sts_models import STSSiameseModel
from sts_models.data import load_sts_dataset, tokenize_dataset
model = STSSiameseModel.from_encoder(sys.argv[2], loss="multiple_negatives_ranking")
start = time.perf_counter()  # the file read, checked and tokenized (imports and the model are not timed)
data = load_sts_dataset(data_files={"train": sys.argv[1]})["train"]
tokenized = tokenize_dataset(data, model, desc="Tokenizing")
seconds = time.perf_counter() - start
sys.path.insert(0, sys.argv[3])
from common import peak_rss_mib
print(json.dumps({"rows": len(tokenized), "columns": tokenized.column_names, "seconds": seconds,
                  "peak_rss_mib": peak_rss_mib(), "cache_files": len(tokenized.cache_files)}))
"""


def write_pairs(path: Path, pairs: int, seed: int = 42) -> None:
    sentences = unique_sentences()
    generator = random.Random(seed)
    with open(path, "w", encoding="utf-8") as handle:
        for _ in range(pairs):
            anchor, positive = generator.sample(sentences, 2)
            handle.write(json.dumps({"anchor": anchor, "positive": positive}) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--results", type=Path, default=RESULTS / "data_loading.json")
    args = parser.parse_args(argv)
    encoder = default_encoder()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        data = scratch / "positive_pairs.jsonl"
        write_pairs(data, args.pairs)
        env = {**os.environ, "HF_DATASETS_CACHE": str(scratch / "cache"), "HF_HUB_OFFLINE": "1",
               "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "true"}  # fmt: skip
        runs = []
        for label in ("first run", "second run (cache)"):
            command = [sys.executable, "-c", RUN, str(data), encoder, str(Path(__file__).resolve().parent)]
            result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            if result.returncode:
                raise SystemExit(f"data_loading.py: error: the {label} failed:\n{result.stderr[-3000:]}")
            run = json.loads(result.stdout.strip().splitlines()[-1])
            runs.append({"run": label, **run})
            print(f"{label}: {run['seconds']:.1f} s, peak RSS {run['peak_rss_mib']:.0f} MiB", flush=True)
        size = data.stat().st_size
    report = {
        "pairs": args.pairs,
        "file_mib": size / 2**20,
        "runs": runs,
        "second_over_first": runs[1]["seconds"] / runs[0]["seconds"],
        "targets": {"peak_rss_mib_below": 2048, "second_over_first_below": 0.1},
        "met": max(run["peak_rss_mib"] for run in runs) < 2048 and runs[1]["seconds"] < 0.1 * runs[0]["seconds"],
        "machine": machine(),
        "benchmark_peak_rss_mib": peak_rss_mib(),
        "command": shlex.join(["python", "benchmarks/data_loading.py", *(argv if argv is not None else sys.argv[1:])]),
        "when": time.strftime("%Y-%m-%d"),
    }
    write_results(args.results, report)
    print(f"second/first {report['second_over_first']:.3f}; targets met: {report['met']}")


if __name__ == "__main__":
    main()
