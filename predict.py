#!/usr/bin/env python
"""Score a file of sentence pairs of any size: `sts-models predict`, as a script (sts_models/cli/predict.py).

python predict.py outputs/siamese pairs.jsonl scores.tsv
"""

import sys

from sts_models.cli import script_cli

# imports the command's modules when called: Ctrl-C while they load ends it in one line
cli = script_cli("predict.py")

if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
