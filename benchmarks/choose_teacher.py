#!/usr/bin/env python
"""Choose the teacher for distillation on STS-B dev: every trained model given, and every average of two or more of
them (what `run_sts.py --teacher_name_or_path A B ...` labels with), ranked by dev Spearman. Test Spearman is
reported beside it and never used to choose.

    python benchmarks/choose_teacher.py outputs/siamese-mpnet outputs/cross-mpnet outputs/bert-mpnet

Writes `--results` (default docs/results/teacher_choice.json) and prints the chosen folders on the last line.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shlex
import sys
from pathlib import Path

from common import REPO, STSB_DIR, write_results  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="saved STS model folders")
    parser.add_argument("--data_dir", type=Path, default=STSB_DIR, help="an STS-B folder")
    parser.add_argument("--results", type=Path, default=REPO / "docs" / "results" / "teacher_choice.json")
    args = parser.parse_args(argv)
    import numpy as np
    import torch

    from sts_models.architectures import load_model, read_config
    from sts_models.data import load_sts_dataset
    from sts_models.metrics import correlation_metrics

    # an average of scores on different ranges means nothing, and run_sts.py refuses such teachers together
    configs = {path: read_config(path) for path in args.models}
    ranges = {path: (c.score_min, c.score_max) for path, c in configs.items() if hasattr(c, "score_min")}
    if len(set(ranges.values())) > 1:
        found = ", ".join(f"{path} {low:g}-{high:g}" for path, (low, high) in ranges.items())
        parser.error(f"the models score on different ranges ({found}): give models of one range")
    data = load_sts_dataset(str(args.data_dir))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    predictions = {}
    for path in args.models:
        model = load_model(None, path).to(device)
        predictions[path] = {
            split: model.predict(list(zip(data[split]["sentence1"], data[split]["sentence2"])), batch_size=64)
            for split in ("validation", "test")
        }
        model.to("cpu")
    candidates = []
    for size in range(1, len(args.models) + 1):
        for members in itertools.combinations(args.models, size):
            row = {"teachers": list(members)}
            for split, name in (("validation", "dev"), ("test", "test")):
                scores = np.mean([predictions[m][split] for m in members], axis=0)
                row[f"{name}_spearman"] = correlation_metrics(scores, data[split]["score"])["spearman"]
            candidates.append(row)
    candidates.sort(key=lambda row: -row["dev_spearman"])
    for row in candidates:
        print(
            f"dev {100 * row['dev_spearman']:.2f}  test {100 * row['test_spearman']:.2f}  {' + '.join(row['teachers'])}"
        )
    report = {
        "chosen": candidates[0]["teachers"],
        "chosen_by": "dev_spearman",
        "candidates": candidates,
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "command": shlex.join(["python", "benchmarks/choose_teacher.py", *(argv or sys.argv[1:])]),
    }
    write_results(args.results, report)
    print(" ".join(report["chosen"]))


if __name__ == "__main__":
    main()
