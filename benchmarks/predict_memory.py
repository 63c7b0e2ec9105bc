#!/usr/bin/env python
"""Peak memory and speed of `predict.py` on pairs files of 10k, 100k and 1M pairs: memory must stay flat.

The model is the bundled all-MiniLM-L6-v2 as a `siamese` model (mean pooling, cosine head), saved to a temporary
folder. Each file holds random pairs of the distinct STS-B sentences (seeded), as jsonl, with no sentence twice
within a chunk (so every sentence of every pair is encoded). Each size runs
`predict.py` in a fresh process that reports its own peak resident memory (VmHWM), so the figures do not mix.

    python benchmarks/predict_memory.py                              # -> docs/results/predict_memory.json
    python benchmarks/predict_memory.py --sizes 1000,10000 --results /tmp/predict_memory.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, RESULTS, STSB_DIR, default_encoder, machine, peak_rss_mib, unique_sentences, write_results

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TARGET_MIB = 100  # peak RSS of the largest run within this of the smallest


def write_pairs(path: Path, sentences: list[str], size: int, block: int, seed: int) -> None:
    """`size` random pairs, no sentence twice within each `block` of pairs (a chunk of predict.py): every
    sentence slot is then encoded, so the distinct-sentence saving of siamese scoring plays no part."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as handle:
        for start in range(0, size, block):
            count = min(block, size - start)
            drawn = rng.sample(sentences, 2 * count)
            for first, second in zip(drawn[:count], drawn[count:]):
                handle.write(json.dumps({"sentence1": first, "sentence2": second}, ensure_ascii=False) + "\n")


def child(argv: list[str]) -> None:
    """Run predict.py's `main` in this process and print its wall time and this process's peak RSS."""
    spec = importlib.util.spec_from_file_location("predict_cli", REPO / "predict.py")
    predict = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(predict)
    start = time.perf_counter()
    predict.main(argv)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_rss_mib": peak_rss_mib()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated numbers of pairs")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--chunk_size", type=int, default=5_000, help="at most half the distinct STS-B sentences")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default=None, help="a saved STS model (default: the bundled MiniLM, as siamese)")
    parser.add_argument("--stsb", default=str(STSB_DIR), help="the STS-B folder the sentences come from")
    parser.add_argument("--results", default=str(RESULTS / "predict_memory.json"))
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    if any(size < 1 for size in sizes):
        parser.error(f"--sizes must be positive, got {args.sizes}")

    import torch
    import transformers

    from sts_models import STSSiameseModel
    from sts_models.hub import DEFAULT_MODEL

    sentences = unique_sentences(Path(args.stsb))
    if 2 * args.chunk_size > len(sentences):
        parser.error(f"--chunk_size above {len(sentences) // 2} would repeat sentences within a chunk")
    before = machine()
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        model = args.model
        if model is None:
            model = os.path.join(folder, "siamese")
            STSSiameseModel.from_encoder(default_encoder()).save_pretrained(model)
        for size in sizes:
            pairs, output = Path(folder) / f"pairs-{size}.jsonl", Path(folder) / f"scores-{size}.tsv"
            write_pairs(pairs, sentences, size, args.chunk_size, args.seed)
            command = [model, str(pairs), str(output), "--batch_size", str(args.batch_size),
                       "--chunk_size", str(args.chunk_size)]  # fmt: skip
            print(f"{size:,} pairs: predict.py {shlex.join(command)}", flush=True)
            result = subprocess.run(
                [sys.executable, __file__, "--child", *command], stdout=subprocess.PIPE, text=True, check=True
            )
            measured = json.loads(result.stdout.strip().splitlines()[-1])
            with open(output, encoding="utf-8") as handle:
                written = sum(1 for _ in handle) - 1
            if written != size:
                raise SystemExit(f"predict.py wrote {written} scores for {size} pairs")
            run = {"pairs": size, **measured, "pairs_per_second": size / measured["seconds"]}
            runs.append(run)
            print(f"  peak RSS {run['peak_rss_mib']:.0f} MiB, {run['pairs_per_second']:.0f} pairs/s", flush=True)
            pairs.unlink()
            output.unlink()
    growth = runs[-1]["peak_rss_mib"] - runs[0]["peak_rss_mib"]
    report = {
        "runs": runs,
        "peak_rss_growth_mib": growth,
        "target": f"peak RSS of the {sizes[-1]:,}-pair run within {TARGET_MIB} MiB of the {sizes[0]:,}-pair run",
        "meets_target": growth <= TARGET_MIB,
        "setup": {
            "model": args.model or f"{DEFAULT_MODEL} as a siamese model, mean pooling, cosine head",
            "pairs": "random pairs of the distinct STS-B sentences (train, dev, test), no sentence twice within a "
            "chunk, jsonl",
            "batch_size": args.batch_size,
            "chunk_size": args.chunk_size,
            "seed": args.seed,
        },
        "machine_before": before,
        "machine_after": machine(),
        "threads": torch.get_num_threads(),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "command": "python " + shlex.join([os.path.relpath(__file__, REPO), *sys.argv[1:]]),
    }
    write_results(args.results, report)
    print(f"\n{'pairs':>10} {'peak RSS MiB':>13} {'pairs/s':>8}")
    for run in runs:
        print(f"{run['pairs']:>10,} {run['peak_rss_mib']:>13.0f} {run['pairs_per_second']:>8.0f}")
    verdict = "meets" if report["meets_target"] else "misses"
    print(f"growth {growth:+.0f} MiB: {verdict} the target ({report['target']}); written to {args.results}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2:])
    else:
        main()
