#!/usr/bin/env python
"""STS-B quality benchmark: our three architectures against sentence-transformers' own recipes.

One *system* per `train` call: it trains from all-MiniLM-L6-v2 on STS-B train, keeps the epoch with
the best dev Spearman, evaluates dev, test and SICK-R test (transfer, never trained on), and writes
one JSON result. `report` renders every result into one markdown table.

    python benchmarks/sts_quality.py train cross                   # -> docs/results/cross.json
    python benchmarks/sts_quality.py train st-cross-encoder --seed 43 --results docs/results/seeds/st-cross-encoder-43.json
    python benchmarks/sts_quality.py train cross --resume          # a stopped run: on from its last checkpoint
    python benchmarks/sts_quality.py report                        # -> docs/results.md
    python benchmarks/sts_quality.py plot                          # -> docs/plots/SYSTEM.png

Systems: `bert`, `siamese`, `cross` (ours, recipes in configs/), and the anchors
`st-cross-encoder` (CrossEncoder, BinaryCrossEntropyLoss, num_labels=1), `st-bi-encoder`
(SentenceTransformer, CosineSimilarityLoss), `st-bi-encoder-cosent` (SentenceTransformer, CoSENTLoss):
4 epochs, batch 16, lr 2e-5, 10% warmup.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, RESULTS, STSB_DIR, machine, read_sick_test, write_results

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

OURS = ("bert", "siamese", "cross")
ANCHORS = ("st-cross-encoder", "st-bi-encoder", "st-bi-encoder-cosent")
# all-MiniLM-L6-v2 as it comes (cosine of its embeddings): the zero-shot reference, e.g. for SICK-R transfer
UNTRAINED = "untrained"
# The original notebook's six pairs, intended similarity 0 to 5.
NOTEBOOK_EXAMPLES = [
    ("I love eating apples", "The capital of France is Paris"),
    ("I have a black cat", "My pet is a dog"),
    ("He plays soccer on weekends", "She enjoys playing tennis on Sundays"),
    ("The sun is shining in the sky", "It is a bright and sunny day"),
    ("The smartphone has a large screen", "This phone features a big display"),
    ("The dog is barking loudly", "The dog is barking loudly"),
]
KIND = {
    "bert": "cross-encoder",
    "cross": "cross-attention",
    "st-cross-encoder": "cross-encoder",
    UNTRAINED: "bi-encoder, not trained",
}


def stsb_splits(max_train_samples: int | None, max_eval_samples: int | None):
    from sts_models.data import load_sts_dataset

    data = load_sts_dataset(str(STSB_DIR))
    if max_train_samples:
        data["train"] = data["train"].select(range(max_train_samples))
    if max_eval_samples:
        for split in ("validation", "test"):
            data[split] = data[split].select(range(max_eval_samples))
    return data


def correlations(predictions, gold) -> dict[str, float]:
    from sts_models.metrics import correlation_metrics

    metrics = correlation_metrics(predictions, gold)
    return {"pearson": metrics["pearson"], "spearman": metrics["spearman"]}


def resume_flags(output_dir: Path, resume: bool) -> list[str]:
    """run_sts.py's flags for a new run in `output_dir` (replacing an earlier one), or with `resume` for continuing a
    stopped run from its last whole checkpoint there (the Trainer restores the optimizer, schedule and RNG states)."""
    if not resume:
        return ["--overwrite_output_dir"]
    from sts_models.cli.output_dir import last_checkpoint

    checkpoint = last_checkpoint(str(output_dir)) if output_dir.is_dir() else None
    if checkpoint is None:
        raise SystemExit(f"--resume: no checkpoint-N folder saved whole in {output_dir}: train without --resume")
    return ["--resume_from_checkpoint", checkpoint]


def resumed_from(command: list[str]) -> str:
    """The checkpoint (folder name) that `command` (`python run_sts.py RUN_FILE FLAGS`) resumed from: its
    `resume_from_checkpoint` as run_sts.py parsed it (the last flag given wins, e.g. one of the extra flags)."""
    from sts_models.cli.arguments import parse_args

    return Path(parse_args(command[2:])[2].resume_from_checkpoint).name


def train_ours(arch: str, seed: int, output_dir: Path, args) -> dict:
    """run_sts.py with configs/<arch>.yaml, then SICK-R with the saved model's `predict`."""
    command = [
        sys.executable,
        str(REPO / "run_sts.py"),
        str(args.config or REPO / "configs" / f"{arch}.yaml"),
        "--dataset_name",
        str(STSB_DIR),
        "--output_dir",
        str(output_dir),
        "--seed",
        str(seed),
        "--do_predict",
        "true",
        *resume_flags(output_dir, args.resume),
        *args.extra,
    ]  # fmt: skip (each call trains anew, or with --resume continues a stopped run)
    if args.max_train_samples:
        command += ["--max_train_samples", str(args.max_train_samples)]
    if args.max_eval_samples:
        command += [
            "--max_eval_samples",
            str(args.max_eval_samples),
            "--max_predict_samples",
            str(args.max_eval_samples),
        ]
    subprocess.run(command, check=True, cwd=REPO)
    results = json.loads((output_dir / "all_results.json").read_text())

    from transformers import AutoModel

    import sts_models  # noqa: F401  (registers the Auto classes)

    model = AutoModel.from_pretrained(output_dir)
    sick = read_sick_test()[: args.max_eval_samples or None]
    sick_metrics = correlations(model.predict([(a, b) for a, b, _ in sick], batch_size=64), [s for *_, s in sick])
    state = json.loads((output_dir / "trainer_state.json").read_text())
    with open(output_dir / "predict_results.tsv", encoding="utf-8", newline="") as handle:
        test_predictions = [
            float(row["prediction"]) for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        ]
    resumed = {"resumed_from": resumed_from(command)} if args.resume else {}
    return {
        **resumed,
        "eval_pearson": results["eval_pearson"],
        "eval_spearman": results["eval_spearman"],
        "test_pearson": results["test_pearson"],
        "test_spearman": results["test_spearman"],
        "sick_test_pearson": sick_metrics["pearson"],
        "sick_test_spearman": sick_metrics["spearman"],
        "train_seconds": results["train_runtime"],
        "train_samples_per_second": results["train_samples_per_second"],
        **{key: results[key] for key in DISTILLATION_KEYS if key in results},
        "history": learning_curve(state["log_history"], "eval_spearman"),
        "test_predictions": test_predictions,
        "notebook_examples": model.predict(NOTEBOOK_EXAMPLES).tolist(),
    }


# what a run with --teacher_name_or_path adds to its results (sts_models.cli.teachers.add_silver_pairs)
DISTILLATION_KEYS = (
    "train_samples",
    "gold_pairs",
    "silver_pairs",
    "silver_pairs_per_epoch",
    "labelling_seconds",
    "silver_cache_reused",
    "teacher_embedding_seconds",
)


def learning_curve(log_history: list[dict], metric: str) -> list[dict]:
    """Per epoch: the mean of the logged training losses and the dev metric."""
    curve: dict[float, dict] = {}
    losses: list[float] = []
    for entry in log_history:
        if "loss" in entry:
            losses.append(entry["loss"])
        if metric in entry:
            curve[round(entry["epoch"], 2)] = {
                "epoch": round(entry["epoch"], 2),
                "train_loss": sum(losses) / len(losses) if losses else None,
                "eval_spearman": entry[metric],
            }
            losses = []
    return list(curve.values())


# sentence-transformers' STS-B recipe for the anchors: 4 epochs, batch 16, lr 2e-5, 10% warmup, the epoch with the
# best dev Spearman kept
ANCHOR_RECIPE = {
    "num_train_epochs": 4, "per_device_train_batch_size": 16, "per_device_eval_batch_size": 64,
    "learning_rate": 2e-5, "warmup_steps": 0.1, "eval_strategy": "epoch", "save_strategy": "epoch",
    "load_best_model_at_end": True, "save_total_limit": 1, "logging_steps": 50, "report_to": "none",
    "dataloader_pin_memory": False,
}  # fmt: skip


def unit_scores(data):
    """STS-B scores 0-5 scaled to the 0-1 labels sentence-transformers' losses train on."""
    return data.map(lambda row: {"score": row["score"] / 5.0})


def anchor_trainer(system: str, base: str, train_dataset, dev=None, callbacks=None, **recipe):
    """sentence-transformers' trainer for an anchor `system`, on `base` (an encoder folder or Hub id): its model,
    its loss, `ANCHOR_RECIPE` with `recipe` over it, and with `dev` the evaluator that selects the epoch.

    `train_dataset` and `dev` hold `sentence1, sentence2, score` with scores on 0-1 (`unit_scores`). Returns the
    trainer, a function scoring `(sentence1, sentence2)` pairs on 0-1, and the dev metric's name.
    """
    from sentence_transformers import (
        CrossEncoder,
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.cross_encoder import CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.evaluation import CrossEncoderCorrelationEvaluator
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator
    from sentence_transformers.sentence_transformer.losses import CoSENTLoss, CosineSimilarityLoss

    recipe = {**ANCHOR_RECIPE, **recipe}
    if system == "st-cross-encoder":
        model = CrossEncoder(base, num_labels=1, device="cpu")
        metric = "eval_sts-dev_spearman"
        evaluator = None
        if dev is not None:
            pairs = list(zip(dev["sentence1"], dev["sentence2"]))
            evaluator = CrossEncoderCorrelationEvaluator(pairs, dev["score"], name="sts-dev")
        trainer = CrossEncoderTrainer(
            model=model, args=CrossEncoderTrainingArguments(**recipe, metric_for_best_model=metric),
            train_dataset=train_dataset, eval_dataset=dev, loss=BinaryCrossEntropyLoss(model), evaluator=evaluator,
            callbacks=callbacks,
        )  # fmt: skip

        def score(pairs):
            return model.predict(pairs, batch_size=64, show_progress_bar=False)

        return trainer, score, metric
    model = SentenceTransformer(base, device="cpu")
    loss = CoSENTLoss(model) if system == "st-bi-encoder-cosent" else CosineSimilarityLoss(model)
    metric = "eval_sts-dev_spearman_cosine"
    evaluator = None
    if dev is not None:
        evaluator = EmbeddingSimilarityEvaluator(dev["sentence1"], dev["sentence2"], dev["score"], name="sts-dev")
    trainer = SentenceTransformerTrainer(
        model=model, args=SentenceTransformerTrainingArguments(**recipe, metric_for_best_model=metric),
        train_dataset=train_dataset, eval_dataset=dev, loss=loss, evaluator=evaluator, callbacks=callbacks,
    )  # fmt: skip

    def score(pairs):
        first = model.encode([a for a, _ in pairs], batch_size=64, convert_to_tensor=True)
        second = model.encode([b for _, b in pairs], batch_size=64, convert_to_tensor=True)
        return model.similarity_pairwise(first, second).cpu().numpy()

    return trainer, score, metric


def train_anchor(system: str, seed: int, output_dir: Path, args) -> dict:
    """sentence-transformers' own STS-B recipe for `system`, selected on dev Spearman."""
    from sts_models.hub import DEFAULT_MODEL, resolve_model_name_or_path

    data = unit_scores(stsb_splits(args.max_train_samples, args.max_eval_samples))
    epochs = 0 if system == UNTRAINED else ANCHOR_RECIPE["num_train_epochs"]
    # the configs' base, resolved as run_sts.py resolves it (not common.default_encoder, which prefers the bundled copy)
    trainer, score, metric = anchor_trainer(
        system, resolve_model_name_or_path(DEFAULT_MODEL), data["train"], data["validation"],
        output_dir=str(output_dir), seed=seed, num_train_epochs=epochs,
    )  # fmt: skip
    start = time.perf_counter()
    if epochs:
        trainer.train()
    train_seconds = time.perf_counter() - start
    sick = read_sick_test()[: args.max_eval_samples or None]
    result = {}
    for prefix, rows in (("eval", data["validation"]), ("test", data["test"])):
        predictions = score(list(zip(rows["sentence1"], rows["sentence2"])))
        metrics = correlations(predictions, rows["score"])
        result.update({f"{prefix}_{name}": value for name, value in metrics.items()})
    result["test_predictions"] = (5.0 * predictions).tolist()  # the last rows scored: test, on 0-5
    sick_metrics = correlations(score([(a, b) for a, b, _ in sick]), [s for *_, s in sick])
    result.update({"sick_test_pearson": sick_metrics["pearson"], "sick_test_spearman": sick_metrics["spearman"]})
    result["train_seconds"] = train_seconds
    result["train_samples_per_second"] = len(data["train"]) * epochs / max(train_seconds, 1e-9)
    result["history"] = learning_curve(trainer.state.log_history, metric)
    result["notebook_examples"] = (5.0 * score(NOTEBOOK_EXAMPLES)).tolist()
    return result


def versions() -> dict[str, str]:
    import importlib.metadata

    import torch
    import transformers

    import sts_models

    return {
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "sentence_transformers": importlib.metadata.version("sentence-transformers"),
        "sts_models": sts_models.__version__,
        "cpu_count": os.cpu_count(),
    }


def configs_commit() -> str:
    """The last commit that changed configs/ (`+dirty` if they differ from it): the recipes the flags add to."""

    def git(*words: str) -> str:
        return subprocess.run(["git", *words], cwd=REPO, capture_output=True, text=True).stdout.strip()

    commit = git("log", "-1", "--format=%h", "--", "configs")
    return commit + ("+dirty" if git("status", "--porcelain", "--", "configs") else "") if commit else "unknown"


def base_model(args) -> str:
    """The encoder a run of ours starts from: `--model_name_or_path` among the extra flags, else its config's."""
    import yaml

    if "--model_name_or_path" in args.extra:
        return args.extra[args.extra.index("--model_name_or_path") + 1]
    config = args.config or REPO / "configs" / f"{args.system}.yaml"
    return yaml.safe_load(Path(config).read_text())["model_name_or_path"]


def train(args) -> None:
    if args.resume and args.system not in OURS:
        raise SystemExit(f"--resume continues a run of run_sts.py ({', '.join(OURS)}), not of {args.system}")
    output_dir = args.output_dir or REPO / "outputs" / "benchmark" / f"{args.system}-seed{args.seed}"
    runner = train_ours if args.system in OURS else train_anchor
    result = {"system": args.name or args.system, "kind": KIND.get(args.system, "bi-encoder"), "seed": args.seed}
    if args.system in OURS:
        result.update({"arch": args.system, "base": base_model(args)})
    configs = configs_commit()  # before training: the configs may change while it runs
    quiet = machine()  # train_seconds are shown as train times: how busy the machine was, before and after
    result.update(runner(args.system, args.seed, Path(output_dir), args))
    import torch

    result["machine"] = {"before": quiet, "after": machine(), "torch_threads": torch.get_num_threads()}
    card = Path(output_dir) / "sts_model_card.json"  # our runs (they write it): the precision `--bf16 auto` chose
    if args.system in OURS and card.is_file():
        precision = json.loads(card.read_text()).get("hyperparameters", {}).get("precision", "")
        result["precision"] = "bf16" if precision.startswith("bf16") else "fp32"  # as speed.py records it
    result["versions"] = versions()
    result["configs_commit"] = configs
    result["command"] = shlex.join(["python", "benchmarks/sts_quality.py", *sys.argv[1:]])
    write_results(args.results or RESULTS / f"{result['system']}.json", result)
    print(json.dumps({k: v for k, v in result.items() if k != "history"}, indent=2))


def quality_results(folder: Path | str) -> list[dict]:
    """The results of this benchmark in `folder`, one per system (other benchmarks' JSON files share docs/results/)."""
    results = [json.loads(path.read_text()) for path in sorted(Path(folder).glob("*.json"))]
    return [result for result in results if "system" in result]


# `report` renders the page above this line and keeps the hand-written notes below it.
NOTES_MARKER = "<!-- Written by hand: `python benchmarks/sts_quality.py report` keeps everything below this line. -->"


def kept_notes(path: Path) -> str:
    """The hand-written part of an earlier report at `path`, from NOTES_MARKER on ("" if none)."""
    text = path.read_text() if path.exists() else ""
    return text[text.index(NOTES_MARKER) :].rstrip("\n") if NOTES_MARKER in text else ""


def report(args) -> None:
    results = quality_results(args.results_dir)
    order = {name: index for index, name in enumerate((*OURS, *ANCHORS, UNTRAINED))}
    results.sort(key=lambda r: order.get(r["system"], len(order)))
    lines = [
        "| system | kind | dev Spearman | test Pearson | test Spearman | SICK-R Spearman | train time | samples/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        speed = f"{r['train_samples_per_second']:.1f}" if r["train_samples_per_second"] else "-"
        lines.append(
            f"| `{r['system']}` | {r['kind']} | {100 * r['eval_spearman']:.2f} | {100 * r['test_pearson']:.2f} "
            f"| {100 * r['test_spearman']:.2f} | {100 * r['sick_test_spearman']:.2f} | {train_time(r)} | {speed} |"
        )
    commands = "\n".join(f"- `{r['system']}`: `{r['command']}`{moved(r, args.results_dir)}" for r in results)
    examples = notebook_examples_table(results)
    comparison = comparison_table({r["system"]: r for r in results})
    sections = ["# STS-B results", "\n".join(lines), "Each row is one JSON file in `docs/results/`, produced by:", commands,
                "## Against sentence-transformers", COMPARISON_INTRO, comparison,
                "## The original notebook's six example pairs", examples]  # fmt: skip
    ensembles = ensembles_table(results)
    if ensembles:
        sections += ["## Do the architectures err differently?", ENSEMBLES_INTRO, ensembles]
    seeds = [json.loads(p.read_text()) for p in sorted(Path(args.results_dir, "seeds").glob("*.json"))]
    if seeds:
        sections += ["## Seeds", SEEDS_INTRO, seeds_table(results, seeds)]
    ablations = sorted(Path(args.results_dir, "ablations").glob("*.json"))
    if ablations:
        sections += [
            "## Recipes tried",
            ABLATIONS_INTRO,
            ablation_table([json.loads(p.read_text()) for p in ablations]),
        ]
    plots = [f"![{r['system']}](plots/{r['system']}.png)" for r in results]
    sections += ["## Plots", PLOTS_INTRO, "\n".join(plots)]
    sections.append("Render this page again with `python benchmarks/sts_quality.py report`.")
    notes = kept_notes(Path(args.output))
    text = "\n\n".join(sections + ([notes] if notes else []))
    Path(args.output).write_text(text + "\n")
    print(text)


# arch -> the sentence-transformers recipes of its kind (on the same base and data), which each of our systems of that
# arch, plain or distilled (`ARCH-...`), is set beside; the other bases' rows (`ARCH-mpnet`) have no such recipe here
RIVALS = {
    "bert": ("st-cross-encoder",),
    "cross": ("st-cross-encoder",),
    "siamese": ("st-bi-encoder", "st-bi-encoder-cosent"),
}
OTHER_BASES = ("-mpnet",)  # suffixes of systems trained from another base than all-MiniLM-L6-v2


def rivals_of(system: str) -> tuple[str, ...]:
    """The sentence-transformers recipes `system` is compared with: those of its arch, on the same base."""
    arch = system.split("-")[0]
    if system.endswith(OTHER_BASES):
        return ()
    return RIVALS.get(arch, ())


def comparison_table(results: dict[str, dict]) -> str:
    """Each of our systems on all-MiniLM-L6-v2 beside the best sentence-transformers recipe of its kind, chosen on
    dev as every recipe is (test Spearman x100 and the difference), then the SICK-R transfer of `siamese` against the
    untrained model."""
    lines = ["| system | test Spearman | best sentence-transformers recipe of its kind (on dev): test | difference |",
             "|---|---|---|---|"]  # fmt: skip
    for system, ours in results.items():
        rival = max(
            (results[r] for r in rivals_of(system) if r in results), key=lambda r: r["eval_spearman"], default=None
        )
        if rival is None:
            continue
        score, difference = 100 * ours["test_spearman"], 100 * (ours["test_spearman"] - rival["test_spearman"])
        lines.append(
            f"| `{system}` | {score:.2f} | `{rival['system']}` {100 * rival['test_spearman']:.2f} | {difference:+.2f} |"
        )
    if "siamese" in results and UNTRAINED in results:
        sick, base = results["siamese"]["sick_test_spearman"], results[UNTRAINED]["sick_test_spearman"]
        lines.append("\n" + sick_transfer("SICK-R transfer of `siamese`", 100 * sick, 100 * base))
    return "\n".join(lines)


def sick_transfer(label: str, sick: float, base: float) -> str:
    """A trained model's SICK-R Spearman (x100) against the untrained model's."""
    return f"{label}: {sick:.2f} against {base:.2f} for the untrained model ({'not below' if sick >= base else 'below'} it)."


COMPARISON_INTRO = (
    "Our systems trained from all-MiniLM-L6-v2 beside the best sentence-transformers recipe of the same kind, trained "
    "by this script on the same base and data (cross-encoders for `bert` and `cross`, bi-encoders for `siamese`), "
    "chosen on dev as every recipe here is (the test sets never choose): test Spearman ×100, seed 42. [Seeds](#seeds) "
    "compares the means where both sides were trained with more seeds."
)

SEEDS_INTRO = (
    "Systems trained again with seeds 43 and 44 where a difference was under 1.0 point (same recipe, "
    "`train SYSTEM --seed N --results docs/results/seeds/SYSTEM-N.json`); seed 42 is the row above. Mean ± sample "
    "standard deviation over the seeds, Spearman ×100; two systems are compared on the means only where both "
    "sides have seeds. JSON files in `docs/results/seeds/`."
)


def recipe(result: dict, repo: Path = REPO) -> str:
    """What a result trained with, to pool seeds by. Ours: every option run_sts.py parses from its run file as of its
    `configs_commit` with its command's flags over it (minus output folder and seed), so a recipe first run as flags
    and then written into the configs is the same recipe; the anchors, or a run file that cannot be read back
    (uncommitted, or options this version no longer takes): the `configs_commit`."""
    import dataclasses

    from sts_models.cli.arguments import parse_args
    from sts_models.errors import STSUserError

    commit = result.get("configs_commit", "")
    arch = result.get("arch") or (result["system"] if result["system"] in OURS else None)
    if arch is None or not commit or commit == "unknown" or commit.endswith("+dirty"):
        return commit
    words = shlex.split(result["command"])
    own, extra = (words[: words.index("--")], words[words.index("--") + 1 :]) if "--" in words else (words, [])
    given = [own[i + 1] for i, word in enumerate(own[:-1]) if word == "--config"]
    given += [word.removeprefix("--config=") for word in own if word.startswith("--config=")]
    config = given[-1] if given else f"configs/{arch}.yaml"
    shown = subprocess.run(["git", "show", f"{commit}:{config}"], cwd=repo, capture_output=True, text=True)
    if shown.returncode:
        return commit
    with tempfile.TemporaryDirectory() as folder:
        run_file = Path(folder) / Path(config).name
        run_file.write_text(shown.stdout, encoding="utf-8")
        try:  # argparse's own usage message for a value it refuses is not the report's to print
            with contextlib.redirect_stderr(io.StringIO()):
                model_args, data_args, training_args, distillation_args = parse_args([str(run_file), *extra])
        except (STSUserError, SystemExit):
            return commit
    settings = training_args.to_dict()  # a new dict
    for parsed in (model_args, data_args, distillation_args):
        settings.update(dataclasses.asdict(parsed))
    for key in ("output_dir", "overwrite_output_dir", "run_name", "seed", "silver_cache_dir"):
        settings.pop(key, None)
    return json.dumps(settings, sort_keys=True, default=str)


def seeds_table(results: list[dict], seeds: list[dict]) -> str:
    """Mean ± std over seeds (the main result plus docs/results/seeds/) per system, and the differences to
    sentence-transformers on the means."""
    from statistics import mean, stdev

    # seeds pool only with runs of the same recipe; the seeds of each recipe the configs have since left get a row of
    # their own, which is compared with nothing
    recipes = [recipe(r) for r in [*results, *seeds]]  # one `git show` per result
    current = {r["system"]: made for r, made in zip(results, recipes)}
    runs: dict[tuple[str, str], dict[int, dict]] = {}
    for r, made in zip([*results, *seeds], recipes):
        runs.setdefault((r["system"], made), {}).setdefault(r["seed"], r)
    lines = ["| system | seeds | dev Spearman | test Spearman | SICK-R Spearman | test per seed |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    means: dict[str, dict[str, float]] = {}
    for (system, made), by_seed in runs.items():
        if len(by_seed) < 2:
            continue
        ordered = [by_seed[seed] for seed in sorted(by_seed)]
        earlier = made != current.get(system)
        columns = {
            key: [100 * r[key] for r in ordered] for key in ("eval_spearman", "test_spearman", "sick_test_spearman")
        }
        if not earlier:
            means[system] = {key: mean(values) for key, values in columns.items()}
        cells = " | ".join(f"{mean(values):.2f} ± {stdev(values):.2f}" for values in columns.values())
        per_seed = " / ".join(f"{t:.2f}" for t in columns["test_spearman"])
        commit = ordered[0].get("configs_commit", "unknown")
        configs = "configs not recorded" if commit in ("", "unknown") else f"configs at {commit}"
        label = f"`{system}`" + (
            f", not the shipped recipe ({configs}; the commands in its JSON files)" if earlier else ""
        )
        lines.append(f"| {label} | {', '.join(map(str, sorted(by_seed)))} | {cells} | {per_seed} |")
    tests = {system: m["test_spearman"] for system, m in means.items()}
    seed_42 = {r["system"]: r for r in results}
    for system in tests:
        # the rival of the main table (chosen on seed 42's dev), compared where it was trained with more seeds
        rivals = [r for r in rivals_of(system) if r in seed_42]
        rival = max(rivals, key=lambda r: seed_42[r]["eval_spearman"], default=None)
        if rival in tests:
            lines.append(
                f"\nOn the means: `{system}` {tests[system]:.2f}, {tests[system] - tests[rival]:+.2f} against `{rival}` "
                f"({tests[rival]:.2f})."
            )
    untrained = next((r for r in results if r["system"] == UNTRAINED), None)
    if "siamese" in means and untrained is not None:
        sick, base = means["siamese"]["sick_test_spearman"], 100 * untrained["sick_test_spearman"]
        lines.append("\n" + sick_transfer("SICK-R transfer of `siamese` on the mean", sick, base))
    return "\n".join(lines)


ENSEMBLES_INTRO = (
    "A diagnostic, not a system: the test Spearman of our systems' test predictions averaged as ranks. "
    "Where the average is no better than its best member, the architectures make the same mistakes, and a "
    "teacher built from them would know little more than its best member. Nothing here was selected on test."
)


def ensembles_table(results: list[dict]) -> str:
    """Test Spearman of every combination of our systems' rank-averaged test predictions ("" if under two)."""
    from itertools import combinations

    from scipy.stats import rankdata

    ours = [r for r in results if r["system"] in OURS and r.get("test_predictions")]
    if len(ours) < 2:
        return ""
    gold = stsb_splits(None, None)["test"]["score"]
    lines = ["| systems | test Spearman | best member |", "|---|---|---|"]
    for size in range(2, len(ours) + 1):
        for members in combinations(ours, size):
            ranks = sum(rankdata(r["test_predictions"]) for r in members)
            score = correlations(ranks, gold[: len(ranks)])["spearman"]
            best = max(members, key=lambda r: r["test_spearman"])
            names = " + ".join(f"`{r['system']}`" for r in members)
            lines.append(f"| {names} | {100 * score:.2f} | `{best['system']}` {100 * best['test_spearman']:.2f} |")
    return "\n".join(lines)


PLOTS_INTRO = (
    "Learning curve (mean training loss and dev Spearman per epoch) and predicted against gold scores on "
    "STS-B test, one figure per system, drawn from the JSON files by `python benchmarks/sts_quality.py plot`."
)
ABLATIONS_INTRO = (
    "Each recipe was trained once (seed 42) from the same base: the flags are added to `configs/ARCH.yaml` as "
    "they stood at the commit in the `configs at` column (`git show COMMIT:configs/ARCH.yaml`; the first rows "
    "start from 87acbac's configs: MSE loss, lr 2e-5, 4 epochs, batch 16). To rerun a row, check those configs "
    "out first (`git checkout COMMIT -- configs`). Recipes are compared on **dev** Spearman; test is shown for "
    "the record. JSON files in `docs/results/ablations/`."
)
# Ablations recorded before results named their configs' commit all add their flags to this commit's configs.
FIRST_CONFIGS = "87acbac"


def moved(result: dict, folder: Path | str) -> str:
    """Where a result's command wrote another file than the one it is kept in (a recipe tried, then shipped): a note
    saying so, else ""."""
    words = shlex.split(result["command"])
    written = words[words.index("--results") + 1] if "--results" in words[:-1] else None
    kept = Path(folder, f"{result['system']}.json").resolve()
    if written is None or (REPO / written).resolve() == kept:
        return ""
    shown = kept.relative_to(REPO) if kept.is_relative_to(REPO) else kept
    why = ": its `note` says why" if result.get("note") else ""
    return f" (written as `{written}`, kept as `{shown}`{why})"


def train_time(result: dict) -> str:
    """The training time, "-" for none (an untrained system), and for a resumed run, which timed only its last part."""
    if result.get("resumed_from"):
        return f"- (resumed from {result['resumed_from']})"
    return f"{result['train_seconds'] / 60:.1f} min" if result["train_samples_per_second"] else "-"


def ablation_table(results: list[dict]) -> str:
    """One row per recipe tried: the flags it adds to configs/<arch>.yaml, dev and test Spearman."""
    lines = ["| system | configs at | flags over the config | dev Spearman | test Spearman | SICK-R Spearman | train time |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in results:
        flags = r["command"].split(" -- ", 1)[1] if " -- " in r["command"] else "(none)"
        flags = f"`{flags}`" + (f" ({r['report_note']})" if r.get("report_note") else "")
        lines.append(
            f"| `{r['system']}` | {r.get('configs_commit', FIRST_CONFIGS)} | {flags} | {100 * r['eval_spearman']:.2f} | {100 * r['test_spearman']:.2f} "
            f"| {100 * r['sick_test_spearman']:.2f} | {train_time(r)} |"
        )
    return "\n".join(lines)


def notebook_examples_table(results: list[dict]) -> str:
    """Each system's scores (0-5) for the notebook's six pairs, and their Spearman with the intended 0..5."""
    from scipy.stats import spearmanr

    systems = [r for r in results if "notebook_examples" in r]
    header = "| intended | sentence 1 | sentence 2 | " + " | ".join(f"`{r['system']}`" for r in systems) + " |"
    lines = [header, "|" + "---|" * (3 + len(systems))]
    for level, (first, second) in enumerate(NOTEBOOK_EXAMPLES):
        scores = " | ".join(f"{r['notebook_examples'][level]:.2f}" for r in systems)
        lines.append(f"| {level} | {first} | {second} | {scores} |")
    correlations = " | ".join(f"{spearmanr(range(6), r['notebook_examples'])[0]:.2f}" for r in systems)
    lines.append(f"| Spearman with intended | | | {correlations} |")
    return "\n".join(lines)


def plot(args) -> None:
    """Learning curves and test scatter plots, one PNG per system, from the JSON results."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gold = stsb_splits(None, None)["test"]["score"]
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    for result in quality_results(args.results_dir):
        name = result["system"]
        figure, (curve, scatter) = plt.subplots(1, 2, figsize=(10, 4))
        epochs = [h["epoch"] for h in result["history"]]
        curve.plot(epochs, [h["eval_spearman"] for h in result["history"]], marker="o", label="dev Spearman")
        curve.set_xlabel("epoch")
        curve.set_ylabel("dev Spearman")
        losses = [h["train_loss"] for h in result["history"]]
        if all(loss is not None for loss in losses):
            twin = curve.twinx()
            twin.plot(epochs, losses, marker="s", color="tab:red", label="train loss")
            twin.set_ylabel("train loss", color="tab:red")
        if not result["history"]:
            curve.text(0.5, 0.5, "not trained", ha="center", transform=curve.transAxes)
        curve.set_title(f"{name}: learning curve")
        predictions = result["test_predictions"]
        scatter.scatter(gold[: len(predictions)], predictions, s=4, alpha=0.4)
        scatter.plot([0, 5], [0, 5], color="gray", linewidth=1)
        scatter.set_xlabel("gold score (STS-B test)")
        scatter.set_ylabel("predicted score")
        scatter.set_title(f"{name}: test Spearman {result['test_spearman']:.4f}")
        figure.tight_layout()
        figure.savefig(output / f"{name}.png", dpi=100)
        plt.close(figure)
        print(output / f"{name}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    train_parser = commands.add_parser("train", help="train and evaluate one system")
    train_parser.add_argument("system", choices=(*OURS, *ANCHORS, UNTRAINED))
    train_parser.add_argument("--seed", type=int, default=42)
    train_parser.add_argument("--config", type=Path, help="ours: the run file (default configs/SYSTEM.yaml)")
    train_parser.add_argument("--name", help="the result's name in reports (default SYSTEM), e.g. siamese-mpnet")
    train_parser.add_argument("--output_dir", type=Path, help="checkpoints (default outputs/benchmark/SYSTEM-seedN)")
    train_parser.add_argument("--results", type=Path, help="result JSON (default docs/results/SYSTEM.json)")
    train_parser.add_argument(
        "--resume",
        action="store_true",
        help="ours: continue a stopped run in --output_dir from its last checkpoint (train_seconds then times only "
        "the part after it)",
    )
    train_parser.add_argument("--max_train_samples", type=int, help="smoke tests only")
    train_parser.add_argument("--max_eval_samples", type=int, help="smoke tests only")
    report_parser = commands.add_parser("report", help="render docs/results.md from the JSON results")
    report_parser.add_argument("--results_dir", default=str(RESULTS))
    report_parser.add_argument("--output", default=str(REPO / "docs" / "results.md"))
    plot_parser = commands.add_parser("plot", help="learning curves and test scatter plots from the JSON results")
    plot_parser.add_argument("--results_dir", default=str(RESULTS))
    plot_parser.add_argument("--output_dir", default=str(REPO / "docs" / "plots"))
    argv, extra = sys.argv[1:], []
    if "--" in argv:  # ours: run_sts.py flags after `--` override the config (`train bert -- --learning_rate 5e-5`)
        split = argv.index("--")
        argv, extra = argv[:split], argv[split + 1 :]
    args = parser.parse_args(argv)
    args.extra = extra
    {"train": train, "report": report, "plot": plot}[args.command](args)


if __name__ == "__main__":
    main()
