"""Which process of a multi-process run this is, read without importing torch or accelerate: `sts_models.cli` asks
while they still load, and `sts_models.errors` (copied beside the weights with the model code) imports only the
standard library and its siblings."""

from __future__ import annotations

import os
import sys


def process_rank() -> tuple[int, bool]:
    """(this process's rank, whether it is the first process of its machine) in a multi-process run (`accelerate
    launch`, `torchrun`, `deepspeed`): accelerate's state once it is set up, else the launcher's RANK and LOCAL_RANK;
    (0, True) for a process of its own."""
    state = sys.modules.get("accelerate.state")
    # set up: PartialState() is the shared one (a setup cut short, by Ctrl-C while it waits for the other processes
    # or an error, leaves part of its state without the ranks)
    if state is not None and {"process_index", "local_process_index"} <= state.PartialState._shared_state.keys():
        partial = state.PartialState()
        return partial.process_index, partial.local_process_index == 0
    try:
        local_rank = int(os.environ.get("LOCAL_RANK") or 0)
        return int(os.environ.get("RANK") or local_rank), local_rank == 0
    except ValueError:
        return 0, True
