"""`--bf16 auto`, chosen by measurement: a few training steps (forward and backward) of the run's own model on
batches of its own training data, in float32 and in bf16 autocast, on the device it trains on; bf16 only where
its steps are clearly faster.

Whether bf16 pays depends on the hardware and on the batch: on a CPU with bf16 instructions (AVX-512 BF16, AMX)
MiniLM's steps take half the time, and on an H100 at batches of 16 float32 measured faster
(docs/distributed.md#mixed-precision), while a larger model or batch may turn that around. A rule per device gets
some of these wrong; a measurement of the run itself does not. Where bf16 is emulated (a CPU without bf16
instructions: 0.08x float32's samples/s, docs/performance.md) nothing is measured (`STSTrainingArguments.bf16_by_measurement`).
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable

import torch
from datasets import Dataset

from .data import tokenize_dataset
from .data_collator import TEACHER_INDEX_FIELDS, DataCollatorForSentencePairs
from .distributed import first_process_value

logger = logging.getLogger(__name__)

MEASURED_BATCHES = 3  # timed in each precision, after one batch that warms both up
BF16_MARGIN = 0.9  # bf16 is chosen when its median step takes under 90% of float32's


def measurement_batches(model, train: Dataset, batch_size: int, seed: int) -> list[dict[str, torch.Tensor]]:
    """`MEASURED_BATCHES + 1` batches of `batch_size` training examples drawn at random (with replacement, so a
    small training set still fills them), tokenized and collated as training reads them."""
    generator = torch.Generator().manual_seed(seed)
    count = (MEASURED_BATCHES + 1) * batch_size
    indices = torch.randint(len(train), (count,), generator=generator).tolist()
    tokenized = tokenize_dataset(train.select(indices), model, desc="Tokenizing batches to time --bf16 auto")
    collate = DataCollatorForSentencePairs.for_tokenizer(model.tokenizer)
    batches = []
    for start in range(0, count, batch_size):
        batch = collate([tokenized[i] for i in range(start, start + batch_size)])
        batches.append({key: value for key, value in batch.items() if key not in TEACHER_INDEX_FIELDS})
    return batches


def step_seconds(
    model, batches: list[dict[str, torch.Tensor]], device: torch.device, clock: Callable[[], float] = time.perf_counter
) -> dict[str, list[float]]:
    """Seconds of a training step (forward, loss, backward) of `model` on each batch, in float32 and in bf16
    autocast, the two precisions taking turns on each batch (which goes first alternates). The first batch warms
    both up and is not counted. The model's weights, its mode and the random number generators are as before;
    its gradients are cleared."""
    was_training = model.training
    model.train()  # dropout on, as in training
    times = {"fp32": [], "bf16": []}
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else [], device_type=device.type):
            for number, batch in enumerate(batches):
                batch = {key: value.to(device) for key, value in batch.items()}
                for precision in ("fp32", "bf16") if number % 2 == 0 else ("bf16", "fp32"):
                    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                        start = clock()
                        outputs = model(**batch)
                    loss = outputs.loss if outputs.loss is not None else outputs[0].float().sum()
                    loss.backward()
                    if device.type != "cpu":
                        torch.accelerator.synchronize()
                    elapsed = clock() - start
                    model.zero_grad(set_to_none=True)
                    if number:
                        times[precision].append(elapsed)
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return times


def bf16_is_faster(model, train: Dataset, batch_size: int, seed: int, device: torch.device) -> bool:
    """Whether the run should train in bf16 autocast: its median step in bf16 takes under `BF16_MARGIN` times
    float32's (`step_seconds` on `measurement_batches`). In a multi-process run every process measures its own
    device and all take the first process's answer, so they train alike."""
    model.to(device)
    times = step_seconds(model, measurement_batches(model, train, batch_size, seed), device)
    fp32, bf16 = (statistics.median(times[precision]) for precision in ("fp32", "bf16"))
    faster = bf16 < BF16_MARGIN * fp32
    choice = first_process_value(faster)
    logger.info(
        f"--bf16 auto: a training step of {batch_size} examples took {1000 * fp32:.0f} ms in float32 and "
        f"{1000 * bf16:.0f} ms in bf16 autocast on {device} (median of {MEASURED_BATCHES} batches): training in "
        f"{'bf16' if choice else 'float32'}" + ("" if choice == faster else ", the first process's choice")
    )
    return choice
