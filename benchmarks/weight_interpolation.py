#!/usr/bin/env python
"""Weight-space ensembling (WiSE-FT, Wortsman et al. 2022) of a trained STS model with the encoder it started from:
the encoder's weights become `alpha * trained + (1 - alpha) * base` (the head stays as trained). The paper reports
that some alpha < 1 keeps the fine-tuned accuracy and recovers the base's robustness out of distribution.

    python benchmarks/weight_interpolation.py outputs/siamese
    python benchmarks/weight_interpolation.py outputs/bert-on-siamese --base outputs/siamese-encoder

Each alpha of `--alphas` is scored on STS-B dev; the best on dev (the largest alpha on a tie) is then scored on
STS-B test, SICK-R test and the transfer suite (benchmarks/sts_transfer.py), beside alpha 1 (the model as trained).
Nothing is chosen on test or the transfer sets. `--base` defaults to the encoder the model was trained from (its config's
`encoder._name_or_path`). Writes `--results` (default docs/results/weight_interpolation.json), merged by label.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

from common import DATA_DIR, RESULTS, cpu_model, stsb_rows, write_results  # noqa: E402
from sts_transfer import SETS, transfer_sets  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def spearman(model, rows) -> float:
    from sts_models.metrics import correlation_metrics

    scores = model.predict([(a, b) for a, b, _ in rows], batch_size=64, show_progress_bar=False)
    return round(100 * correlation_metrics(scores, [gold for *_, gold in rows])["spearman"], 2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a saved STS model folder")
    parser.add_argument("--base", help="the encoder to interpolate towards (default: the one the model started from)")
    parser.add_argument("--alphas", default="0.5,0.6,0.7,0.8,0.9,1.0", help="comma-separated weights of the model")
    parser.add_argument("--label", help="the entry's name in --results (default: the model folder's name)")
    parser.add_argument("--data_dir", type=Path, default=DATA_DIR, help="holds stsbenchmark/, sts12-15/ and sick/")
    parser.add_argument("--results", type=Path, default=RESULTS / "weight_interpolation.json")
    args = parser.parse_args(argv)
    try:
        alphas = sorted({float(value) for value in args.alphas.split(",")})
    except ValueError:
        parser.error(f"--alphas {args.alphas!r}: not comma-separated numbers")
    if not all(0.0 <= alpha <= 1.0 for alpha in alphas):
        parser.error(f"--alphas {args.alphas!r}: each weight must be in [0, 1]")
    for folder in ("stsbenchmark", "sts12-15", "sick"):
        if not (args.data_dir / folder).is_dir():
            parser.error(f"--data_dir {args.data_dir}: no {folder}/ folder")

    import torch
    from transformers import AutoModel

    from sts_models.architectures import MODEL_TYPES  # importing sts_models registers them with AutoModel
    from sts_models.hub import resolve_model_name_or_path

    try:
        model = AutoModel.from_pretrained(resolve_model_name_or_path(args.model)).eval()
        if model.config.model_type not in MODEL_TYPES:
            parser.error(f"{args.model}: a {model.config.model_type} model, not a saved STS model")
        base_path = args.base or model.config.encoder._name_or_path
        base_model, loading = AutoModel.from_pretrained(
            resolve_model_name_or_path(base_path), output_loading_info=True
        )
    except (OSError, ValueError) as error:  # no such folder, or no model in it: transformers' message, one line
        parser.error(str(error).splitlines()[0])
    # weights the base folder lacks (e.g. a BERT pooler) were initialised at random on loading: they keep their trained value
    base = base_model.state_dict()
    trained = {name: tensor.clone() for name, tensor in model.encoder.state_dict().items()}
    unmatched = [name for name, tensor in trained.items() if name not in base or base[name].shape != tensor.shape]
    if unmatched:
        parser.error(f"--base {base_path}: not the model's encoder (no matching weight for {unmatched[0]})")
    base = {name: tensor for name, tensor in base.items() if name not in set(loading["missing_keys"])}

    def interpolate(alpha: float) -> None:
        model.encoder.load_state_dict(
            {name: alpha * t + (1 - alpha) * base[name] if name in base else t for name, t in trained.items()}
        )

    dev_rows, test_rows = (stsb_rows(split, args.data_dir / "stsbenchmark") for split in ("validation", "test"))
    start = time.perf_counter()
    with torch.no_grad():
        dev = {}
        for alpha in alphas:
            interpolate(alpha)
            dev[alpha] = spearman(model, dev_rows)
            print(f"alpha {alpha}: dev Spearman {dev[alpha]:.2f}", flush=True)
        chosen = max(alphas, key=lambda alpha: (dev[alpha], alpha))
        sets = {"test": test_rows, **transfer_sets(args.data_dir)}
        evaluated = {}
        for alpha in sorted({chosen, 1.0}):
            interpolate(alpha)
            scores = {name: spearman(model, rows) for name, rows in sets.items()}
            scores["transfer_average"] = round(sum(scores[name] for name in SETS) / len(SETS), 2)
            dev_spearman = dev[alpha] if alpha in dev else spearman(model, dev_rows)  # 1.0 may not be among --alphas
            evaluated[str(alpha)] = {"dev_spearman": dev_spearman, **scores}
            print(f"alpha {alpha}: " + ", ".join(f"{k} {v:.2f}" for k, v in evaluated[str(alpha)].items()), flush=True)

    report = json.loads(args.results.read_text()) if args.results.exists() else {"models": {}}
    report["models"][args.label or Path(args.model).name] = {
        "model": args.model,
        "base": base_path,
        "dev_spearman": {str(alpha): score for alpha, score in dev.items()},
        "chosen_alpha": chosen,
        "evaluated": evaluated,
        "seconds": round(time.perf_counter() - start, 1),
        "device": cpu_model(),
        "command": shlex.join(["python", "benchmarks/weight_interpolation.py", *(argv or sys.argv[1:])]),
    }
    write_results(args.results, report)


if __name__ == "__main__":
    main()
