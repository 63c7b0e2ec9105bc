#!/usr/bin/env python
"""STS transfer suite: Spearman x100 on SemEval STS12-15 (the pairs that share no sentence with STS-B) and SICK-R
test, and their average, the transfer figure. These sets are tests only: nothing is trained or selected on them.

    python benchmarks/sts_transfer.py outputs/siamese outputs/cross           # saved STS models
    python benchmarks/sts_transfer.py untrained=sentence-transformers/all-MiniLM-L6-v2   # a plain encoder (mean pooling, cosine)
    python benchmarks/sts_transfer.py st-bi-encoder=st:outputs/benchmark/st-bi-encoder   # a SentenceTransformer folder
    python benchmarks/sts_transfer.py st-cross-encoder=ce:outputs/benchmark/st-cross-encoder  # a CrossEncoder folder

Each MODEL is `[LABEL=]PATH`; the label defaults to the folder's name. Results merge by label into
`--results` (default docs/results/sts_transfer.json), so runs on several machines add up. `--data_dir` is a
folder holding `sts12-15/stsYY.jsonl` and `sick/SICK.txt`.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

from common import DATA_DIR, cpu_model, read_sick_test, write_results  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = DATA_DIR
SETS = ("sts12", "sts13", "sts14", "sts15", "sick_r")


def read_jsonl_pairs(path: Path) -> list[tuple[str, str, float]]:
    with open(path, encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return [(row["sentence1"], row["sentence2"], float(row["score"])) for row in rows]


def transfer_sets(data_dir: Path, limit: int | None = None) -> dict[str, list[tuple[str, str, float]]]:
    sets = {name: read_jsonl_pairs(data_dir / "sts12-15" / f"{name}.jsonl") for name in SETS[:4]}
    sets["sick_r"] = read_sick_test(data_dir / "sick" / "SICK.txt")
    return {name: pairs[:limit] for name, pairs in sets.items()}


def scorer(path: str, device: str):
    """A function scoring `(sentence1, sentence2)` pairs with the model at `path` (see the module's docstring)."""
    if path.startswith(("st:", "ce:")):
        from sentence_transformers import CrossEncoder, SentenceTransformer

        kind, path = path.split(":", 1)
        if kind == "ce":
            model = CrossEncoder(path, device=device)
            return lambda pairs: model.predict(pairs, batch_size=64, show_progress_bar=False)
        model = SentenceTransformer(path, device=device)

        def bi_encoder(pairs):
            first = model.encode([a for a, _ in pairs], batch_size=64, convert_to_tensor=True)
            second = model.encode([b for _, b in pairs], batch_size=64, convert_to_tensor=True)
            return model.similarity_pairwise(first, second).cpu().numpy()

        return bi_encoder
    from sts_models.architectures import load_model, saved_arch

    is_sts = saved_arch(path) is not None
    model = load_model(None if is_sts else "siamese", path).to(device)  # a plain encoder: mean pooling, cosine
    return lambda pairs: model.predict(pairs, batch_size=64, show_progress_bar=False)


def evaluate(path: str, sets: dict, device: str) -> dict:
    from sts_models.metrics import correlation_metrics

    score = scorer(path, device)
    start = time.perf_counter()
    result = {}
    for name, pairs in sets.items():
        predictions = score([(a, b) for a, b, _ in pairs])
        result[name] = 100 * correlation_metrics(predictions, [gold for *_, gold in pairs])["spearman"]
    result["average"] = sum(result[name] for name in SETS) / len(SETS)
    result["seconds"] = round(time.perf_counter() - start, 2)
    return result


def table(results: dict) -> str:
    lines = ["| model | STS12 | STS13 | STS14 | STS15 | SICK-R | average |", "|---|---|---|---|---|---|---|"]
    for label, r in results.items():
        lines.append(f"| `{label}` | " + " | ".join(f"{r[name]:.2f}" for name in (*SETS, "average")) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", metavar="MODEL", help="[LABEL=]PATH (see above)")
    parser.add_argument("--data_dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--results", type=Path, default=REPO / "docs" / "results" / "sts_transfer.json")
    parser.add_argument("--limit", type=int, help="first N pairs of each set (smoke tests only)")
    args = parser.parse_args(argv)
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    for path in (args.data_dir / "sts12-15", args.data_dir / "sick"):
        if not path.is_dir():
            parser.error(f"--data_dir {args.data_dir}: no {path.name}/ folder")
    sets = transfer_sets(args.data_dir, args.limit)
    report = json.loads(args.results.read_text()) if args.results.exists() else {"models": {}}
    for model in args.models:
        label, _, path = model.rpartition("=")
        label = label or Path(path.split(":", 1)[-1]).name
        result = evaluate(path, sets, device)
        result.update(
            {
                "model": path,
                "device": torch.cuda.get_device_name() if device == "cuda" else cpu_model(),
                "pairs": {name: len(pairs) for name, pairs in sets.items()},
                "command": shlex.join(["python", "benchmarks/sts_transfer.py", *(argv or sys.argv[1:])]),
            }
        )
        report["models"][label] = result
        print(f"{label}: " + ", ".join(f"{name} {result[name]:.2f}" for name in (*SETS, "average")), flush=True)
    write_results(args.results, report)
    print(table(report["models"]))


if __name__ == "__main__":
    main()
