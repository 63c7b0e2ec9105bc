"""`sts-models export-onnx` (`export_onnx.py`) and `sts-models export`: an STS model as an ONNX Runtime folder, or as
a sentence-transformers folder.

    sts-models export-onnx outputs/siamese outputs/siamese-onnx                  # float32
    sts-models export-onnx outputs/cross outputs/cross-onnx-int8 --quantize int8
    sts-models export-onnx sentence-transformers/all-MiniLM-L6-v2 minilm-onnx --arch siamese   # a plain encoder
    sts-models export --format sentence-transformers outputs/siamese outputs/siamese-st      # SentenceTransformer
    sts-models export --format sentence-transformers outputs/bert outputs/bert-ce     # CrossEncoder (--symmetric false)

An ONNX folder loads with `sts_models.backends.onnx.ORTSTSModel.from_pretrained(OUTPUT_DIR)`, which offers the
PyTorch model's `predict` (and `encode`, `semantic_search`, ... for `siamese`); it needs
`pip install 'sts-models[onnx]'`.
"""

from __future__ import annotations

import argparse
import json
import os

import torch

from ..architectures import ARCHITECTURES, load_model, saved_arch, saved_config
from ..artifacts import check_export_folder
from ..backends.onnx import QUANTIZATIONS
from ..configuration import POOLING_MODES
from ..errors import STSUserError, plain_encoder, run_cli

PROG = "export_onnx.py"
FORMATS = ("sentence-transformers",)


def parse_args(argv: list[str], prog: str = PROG) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Export an STS model to ONNX for ONNX Runtime (float32, or dynamic int8 with --quantize int8).",
    )
    parser.add_argument("model_name_or_path", help="a saved STS model (e.g. outputs/cross), or an encoder with --arch")
    parser.add_argument("output_dir", help="the folder to write (ONNX graphs, config.json, tokenizer)")
    parser.add_argument("--quantize", choices=QUANTIZATIONS, default=None, help="dynamic quantization of the weights")
    parser.add_argument(
        "--optimize",
        action="store_true",
        help="fuse the encoder ahead of time with ONNX Runtime's transformer optimizer (its own operators)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier export in output_dir")
    parser.add_argument("--arch", choices=list(ARCHITECTURES), help="architecture, for a plain encoder checkpoint")
    parser.add_argument("--pooling", choices=POOLING_MODES, help="pooling, for a plain encoder checkpoint")
    return parser.parse_args(argv)


def main(argv: list[str], prog: str = PROG) -> None:
    args = parse_args(argv, prog)
    # the ONNX backend is a leaf of the package: imported only here, where it is asked for
    from ..backends.onnx import ONNX_CONFIG_NAME, export_onnx, import_onnx_dependencies
    from ..backends.onnx_check import FLOAT32_TOLERANCE

    import_onnx_dependencies()  # a missing extra fails here, before the model loads
    # so does an output folder the export would refuse (export_onnx checks it again)
    check_export_folder(args.output_dir, ONNX_CONFIG_NAME, args.overwrite, args.model_name_or_path)
    print(f"Loading {args.model_name_or_path}", flush=True)
    try:
        model = load_model(args.arch, args.model_name_or_path, pooling=args.pooling)
    except OSError as error:  # a Hub id that cannot be fetched, a folder without weights
        raise STSUserError(str(error).splitlines()[0]) from None
    if args.pooling is not None and saved_arch(args.model_name_or_path) is not None:
        # a trained model's scores depend on the pooling it was trained with: another one exports another model
        raise STSUserError(
            f"--pooling is for a plain encoder: {args.model_name_or_path} is a trained {model.config.arch} model, "
            "exported with the pooling it was trained with (leave --pooling out)"
        )
    if model.dtype != torch.float32:  # weights stored in float16/bf16 (common on the Hub): ONNX Runtime's float32 path
        print(f"  its weights are {model.dtype}: exported in float32", flush=True)
        model = model.float()
    precision = args.quantize or "float32"
    print(f"Exporting the '{model.config.arch}' model to {args.output_dir} ({precision})", flush=True)
    export_onnx(model, args.output_dir, quantize=args.quantize, optimize=args.optimize, overwrite=args.overwrite)
    with open(os.path.join(args.output_dir, ONNX_CONFIG_NAME), encoding="utf-8") as handle:
        record = json.load(handle)
    for name, entry in record["files"].items():
        fused = ", ".join(f"{op} {count}" for op, count in entry["fused_operators"].items())
        int8 = "max_abs_diff_int8" in entry
        difference = entry["max_abs_diff_int8" if int8 else "max_abs_diff_float32"]
        bound = (
            "int8 is not held to a bound: its cost in quality is the STS-B Spearman of benchmarks/onnx_serving.py"
            if int8
            else f"float32 exports are held within {FLOAT32_TOLERANCE:g}"
        )
        print(
            f"  {name}: {entry['bytes'] / 1e6:.1f} MB{', fused operators: ' + fused if fused else ''}; largest "
            f"difference from PyTorch on the check batch: {difference:.1e} in its {', '.join(entry['outputs'])} "
            f"({bound})"
        )
    print(f"Done. Serve it with sts_models.backends.onnx.ORTSTSModel.from_pretrained({args.output_dir!r})")


def cli(argv: list[str], prog: str = PROG) -> int:
    return run_cli(prog, lambda args: main(args, prog), argv)


def parse_export_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="sts-models export",
        description="Export an STS model to another library's format: siamese (cosine head) -> a "
        "sentence-transformers SentenceTransformer folder, bert (trained with --symmetric false) -> a CrossEncoder folder.",
    )
    parser.add_argument("model_name_or_path", help="a saved STS model (folder or Hub id)")
    parser.add_argument("output_dir", help="the folder to write")
    parser.add_argument("--format", choices=FORMATS, default=FORMATS[0], help="the library to export to")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier export in output_dir")
    return parser.parse_args(argv)


def check_trained_model(model_name_or_path: str) -> None:
    """Refuse a plain encoder in one line that says what to do with it: `sts-models export` has no --arch (a
    sentence-transformers export holds a trained siamese or bert model). A folder or Hub id that cannot be read is
    left to `load_model`, which names why."""
    try:
        plain = saved_config(model_name_or_path) is None
    except (STSUserError, OSError, ValueError):
        return
    if plain:
        raise plain_encoder(
            model_name_or_path,
            f"train one on it first (sts-models train --arch siamese, or --arch bert, --model_name_or_path "
            f"{model_name_or_path} ...; run_sts.py takes the same flags) and export its output folder",
        )


def export_main(argv: list[str]) -> None:
    args = parse_export_args(argv)
    from ..sentence_transformers_export import MODEL_CONFIG_NAME, export_sentence_transformers

    # an output folder the export would refuse is refused before the model loads (the export checks it again)
    check_export_folder(args.output_dir, MODEL_CONFIG_NAME, args.overwrite, args.model_name_or_path)
    check_trained_model(args.model_name_or_path)
    model = load_model(None, args.model_name_or_path)
    kind = export_sentence_transformers(model, args.output_dir, overwrite=args.overwrite)
    print(f"Done. Load it with sentence_transformers.{kind}({args.output_dir!r})")


def export_cli(argv: list[str], prog: str = "sts-models export") -> int:
    return run_cli(prog, export_main, argv)
