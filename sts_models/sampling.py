"""`SilverPerEpochSampler`: the training order of a distilled run that reads every gold pair each epoch and a
different part of its silver pairs (`run_sts.py --silver_pairs_per_epoch`).

More silver pairs at the cost of fewer ones: a large silver set (many neighbours per sentence) is read a slice at a
time, so that each epoch costs what a small one would, and the epochs together still see all of it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler
from transformers.trainer_pt_utils import get_length_grouped_indices

from .errors import STSUserError

STRATEGIES = ("random", "group_by_length")  # the --train_sampling_strategy values it can follow


def check_train_sampling_strategy(strategy: str) -> None:
    """Refuse, in one line, a --train_sampling_strategy that `SilverPerEpochSampler` cannot follow."""
    if strategy not in STRATEGIES:
        raise STSUserError(
            f"--silver_pairs_per_epoch draws random or length-grouped batches, not --train_sampling_strategy {strategy}"
        )


class SilverPerEpochSampler(Sampler[int]):
    """Indices of a dataset whose first `gold_rows` rows are gold pairs and whose other rows are silver pairs: each
    epoch, every gold row and the next `silver_per_epoch` silver rows of a shuffled pass through them (a new
    shuffle for each pass; an epoch that spans two passes may read a silver row twice), all shuffled together, or
    grouped into batches of similar `lengths` like the Trainer's `LengthGroupedSampler` when they are given.

    The order depends only on `seed` (`STSTrainer` gives the run's `--data_seed`, else its `--seed`) and the epoch
    (`set_epoch`, called by the Trainer), so every process of a multi-process run draws the same one and a resumed
    run draws the one it was interrupted in.
    """

    def __init__(
        self,
        num_rows: int,
        gold_rows: int,
        silver_per_epoch: int,
        seed: int = 42,
        lengths: Sequence[int] | None = None,
        batch_size: int = 16,
    ):
        if not 0 <= gold_rows <= num_rows:
            raise ValueError(f"gold_rows must be between 0 and {num_rows}, got {gold_rows}")
        if silver_per_epoch < 1:
            raise ValueError(f"silver_per_epoch must be 1 or more, got {silver_per_epoch}")
        self.gold_rows = gold_rows
        self.silver_rows = num_rows - gold_rows
        self.silver_per_epoch = min(silver_per_epoch, self.silver_rows)
        self.seed = seed
        self.lengths = lengths
        self.batch_size = batch_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.gold_rows + self.silver_per_epoch

    def cycle(self, number: int) -> torch.Tensor:
        """The silver rows in the order of the `number`-th pass through them."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + number)
        return torch.randperm(self.silver_rows, generator=generator) + self.gold_rows

    def silver_indices(self) -> torch.Tensor:
        """This epoch's silver rows: positions `epoch * silver_per_epoch` on of the passes laid end to end."""
        if not self.silver_per_epoch:
            return torch.empty(0, dtype=torch.long)
        start = self.epoch * self.silver_per_epoch
        first, last = start // self.silver_rows, (start + self.silver_per_epoch - 1) // self.silver_rows
        passes = torch.cat([self.cycle(number) for number in range(first, last + 1)])
        offset = start - first * self.silver_rows
        return passes[offset : offset + self.silver_per_epoch]

    def __iter__(self) -> Iterator[int]:
        chosen = torch.cat([torch.arange(self.gold_rows), self.silver_indices()])
        generator = torch.Generator().manual_seed(self.seed + 7919 * (self.epoch + 1))
        if self.lengths is None:
            order = torch.randperm(len(chosen), generator=generator)
        else:
            lengths = [self.lengths[index] for index in chosen.tolist()]
            order = torch.tensor(get_length_grouped_indices(lengths, self.batch_size, generator=generator))
        yield from chosen[order].tolist()
