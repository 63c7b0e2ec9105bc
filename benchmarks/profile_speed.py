#!/usr/bin/env python
"""Where the time goes: `torch.profiler` on `predict` and on training steps, on all-MiniLM-L6-v2 and STS-B.

- **predict**: `bert.predict` (symmetric off) and `siamese.encode` on STS-B test, batch 32, float32.
- **training**: optimizer steps of `configs/ARCH.yaml`'s model (forward, backward, AdamW) on STS-B train batches
  of 16, in float32 and under bf16 autocast (what `--bf16` does), once read in file order and once with the batches
  grouped by length (what `train_sampling_strategy=group_by_length` does), with the Trainer's optimizer (fused AdamW).

For each, the wall time and the self CPU time of PyTorch's operators summed by kind (matrix products, attention,
layer norm, ...); what the operators do not account for is Python, tokenization and data collation. Also the
padding: the share of the tokens in the batches that are padding. Writes docs/results/profile.json and prints
markdown tables for docs/performance.md. Run it on a quiet machine.

    python benchmarks/profile_speed.py                        # about 3 minutes on 2 cores
    python benchmarks/profile_speed.py --steps 3 --pairs 64 --results /tmp/profile.json     # a quick try
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from contextlib import nullcontext

from common import RESULTS, config_model, cpu_model, default_encoder, stsb_rows, training_batches, write_results

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from speed import SEED  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

# operator kinds, by the first pattern found in an operator's name (the rest: "other operators")
KINDS = {
    "matrix products": ("addmm", "aten::mm", "aten::bmm", "matmul", "linear", "baddbmm"),
    "attention": ("scaled_dot_product", "flash_attention", "softmax"),
    "layer norm": ("layer_norm",),
    "GELU": ("gelu",),
    "optimizer (AdamW)": ("_fused_adam", "_foreach", "adam", "lerp", "addcdiv", "addcmul", "sqrt"),
    "embedding lookup": ("embedding",),
    "casts and copies": ("aten::to", "_to_copy", "aten::copy_", "contiguous", "clone"),
}


def operator_kinds(prof, wall_s: float) -> dict:
    """Self CPU seconds per operator kind (and the 10 costliest operators), against the wall time."""
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    kinds = dict.fromkeys([*KINDS, "other operators"], 0.0)
    for event in events:
        name = event.key.lower()
        kind = next((k for k, patterns in KINDS.items() if any(p in name for p in patterns)), "other operators")
        kinds[kind] += event.self_cpu_time_total / 1e6
    operators = sum(kinds.values())
    kinds["outside operators (Python, tokenization, collation)"] = max(wall_s - operators, 0.0)
    top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:10]
    return {
        "wall_s": wall_s,
        "kinds_s": kinds,
        "kinds_share": {k: v / wall_s for k, v in kinds.items()},
        "top_operators": [{"name": e.key, "self_cpu_s": e.self_cpu_time_total / 1e6, "calls": e.count} for e in top],
    }


def profiled(run) -> dict:
    run()  # warm-up: the first call pays for allocations and oneDNN's kernel choice
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        run()
        wall = time.perf_counter() - start
    return operator_kinds(prof, wall)


def padding_share(batches: list[dict[str, torch.Tensor]]) -> float:
    """Share of the batches' token positions that are padding."""
    masks = [value for batch in batches for key, value in batch.items() if key.startswith("attention_mask")]
    return 1 - sum(int(m.sum()) for m in masks) / sum(m.numel() for m in masks)


def length_grouped_order(model, rows, batch_size: int) -> list[int]:
    """The order of `rows` grouped by length, as the Trainer's LengthGroupedSampler reads them."""
    from transformers.trainer_pt_utils import get_length_grouped_indices

    features = model.tokenize([a for a, _, _ in rows], [b for _, b, _ in rows])
    lengths = [sum(len(features[k][i]) for k in features if k.startswith("input_ids")) for i in range(len(rows))]
    return get_length_grouped_indices(lengths, batch_size, generator=torch.Generator().manual_seed(SEED))


def training_profile(arch: str, encoder: str, rows, steps: int, precision: str, grouped: bool) -> dict:
    from transformers import Trainer

    flags = ["--bf16", "false", *(["--symmetric", "false"] if arch == "bert" else [])]
    torch.manual_seed(SEED)
    model, training_args = config_model(arch, encoder, "/tmp/profile-unused", flags)
    model.train()

    # the Trainer's optimizer for these arguments (AdamW, fused on the CPU too)
    optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(training_args, model)
    optimizer = optimizer_cls(model.parameters(), **optimizer_kwargs)
    order = length_grouped_order(model, rows, 16) if grouped else None
    batches = training_batches(model, rows, 16, order)[:steps]

    def run():
        for batch in batches:
            with torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else nullcontext():
                loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()

    result = profiled(run)  # the steps once untimed, then profiled
    result.update(arch=arch, precision=precision, grouped_by_length=grouped, steps=len(batches),
                  samples_per_second=16 * len(batches) / result["wall_s"],
                  padding_share=padding_share(batches))  # fmt: skip
    return result


def predict_profiles(encoder: str, pairs) -> list[dict]:
    results = []
    for arch, flags in (("bert", ["--symmetric", "false"]), ("siamese", [])):
        torch.manual_seed(SEED)
        model = config_model(arch, encoder, "/tmp/x", flags)[0].eval()
        if arch == "bert":
            task, run = "bert.predict", lambda m=model: m.predict(pairs, batch_size=32, show_progress_bar=False)
            features = model.tokenize([a for a, _ in pairs], [b for _, b in pairs])
        else:
            sentences = [s for pair in pairs for s in pair]
            task = "siamese.encode"
            run = lambda m=model: m.encode(sentences, batch_size=32, show_progress_bar=False)  # noqa: E731
            features = model.tokenize_sentences(sentences)
        result = profiled(run)
        batches = [batch for _, batch in model.sorted_batches(features, 32)]
        result.update(task=task, items=len(pairs) if arch == "bert" else 2 * len(pairs),
                      padding_share=padding_share(batches))  # fmt: skip
        results.append(result)
    return results


def markdown(report: dict) -> str:
    rows = [*report["predict"], *report["training"]]
    names = [f"`{r['task']}`" if "task" in r else
             f"`{r['arch']}` step, {r['precision']}{', grouped by length' if r['grouped_by_length'] else ''}"
             for r in rows]  # fmt: skip
    kinds = list(rows[0]["kinds_share"])
    lines = ["| | wall s | padding | " + " | ".join(kinds) + " |", "|---" * (len(kinds) + 3) + "|"]
    for name, row in zip(names, rows):
        shares = " | ".join(f"{100 * row['kinds_share'][k]:.0f}%" for k in kinds)
        lines.append(f"| {name} | {row['wall_s']:.2f} | {100 * row['padding_share']:.0f}% | {shares} |")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="profiled training steps per setting (default 20)")
    parser.add_argument("--pairs", type=int, default=400, help="STS-B test pairs to predict (default 400)")
    parser.add_argument("--archs", default="siamese,bert,cross", help="archs whose training step is profiled")
    parser.add_argument("--results", default=str(RESULTS / "profile.json"))
    args = parser.parse_args(argv)
    encoder = default_encoder()
    load_before = os.getloadavg()
    test = [(a, b) for a, b, _ in stsb_rows("test")][: args.pairs]
    train = stsb_rows("train")
    random.Random(SEED).shuffle(train)
    train = train[: 16 * args.steps]
    report = {"command": " ".join(["python", "benchmarks/profile_speed.py", *argv]),
              "machine": {"cpu": cpu_model(), "torch_threads": torch.get_num_threads(),
                          "load_average_before": list(load_before)},
              "torch": torch.__version__}  # fmt: skip
    report["predict"] = predict_profiles(encoder, test)
    report["training"] = [
        training_profile(arch, encoder, train, args.steps, precision, grouped)
        for arch in args.archs.split(",")
        for precision, grouped in (("fp32", False), ("bf16", False), ("bf16", True))
    ]
    report["machine"]["load_average_after"] = list(os.getloadavg())
    report["markdown"] = markdown(report)
    write_results(args.results, report)
    print(report["markdown"])
    print(f"\nload average {load_before[0]:.2f} before, {report['machine']['load_average_after'][0]:.2f} after; "
          f"written to {args.results}")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
