#!/usr/bin/env python
"""Fine-tune and evaluate an STS model: `sts-models train`, as a script for `python run_sts.py ...`,
`accelerate launch run_sts.py ...` and `deepspeed run_sts.py ...` (the code is in sts_models/cli/train.py).

    python run_sts.py --arch cross --output_dir out/cross --do_train --do_eval --do_predict
    accelerate launch --config_file configs/accelerate_ddp.yaml --num_processes 4 run_sts.py configs/cross.yaml
"""

import sys

from sts_models.cli import script_cli

# imports the command's modules when called: Ctrl-C while they load ends it in one line
cli = script_cli("run_sts.py")

if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
