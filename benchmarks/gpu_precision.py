#!/usr/bin/env python
"""Why bf16 trains slower than float32 on a GPU at STS-B's batch size, measured: training steps (forward, backward,
fused AdamW) of each arch on STS-B train batches of 16, in float32, TF32, bf16 autocast, and bf16 autocast with cuDNN
attention switched off, with the GPU kernels launched per step counted by `torch.profiler` and the GPU's busy time
beside the wall time.

    python benchmarks/gpu_precision.py                                      # all-MiniLM-L6-v2, every arch
    python benchmarks/gpu_precision.py --model sentence-transformers/all-mpnet-base-v2 --batch_sizes 16,64

Two readings of a slow bf16, which the figures tell apart:

- launch-bound: a step whose wall time is far above its GPU busy time waits on the CPU launching kernels, and
  autocast's casts launch more of them. Then bf16 stays slow on batches it has seen before (`step_ms_warm`), and
  `bf16_nocudnn` is as slow as `bf16`.
- cuDNN attention plans: torch >= 2.11 on sm90/sm100 prefers cuDNN attention, which takes bf16/fp16 only and builds
  a plan for every new (batch, length) shape; STS batches bring new lengths all the time. Then bf16 is slow on new
  batches (`step_ms`) but not on seen ones (`step_ms_warm`), `bf16_nocudnn` is not slow, and the profile of unseen
  batches (`top_cpu_ops`) is led by `aten::_scaled_dot_product_cudnn_attention`.

Writes `--results` (default docs/results/gpu/precision.json).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from contextlib import nullcontext
from pathlib import Path

from common import REPO, stsb_rows, training_batches, write_results  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PRECISIONS = ("fp32", "tf32", "bf16", "bf16_nocudnn")
PROFILED = 5  # unseen batches profiled after the timed passes


def batches(model, batch_size: int, count: int) -> list[dict]:
    """The first `count` training batches of STS-B train, on the GPU."""
    rows = stsb_rows("train")[: batch_size * count]
    return [{key: value.cuda() for key, value in batch.items()} for batch in training_batches(model, rows, batch_size)]


def measure(arch: str, model_path: str, precision: str, batch_size: int, steps: int, warmup: int) -> dict:
    import torch

    from sts_models.architectures import load_model

    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    torch.backends.cudnn.allow_tf32 = precision == "tf32"
    cudnn_sdp = torch.backends.cuda.cudnn_sdp_enabled()
    torch.backends.cuda.enable_cudnn_sdp(cudnn_sdp and precision != "bf16_nocudnn")
    try:
        options = {"bert": {"symmetric": True, "loss": "binary_cross_entropy"}, "cross": {"cosine_skip": True}}
        model = load_model(arch, model_path, **options.get(arch, {})).cuda().train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
        data = batches(model, batch_size, warmup + steps + PROFILED)
        bf16 = precision.startswith("bf16")
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else nullcontext()

        def step(batch):
            with autocast:
                loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        def timed(part: list[dict]) -> float:
            torch.cuda.synchronize()
            start = time.perf_counter()
            for batch in part:
                step(batch)
            torch.cuda.synchronize()
            return (time.perf_counter() - start) / len(part)

        for batch in data[:warmup]:
            step(batch)
        timed_batches = data[warmup : warmup + steps]
        wall = timed(timed_batches)  # batches of shapes partly new to this process
        warm = timed(timed_batches)  # the same batches again: every shape seen before
        activities = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
        with torch.profiler.profile(activities=activities) as profile:
            for batch in data[-PROFILED:]:  # unseen batches, as most of a training run's are
                step(batch)
            torch.cuda.synchronize()
    finally:
        torch.backends.cuda.enable_cudnn_sdp(cudnn_sdp)
    events = profile.events()
    kernels = [event for event in events if event.device_type == torch.autograd.DeviceType.CUDA]
    busy = sum(event.device_time for event in kernels) / PROFILED / 1e6  # microseconds -> seconds, per step
    casts = sum(1 for event in events if event.name in ("aten::_to_copy", "aten::to", "aten::copy_"))
    attention = sorted(
        {
            event.name[:120]
            for event in kernels
            if any(k in event.name.lower() for k in ("cudnn", "fmha", "flash", "attention"))
        }
    )
    top = sorted(profile.key_averages(), key=lambda average: average.self_cpu_time_total, reverse=True)[:15]
    return {
        "step_ms": 1000 * wall,
        "step_ms_warm": 1000 * warm,
        "gpu_busy_ms": 1000 * busy,
        "kernels_per_step": len(kernels) / PROFILED,
        "cast_ops_per_step": casts / PROFILED,
        "samples_per_second": batch_size / wall,
        "attention_kernels": attention,
        "top_cpu_ops": [
            {"op": average.key, "self_cpu_ms_per_step": average.self_cpu_time_total / PROFILED / 1000}
            for average in top
        ],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="sentence-transformers/all-MiniLM-L6-v2")
    parser.add_argument("--archs", default="siamese,bert,cross")
    parser.add_argument("--batch_sizes", default="16")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--results", type=Path, default=REPO / "docs" / "results" / "gpu" / "precision.json")
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        parser.error("no CUDA GPU is visible")
    report = json.loads(args.results.read_text()) if args.results.exists() else {"runs": []}
    report.update(
        {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "cudnn": torch.backends.cudnn.version()}
    )
    for batch_size in map(int, args.batch_sizes.split(",")):
        for arch in args.archs.split(","):
            row = {"model": args.model, "arch": arch, "batch_size": batch_size}
            for precision in PRECISIONS:
                row[precision] = measure(arch, args.model, precision, batch_size, args.steps, args.warmup)
            for precision in ("bf16", "bf16_nocudnn"):
                row[f"{precision}_over_fp32_time"] = row[precision]["step_ms"] / row["fp32"]["step_ms"]
                row[f"{precision}_over_fp32_time_warm"] = row[precision]["step_ms_warm"] / row["fp32"]["step_ms_warm"]
            report["runs"] = [
                r for r in report["runs"] if (r["model"], r["arch"], r["batch_size"]) != (args.model, arch, batch_size)
            ] + [row]
            print(
                f"{args.model} {arch} batch {batch_size}: "
                + ", ".join(
                    f"{p} {row[p]['step_ms']:.1f} ms/step ({row[p]['step_ms_warm']:.1f} warm; GPU busy {row[p]['gpu_busy_ms']:.1f}, "
                    f"{row[p]['kernels_per_step']:.0f} kernels)"
                    for p in PRECISIONS
                ),
                flush=True,
            )
    report["command"] = shlex.join(["python", "benchmarks/gpu_precision.py", *(argv or sys.argv[1:])])
    write_results(args.results, report)


if __name__ == "__main__":
    main()
