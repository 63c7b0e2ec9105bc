#!/usr/bin/env python
"""Export an STS model to ONNX for ONNX Runtime serving, optionally with dynamic int8 quantization.

    python export_onnx.py outputs/siamese outputs/siamese-onnx                  # float32
    python export_onnx.py outputs/cross outputs/cross-onnx-int8 --quantize int8
    python export_onnx.py sentence-transformers/all-MiniLM-L6-v2 minilm-onnx --arch siamese   # a plain encoder

The output folder loads with `sts_models.onnx.ORTSTSModel.from_pretrained(OUTPUT_DIR)`, which offers the
PyTorch model's `predict` (and `encode`, `semantic_search`, ... for `siamese`). Needs
`pip install 'sts-models[onnx]'`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from sts_models.architectures import ARCHITECTURES, load_model
from sts_models.configuration import POOLING_MODES
from sts_models.errors import STSInputError, run_cli
from sts_models.onnx import ONNX_CONFIG_NAME, QUANTIZATIONS, export_onnx, import_onnx_dependencies


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="export_onnx.py",
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
    parser.add_argument("--arch", choices=list(ARCHITECTURES), help="architecture, for a plain encoder checkpoint")
    parser.add_argument("--pooling", choices=POOLING_MODES, help="pooling, for a plain encoder checkpoint")
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    import_onnx_dependencies()  # a missing extra fails here, before the model loads
    print(f"Loading {args.model_name_or_path}", flush=True)
    try:
        model = load_model(args.arch, args.model_name_or_path, pooling=args.pooling)
    except OSError as error:  # a Hub id that cannot be fetched, a folder without weights
        raise STSInputError(str(error).splitlines()[0]) from None
    precision = args.quantize or "float32"
    print(f"Exporting the '{model.config.arch}' model to {args.output_dir} ({precision})", flush=True)
    export_onnx(model, args.output_dir, quantize=args.quantize, optimize=args.optimize)
    with open(os.path.join(args.output_dir, ONNX_CONFIG_NAME), encoding="utf-8") as handle:
        record = json.load(handle)
    for name, entry in record["files"].items():
        fused = ", ".join(f"{op} {count}" for op, count in entry["fused_operators"].items())
        difference = entry.get("max_abs_diff_int8", entry["max_abs_diff_float32"])
        print(
            f"  {name}: {entry['bytes'] / 1e6:.1f} MB{', fused operators: ' + fused if fused else ''}; "
            f"largest difference from PyTorch on the check batch: {difference:.1e}"
        )
    print(f"Done. Serve it with sts_models.onnx.ORTSTSModel.from_pretrained({args.output_dir!r})")


if __name__ == "__main__":
    sys.exit(run_cli("export_onnx.py", main, sys.argv[1:]))
