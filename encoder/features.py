"""Node featuriser: a computation graph (or its PyG form) -> float node features.

The estimator is trained on NAS-Bench-101 (CIFAR, 32x32, 128-channel stem, 9
cells) and must rank networks it has never seen: NAS-Bench-201 (16-channel
stem, 15 cells), DARTS cells, ImageNet MobileNets at 224x224. So every feature
is *scale-free*: it does not change when the input resolution, the stem width
or the number of stacked cells changes in a way that keeps the architecture's
shape, and BN folding (which changes ``params``) never shows: the weight size
of a node is its ``weight_numel``, never ``params``.

Columns, in the order of :data:`FEATURE_NAMES` (``N`` = nodes of one graph):

==========================  =====================================================
``op=<name>``               one-hot over :data:`gennape.cg.ops.OPS`
``kernel_h``, ``kernel_w``  window size / 7 (1x1 -> 0.14, 3x3 -> 0.43, 7x7 -> 1)
``log_stride``              log2(stride_h): 1 for a stride-2 node
``log_dilation``            log2(dilation_h)
``group_width``             log2(in_channels / groups) / log2(in_channels): 1
                            for a dense conv, 0 for depthwise, between for
                            grouped (0 where in_channels is 1)
``log_expansion``           log2(out_channels / in_channels) / 3, clipped to
                            [-1, 1]: the node's channel change
``log_width_vs_stem``       log2(out_channels / stem channels) / 4, where the
                            stem channels are the output channels of the first
                            weighted node: 0, 0.25, 0.5 for the three widths of
                            NB-101 *and* NB-201 although their stems differ 8x
``downsample_level``        log2(input resolution / out_h) / L, at most 1, where
                            L = log2(input resolution / smallest feature-map
                            side > 1): how far down the graph's own resolution
                            pyramid the node works (0 at the input, 1 at the
                            last stage, vectors 1), so 32 -> 8 (CIFAR, L = 2)
                            and 224 -> 7 (ImageNet, L = 5) both span [0, 1]
``log_spatial_change``      log2(in_h / out_h) of feature-map nodes (0 for the
                            input, global pools and vectors): 1 for stride 2
``weight_share``            weight_numel / graph total weight_numel
``log_weight_vs_mean``      log2(1 + weight_numel / mean weight_numel of the
                            weighted nodes) / 4
``mac_share``               MACs / graph total MACs
``log_macs_vs_mean``        log2(1 + MACs / mean MACs of the nodes with MACs) / 4
``position``                node index / (N - 1): the canonical order is
                            topological, so this is the relative depth
==========================  =====================================================

Shares and "vs mean" ratios are relative to the graph's own totals, so neither
resolution (MACs scale by H*W everywhere) nor stem width (weights scale by the
width squared everywhere) changes them.

Bump :data:`FEATURIZER_VERSION` whenever a column changes meaning; checkpoints
record it and refuse a mismatch.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from gennape.cg.ops import OPS, WEIGHTED_OPS, OP_INDEX
from gennape.cg.graph import RAW_ATTRS

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from gennape.cg.graph import CG

#: Bumped whenever a feature column changes meaning, here or in what the
#: encoder makes of it (2: op types enter as op classes, :mod:`gennape.encoder.op_encoding`;
#: 3: numeric columns clamped to the training range, :mod:`gennape.encoder.feature_range`).
FEATURIZER_VERSION = 3

NUMERIC_FEATURES: tuple[str, ...] = (
    "kernel_h", "kernel_w", "log_stride", "log_dilation", "group_width",
    "log_expansion", "log_width_vs_stem", "downsample_level", "log_spatial_change",
    "weight_share", "log_weight_vs_mean", "mac_share", "log_macs_vs_mean", "position",
)

#: Every column of :func:`featurize`'s output, in order.
FEATURE_NAMES: tuple[str, ...] = tuple(f"op={op}" for op in OPS) + NUMERIC_FEATURES

NUM_FEATURES = len(FEATURE_NAMES)

_COL = {name: i for i, name in enumerate(RAW_ATTRS)}
_WEIGHTED_INDEX = sorted(OP_INDEX[op] for op in WEIGHTED_OPS)


def featurize(data) -> "torch.Tensor":
    """Node features of ONE graph.

    Args:
        data: a ``torch_geometric.data.Data`` from :meth:`gennape.cg.graph.CG.to_pyg`
            (needs ``op``, ``attrs`` and ``input_resolution``), not a batch:
            shares and ratios use the graph's own totals.

    Returns:
        ``[num_nodes, NUM_FEATURES]`` float32 tensor, columns as in
        :data:`FEATURE_NAMES`.
    """
    import torch

    a = data.attrs.to(torch.float64)
    n = a.shape[0]
    col = lambda name: a[:, _COL[name]]  # noqa: E731
    log2 = lambda t: torch.log2(t.clamp_min(1.0))  # noqa: E731

    onehot = torch.nn.functional.one_hot(data.op, len(OPS)).to(torch.float64)

    in_c, out_c = col("in_channels").clamp_min(1.0), col("out_channels").clamp_min(1.0)
    in_h, out_h = col("in_h").clamp_min(1.0), col("out_h").clamp_min(1.0)
    weighted = torch.isin(data.op, torch.tensor(_WEIGHTED_INDEX))
    stem_c = out_c[weighted][0] if bool(weighted.any()) else out_c.max()
    resolution = float(data.input_resolution.reshape(-1)[0]) if hasattr(data, "input_resolution") else 0.0
    resolution = resolution if resolution > 0 else float(in_h.max())

    # Feature maps proper: spatial in and out, not the input node (no in_shape).
    feature_map = (in_h > 1) & (out_h > 1)
    spatial = out_h[out_h > 1]
    smallest = float(spatial.min()) if len(spatial) else resolution
    levels = max(math.log2(resolution / smallest), 1.0) if smallest > 0 else 1.0

    numel, macs = col("weight_numel"), col("macs")
    numel_total, macs_total = float(numel.sum()), float(macs.sum())
    n_weighted = int((numel > 0).sum())
    n_macs = int((macs > 0).sum())
    numel_mean = numel_total / n_weighted if n_weighted else 1.0
    macs_mean = macs_total / n_macs if n_macs else 1.0

    numeric = torch.stack([
        col("kernel_h") / 7.0,
        col("kernel_w") / 7.0,
        log2(col("stride_h")),
        log2(col("dilation_h")),
        torch.where(in_c > 1, log2(in_c / col("groups").clamp_min(1.0)) / torch.log2(in_c.clamp_min(2.0)),
                    torch.zeros_like(in_c)),
        (torch.log2(out_c / in_c) / 3.0).clamp(-1.0, 1.0),
        torch.log2(out_c / stem_c) / 4.0,
        (log2(resolution / out_h) / levels).clamp_max(1.0),
        torch.where(feature_map, torch.log2(in_h / out_h), torch.zeros_like(in_h)),
        numel / numel_total if numel_total > 0 else torch.zeros(n, dtype=torch.float64),
        torch.log2(1.0 + numel / numel_mean) / 4.0,
        macs / macs_total if macs_total > 0 else torch.zeros(n, dtype=torch.float64),
        torch.log2(1.0 + macs / macs_mean) / 4.0,
        torch.arange(n, dtype=torch.float64) / max(n - 1, 1),
    ], dim=1)
    return torch.cat([onehot, numeric], dim=1).to(torch.float32)


def to_data(cg: "CG"):
    """The PyG ``Data`` of ``cg`` with featurised nodes in ``x``.

    Shapes:
        - ``x``: ``[num_nodes, NUM_FEATURES]`` float32
        - ``edge_index``: ``[2, num_edges]`` long
    """
    from torch_geometric.data import Data

    raw = cg.to_pyg()
    return Data(x=featurize(raw), edge_index=raw.edge_index, num_nodes=raw.num_nodes)


__all__ = ["FEATURIZER_VERSION", "FEATURE_NAMES", "NUM_FEATURES", "featurize", "to_data"]
