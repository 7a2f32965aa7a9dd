"""Data-parallel pretraining with PyTorch's own engine, launched by torchrun.

``torchrun --nproc-per-node N -m gennape pretrain ...`` starts N processes
(ranks) with ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` set; :func:`process_group`
joins them into one process group (gloo on CPU, nccl on CUDA, one GPU per
local rank). Every rank then runs the same training with the same seed, so the
models start equal and the shared generator (batch order, view picks) stays
equal too; what differs is the data each rank embeds:

* each global batch (``batch_size`` graphs, the same batches as in one process)
  is split into N contiguous parts, one per rank (:func:`local_part`): the
  data is sharded the way a DistributedSampler would, batch by batch;
* the per-graph outputs (embeddings, head predictions) are all-gathered with
  autograd (:func:`gather_rows`), so the loss is the loss of the whole global
  batch, NT-Xent negatives and ranking pairs included;
* the gradients are all-reduced and divided by N (:func:`average_gradients`).

The all-gather's backward sums each rank's gradient into the owner of the
rows, so every parameter ends with exactly the gradient one process computes
on the same global batch: N processes train the same model as one, only
faster (feature masks and edge drops are drawn per rank, from
:func:`augmentation_generator`, so those random draws differ).

Rank 0 alone writes the partial state and the checkpoint
(:func:`is_main_process`); the checkpoint records ``world_size`` and ``backend``.
Outside torchrun (or with one process) nothing here does anything.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch


@dataclass(frozen=True)
class DataParallel:
    """This process's place in the group.

    Args:
        rank: 0 .. world_size - 1; rank 0 writes files.
        world_size: number of processes.
        backend: ``gloo`` or ``nccl``.
    """

    rank: int
    world_size: int
    backend: str


def launched_world_size() -> int:
    """The number of processes torchrun started (1 when not launched by it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def launched_rank() -> int:
    """This process's rank as torchrun set it (0 when not launched by it)."""
    return int(os.environ.get("RANK", "0"))


@contextmanager
def process_group(device: str = "cpu") -> Iterator[DataParallel | None]:
    """Within: this process's :class:`DataParallel` place in the group torchrun
    describes, or ``None`` for a single process. Joins the group (gloo on CPU,
    nccl on CUDA with GPU ``LOCAL_RANK`` per rank, so ``device="cuda"`` means
    that one) unless the caller already did; on leaving normally, waits for
    every rank, and leaves the group it joined."""
    import torch.distributed as dist

    joined = False
    if launched_world_size() > 1 and not dist.is_initialized():
        if device == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
        joined = True
    yield current()
    # Only on a normal exit: after an error the other ranks may sit in a
    # collective that never completes; this process exits, torchrun stops them.
    if joined:
        dist.barrier()  # rank 0 may still be writing the checkpoint
        dist.destroy_process_group()


def current() -> DataParallel | None:
    """The group this process trains in, or ``None`` for a single process."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return None
    return DataParallel(dist.get_rank(), dist.get_world_size(), str(dist.get_backend()))


def is_main_process() -> bool:
    """True on rank 0, and in a single process: the one that writes files."""
    dp = current()
    return dp is None or dp.rank == 0


def min_batch(dp: DataParallel | None) -> int:
    """The smallest batch trained on: a pair (losses compare graphs), and at
    least one graph per rank."""
    return 2 if dp is None else max(2, dp.world_size)


def part_sizes(n: int, world_size: int) -> list[int]:
    """Rows of each rank when ``n`` rows are split (as :func:`numpy.array_split`)."""
    return [len(p) for p in np.array_split(np.arange(n), world_size)]


def local_part(idx, dp: DataParallel):
    """This rank's contiguous part of a global batch ``idx``."""
    sizes = part_sizes(len(idx), dp.world_size)
    start = sum(sizes[:dp.rank])
    return idx[start:start + sizes[dp.rank]]


def gather_rows(local: torch.Tensor, n: int, dp: DataParallel) -> torch.Tensor:
    """The rows of every rank's :func:`local_part` of an ``n``-row batch, in
    batch order, with autograd: the backward hands each rank the gradient of
    its own rows, summed over the ranks.

    Shapes:
        - local: ``[n_rank, ...]``; output ``[n, ...]``
    """
    return _GatherRows.apply(local, part_sizes(n, dp.world_size), dp.rank)


class _GatherRows(torch.autograd.Function):
    @staticmethod
    def forward(ctx, local: torch.Tensor, sizes: list[int], rank: int) -> torch.Tensor:
        import torch.distributed as dist

        ctx.sizes, ctx.rank = sizes, rank
        pad = max(sizes) - local.shape[0]  # all_gather needs equal shapes
        padded = torch.cat([local, local.new_zeros((pad, *local.shape[1:]))]) if pad else local.contiguous()
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded)
        return torch.cat([p[:s] for p, s in zip(parts, sizes)])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        import torch.distributed as dist

        grad = grad.contiguous().clone()
        dist.all_reduce(grad)  # every rank's loss reads every row
        start = sum(ctx.sizes[:ctx.rank])
        return grad[start:start + ctx.sizes[ctx.rank]], None, None


def average_gradients(params, dp: DataParallel) -> None:
    """All-reduce the gradients of ``params`` (one flat buffer) and divide by
    the world size. With :func:`gather_rows` in the forward pass this is the
    gradient of the global batch (see the module docstring)."""
    import torch.distributed as dist

    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dp.world_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def augmentation_generator(gen: torch.Generator, dp: DataParallel) -> torch.Generator:
    """A generator for this rank's feature masks and edge drops, seeded from
    the shared ``gen``'s state (read, not advanced: batch order and view picks
    stay those of one process, and a resumed run draws the same masks) and
    the rank."""
    import hashlib

    digest = hashlib.sha256(gen.get_state().numpy().tobytes() + dp.rank.to_bytes(4, "little")).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))


__all__ = ["DataParallel", "launched_world_size", "launched_rank", "process_group", "current", "is_main_process",
           "min_batch", "part_sizes", "local_part", "gather_rows", "average_gradients", "augmentation_generator"]
