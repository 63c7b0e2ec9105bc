"""Multi-process helpers: gather a batch's tensors from every process, with gradients.

In-batch losses (CoSENT, AnglE, multiple negatives ranking, the batch triplet losses, the `cosent` pair
loss) compare each example with the others of its batch. Under DistributedDataParallel every process
only sees its own slice of the global batch; gathering the slices first lets the loss see all of it
(sentence-transformers' `gather_across_devices`).

Every process then computes the same loss over the gathered batch. The backward of the gather sums the
gradients of all processes into each one's own slice, and DDP averages the parameter gradients over
the processes, so one step equals one step of a single process on the whole global batch.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def world_size() -> int:
    """Number of processes of the default process group (1 when none is initialized)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def first_process_value(value):
    """`value` as the first process has it, on every process (a collective: every process calls it); `value`
    itself in a run of one process."""
    if world_size() == 1:
        return value
    shared = [value]
    dist.broadcast_object_list(shared, src=0)
    return shared[0]


def gather_across_processes(tensor: torch.Tensor) -> torch.Tensor:
    """The tensors of every process concatenated along the first dimension, in rank order.

    Gradients flow back to each process's own slice. Slices may differ in length (a last, smaller
    batch): they are padded to the longest for the collective and trimmed after.
    """
    if world_size() == 1:
        return tensor
    length = torch.tensor([tensor.shape[0]], device=tensor.device)
    lengths = [torch.zeros_like(length) for _ in range(world_size())]
    dist.all_gather(lengths, length)
    lengths = [int(n) for n in lengths]
    longest = max(lengths)
    if tensor.shape[0] < longest:
        padding = tensor.new_zeros((longest - tensor.shape[0], *tensor.shape[1:]))
        tensor = torch.cat([tensor, padding])
    slices = _AllGather.apply(tensor.contiguous())
    return torch.cat([piece[:n] for piece, n in zip(slices, lengths)])


class _AllGather(torch.autograd.Function):
    """All-gather (equal shapes) whose backward sums each slice's gradient over the processes and hands
    every process the sum for its own slice (the reduce-scatter that undoes the gather)."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> tuple[torch.Tensor, ...]:
        slices = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(slices, tensor)
        return tuple(slices)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor) -> torch.Tensor:
        grad = torch.stack(grads)
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[dist.get_rank()]
