"""Batch invariance: a graph's prediction does not depend on the graphs batched with it.

The model's graphs are batched as one big graph, so every dense layer is one
matrix product over all the batch's nodes (or graphs). MKL's float32 GEMM
rounds a row's result differently depending on how many rows the product has
(its blocking depends on the matrix size), so the same network predicted
alone, among others or in another order could differ in the last bits
(measured: the nine ONNX model-zoo light models, 1e-9 on the accuracy in
reversed order, 1e-6 on the score alone vs together).

:class:`FixedRowBlocks` makes every ``F.linear`` (``nn.Linear`` and PyG's
``Linear`` both call it) a sequence of products of fixed-size blocks of
:data:`ROW_BLOCK` rows, the last block zero-padded: every row then goes
through a product of the same shape wherever it sits, and its result is the
same bits (checked by ``tests/test_batch_invariance.py``). The other steps
are per row or per graph already: the GNN's sum aggregation and the readout
add each node's / graph's terms in the graph's own edge / node order, layer
norm, standardisation and the size term are row-wise, the op encoding's
product has 0/1 entries (exact), and distances use
:func:`pairwise_distance` (no matrix-product shortcut).

Measured cost: 500 NB-201 CGs through the shipped nine-member ensemble
(``predict_details`` on one pack, one thread, best of 3; two shared cores
under a load of ~6, so absolute figures are low) went from 21 and 16 CGs/s
before to 13 and 12 CGs/s after (two alternating runs each), with the same
scores to the bit on that batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

#: Rows per block of :func:`fixed_block_linear`.
ROW_BLOCK = 128
_LINEAR = (F.linear, torch._C._nn.linear)


def fixed_block_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                       block: int = ROW_BLOCK) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` computed ``block`` rows at a time (the last
    block zero-padded), each block one product of the same shape, so that each
    row's result does not depend on the other rows. (One ``bmm`` over all the
    blocks is not enough: its kernel depends on the number of blocks.)

    Shapes:
        - x: ``[*, in]``, weight: ``[out, in]``, bias: ``[out]``
        - output: ``[*, out]``
    """
    rows = x.reshape(-1, x.shape[-1])
    n = rows.shape[0]
    padded = F.pad(rows, (0, 0, 0, max(1, -(-n // block)) * block - n))
    out = torch.cat([F.linear(part, weight, bias) for part in padded.split(block)])[:n]
    return out.reshape(*x.shape[:-1], weight.shape[0])


class FixedRowBlocks(TorchFunctionMode):
    """Within ``with FixedRowBlocks():`` every ``F.linear`` is :func:`fixed_block_linear`."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _LINEAR:
            return fixed_block_linear(*args, **kwargs)
        return func(*args, **kwargs)


def pairwise_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Euclidean distances ``[n, m]`` of the rows of ``x`` ``[n, d]`` to those of
    ``y`` ``[m, d]``, each from its own difference (``torch.cdist`` switches to a
    matrix-product formula above 25 rows, whose rounding depends on ``n``)."""
    return torch.cdist(x, y, compute_mode="donot_use_mm_for_euclid_dist")


__all__ = ["FixedRowBlocks", "ROW_BLOCK", "fixed_block_linear", "pairwise_distance"]
