#!/usr/bin/env python
"""Export an STS model to ONNX for ONNX Runtime: `sts-models export-onnx`, as a script (sts_models/cli/export.py).

python export_onnx.py outputs/cross outputs/cross-onnx-int8 --quantize int8
"""

import sys

from sts_models.cli import script_cli

# imports the command's modules when called: Ctrl-C while they load ends it in one line
cli = script_cli("export_onnx.py")

if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
