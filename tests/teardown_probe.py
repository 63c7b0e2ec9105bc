"""`run_sts.py` that reports, as each process destroys its process group, how many DDP models are still alive.

A model left alive holds gloo work and tensors that would otherwise be freed at interpreter exit, where gloo can
abort the process after a run that went through (tests/test_distributed.py)."""

import gc
import sys

import torch
from torch.nn.parallel import DistributedDataParallel

from sts_models.cli.train import cli

destroy_process_group = torch.distributed.destroy_process_group


def reported_destroy_process_group(*args, **kwargs):
    alive = sum(isinstance(thing, DistributedDataParallel) for thing in gc.get_objects())
    print(f"DDP models alive at teardown: {alive}", file=sys.stderr)
    return destroy_process_group(*args, **kwargs)


if __name__ == "__main__":
    torch.distributed.destroy_process_group = reported_destroy_process_group
    sys.exit(cli(sys.argv[1:]))
