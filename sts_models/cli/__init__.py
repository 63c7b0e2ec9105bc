"""The `sts-models` command: `train`, `predict`, `export-onnx` and `export`, each the `main` of a module here.

    sts-models train configs/cross.yaml --learning_rate 3e-5
    sts-models predict outputs/cross pairs.csv scores.tsv
    sts-models export-onnx outputs/cross outputs/cross-onnx-int8 --quantize int8
    sts-models export --format sentence-transformers outputs/siamese outputs/siamese-st

`run_sts.py`, `predict.py` and `export_onnx.py` at the top of the repository run the same code (for
`accelerate launch run_sts.py ...`).

This module imports only the standard library and `sts_models.processes` (which imports no more):
`sts_models/__init__.py` imports it before torch and transformers, so that Ctrl-C while they load ends a command
with the one line it ends with later.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..processes import process_rank

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
# the scripts at the top of the repository, by the command each runs
SCRIPTS = {"run_sts.py": "train", "predict.py": "predict", "export_onnx.py": "export-onnx"}
REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))


def command_prog() -> str | None:
    """The name of the command this process runs (`sts-models train`, `run_sts.py`, ...), read from how it was
    started; None in any other program (one that imports sts_models as a library)."""
    argv = sys.argv or [""]
    name = os.path.basename(argv[0]).removesuffix(".exe").removesuffix("-script.pyw").removesuffix("-script.py")
    if argv[0] == "-m":  # `python -m sts_models.cli`, while Python imports the package to find its __main__
        name = "sts-models" if run_module() in ("sts_models.cli", "sts_models.cli.__main__") else ""
    if name == "sts-models":
        return "sts-models" + (f" {argv[1]}" if len(argv) > 1 and argv[1] in COMMANDS else "")
    script = getattr(sys.modules.get("__main__"), "__file__", None) or ""
    # (a path through a symlink names the repository too: both sides resolved)
    if os.path.basename(script) in SCRIPTS and os.path.dirname(os.path.realpath(script)) == REPOSITORY:
        return os.path.basename(script)
    return None


def run_module() -> str:
    """The module of `python -m MODULE` (or `-mMODULE`) that started this process, "" for none."""
    options = iter(getattr(sys, "orig_argv", [])[1:])
    for option in options:
        if option.startswith("-m"):
            return option[2:] or next(options, "")
        if option in ("-X", "-W", "--check-hash-based-pycs"):  # the interpreter's options that take a value
            next(options, None)
        elif option == "-c" or not option.startswith("-"):  # a command or a script: no module
            return ""
    return ""


@contextmanager
def interrupt_ends_command(prog: str | None) -> Iterator[None]:
    """Inside, Ctrl-C ends command `prog` with one line on stderr and exit status 130, as it does once the command
    runs (`sts_models.errors.run_cli`), instead of a traceback of the modules being imported. Outside a command
    (`prog` None: sts_models imported as a library), it is left to the program."""
    try:
        yield
    except KeyboardInterrupt:
        if prog is None:
            raise
        if process_rank()[1]:  # in a multi-process run, the first process of each machine (as run_cli)
            print(f"{prog}: stopped by SIGINT", file=sys.stderr)
        raise SystemExit(130) from None


def run_command(command: str, argv: list[str], prog: str) -> int:
    """Run `command` (a key of `COMMANDS`) on `argv`, its module imported here, where Ctrl-C ends it in one line."""
    import importlib

    module, function, _ = COMMANDS[command]
    with interrupt_ends_command(prog):
        cli = getattr(importlib.import_module(module), function)
    return cli(argv, prog=prog)


def script_cli(script: str) -> Callable[[list[str]], int]:
    """The `cli(argv)` of a script at the top of the repository (`run_sts.py`, ...): its command under its name."""
    return lambda argv: run_command(SCRIPTS[script], argv, script)


def main(argv: list[str] | None = None) -> int:
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
    prog = f"sts-models {argv[0]}"
    sys.argv[0] = prog  # argparse's usage line (HfArgumentParser takes no prog of ours)
    return run_command(argv[0], argv[1:], prog)
