"""The `sts-models` command: `train`, `predict`, `export-onnx` and `export`, each the `main` of a module here.

    sts-models train configs/cross.yaml --learning_rate 3e-5
    sts-models predict outputs/cross pairs.csv scores.tsv
    sts-models export-onnx outputs/cross outputs/cross-onnx-int8 --quantize int8
    sts-models export --format sentence-transformers outputs/siamese outputs/siamese-st

`run_sts.py`, `predict.py` and `export_onnx.py` at the top of the repository run the same code (for
`accelerate launch run_sts.py ...`).
"""

from __future__ import annotations

import sys

COMMANDS = {
    "train": ("sts_models.cli.train", "cli", "fine-tune and evaluate a model (the flags of run_sts.py)"),
    "predict": ("sts_models.cli.predict", "cli", "score a file of sentence pairs"),
    "export-onnx": ("sts_models.cli.export", "cli", "export to ONNX for ONNX Runtime, optionally int8"),
    "export": (
        "sts_models.cli.export",
        "export_cli",
        "export to sentence-transformers (SentenceTransformer/CrossEncoder)",
    ),
}
USAGE = "usage: sts-models {" + ",".join(COMMANDS) + "} [-h] ..."


def main(argv: list[str] | None = None) -> int:
    import importlib

    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        lines = [USAGE, "", "Semantic textual similarity models for the Hugging Face Trainer.", "", "commands:"]
        lines += [f"  {name:<12} {help}" for name, (_, _, help) in COMMANDS.items()]
        lines += ["", "`sts-models COMMAND --help` lists a command's options."]
        print("\n".join(lines), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    if argv[0] not in COMMANDS:
        print(
            f"{USAGE}\nsts-models: error: unknown command {argv[0]!r}; choose from {', '.join(COMMANDS)}",
            file=sys.stderr,
        )
        return 2
    module, function, _ = COMMANDS[argv[0]]
    command = getattr(importlib.import_module(module), function)
    prog = f"sts-models {argv[0]}"
    sys.argv[0] = prog  # argparse's usage line (HfArgumentParser takes no prog of ours)
    return command(argv[1:], prog=prog)
