"""The featuriser over many graphs at once, in NumPy: the same columns as
:func:`gennape.encoder.features.featurize`, to the bit, at a fraction of the cost.

:func:`featurize` makes ~40 small torch calls per graph (~0.3 ms for a
100-node NB-201 cell, ~8 µs of dispatch each), which is most of packing a
graph; a predictor of 1,000 graphs/s has 1 ms for everything. Here every
step runs once over the concatenated nodes of a chunk of graphs, with the
per-graph totals (first weighted node, smallest feature map, weight and MAC
sums) taken by segment reductions (``np.*.reduceat``) and broadcast back.

Bit-identity with :func:`featurize`: the only sums are of integer counts
(weights, MACs), exact in float64 in any order; everything else is
element-wise on the same float64 values, then rounded to float32
(``tests/test_batch_features.py`` checks every family against ``featurize``).

:func:`cg_arrays` reads a CG's op indices, raw attributes and edges straight
into arrays, without the PyG ``Data`` of :meth:`gennape.cg.graph.CG.to_pyg`.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np

from gennape.cg.graph import RAW_ATTRS, raw_attrs
from gennape.cg.ops import OP_INDEX, OPS
from gennape.encoder.features import _COL, _WEIGHTED_INDEX, NUMERIC_FEATURES

_WEIGHTED = np.zeros(len(OPS), dtype=bool)
_WEIGHTED[_WEIGHTED_INDEX] = True


@functools.lru_cache(maxsize=1 << 14)
def _node_attrs(node) -> tuple:
    """:func:`gennape.cg.graph.raw_attrs` of a node, memoised: equal nodes
    (same op, shapes, weights; names aside) recur across a family's networks
    (29 distinct nodes in 500 NB-201 cells), and a look-up is ~3x cheaper."""
    return tuple(raw_attrs(node))


def cg_arrays(cg) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``(op [n] int64, attrs [n, len(RAW_ATTRS)] float64, edges [2, m] int64,
    input_resolution)`` of one CG, as :meth:`gennape.cg.graph.CG.to_pyg` holds them."""
    nodes = cg.nodes
    op = np.fromiter((OP_INDEX[n.op] for n in nodes), dtype=np.int64, count=len(nodes))
    flat: list[float] = []
    for n in nodes:
        flat.extend(_node_attrs(n))
    attrs = np.fromiter(flat, dtype=np.float64, count=len(flat)).reshape(len(nodes), len(RAW_ATTRS))
    edges = np.fromiter(itertools.chain.from_iterable(cg.edges), dtype=np.int64,
                        count=2 * len(cg.edges)).reshape(-1, 2).T
    return op, attrs, edges, cg.input_resolution


def _segments(values: np.ndarray, starts: np.ndarray, ufunc, empty: float) -> np.ndarray:
    """``ufunc.reduceat`` of ``values`` over the graphs starting at ``starts``
    (every graph has at least one node)."""
    return ufunc.reduceat(values, starts) if len(values) else np.full(len(starts), empty)


def featurize_graphs(op: np.ndarray, attrs: np.ndarray, node_ptr: np.ndarray,
                     input_resolution: np.ndarray) -> np.ndarray:
    """:func:`gennape.encoder.features.featurize` of every graph of a chunk.

    Args:
        op: ``[N]`` op indices of the chunk's nodes, graph after graph.
        attrs: ``[N, len(RAW_ATTRS)]`` float64 raw attributes.
        node_ptr: ``[G + 1]`` offsets of each graph's nodes (each graph non-empty).
        input_resolution: ``[G]`` each graph's input resolution (0: unknown).

    Returns:
        ``[N, NUM_FEATURES]`` float32.
    """
    node_ptr = np.asarray(node_ptr, dtype=np.int64)
    starts, sizes = node_ptr[:-1], np.diff(node_ptr)
    if np.any(sizes < 1):
        raise ValueError("every graph needs at least one node")
    g_of = np.repeat(np.arange(len(sizes)), sizes)  # graph of each node
    col = lambda name: attrs[:, _COL[name]]  # noqa: E731
    log2 = lambda t: np.log2(np.maximum(t, 1.0))  # noqa: E731
    n = len(op)
    out = np.zeros((n, len(OPS) + len(NUMERIC_FEATURES)), dtype=np.float64)
    out[np.arange(n), op] = 1.0

    in_c, out_c = np.maximum(col("in_channels"), 1.0), np.maximum(col("out_channels"), 1.0)
    in_h, out_h = np.maximum(col("in_h"), 1.0), np.maximum(col("out_h"), 1.0)
    # Stem channels: the first weighted node's out_channels, else the graph's largest.
    first_weighted = _segments(np.where(_WEIGHTED[op], np.arange(n), n), starts, np.minimum, n)
    has_weighted = first_weighted < n
    stem_c = np.where(has_weighted, out_c[np.minimum(first_weighted, n - 1)],
                      _segments(out_c, starts, np.maximum, 1.0))
    resolution = np.asarray(input_resolution, dtype=np.float64)
    resolution = np.where(resolution > 0, resolution, _segments(in_h, starts, np.maximum, 1.0))
    feature_map = (in_h > 1) & (out_h > 1)
    smallest = _segments(np.where(out_h > 1, out_h, np.inf), starts, np.minimum, np.inf)
    smallest = np.where(np.isfinite(smallest), smallest, resolution)
    with np.errstate(divide="ignore", invalid="ignore"):
        levels = np.where(smallest > 0, np.maximum(np.log2(resolution / smallest), 1.0), 1.0)

    numel, macs = col("weight_numel"), col("macs")
    numel_total = _segments(numel, starts, np.add, 0.0)
    macs_total = _segments(macs, starts, np.add, 0.0)
    n_weighted = _segments((numel > 0).astype(np.int64), starts, np.add, 0)
    n_macs = _segments((macs > 0).astype(np.int64), starts, np.add, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        numel_mean = np.where(n_weighted > 0, numel_total / np.maximum(n_weighted, 1), 1.0)
        macs_mean = np.where(n_macs > 0, macs_total / np.maximum(n_macs, 1), 1.0)

    num = out[:, len(OPS):]
    num[:, 0] = col("kernel_h") / 7.0
    num[:, 1] = col("kernel_w") / 7.0
    num[:, 2] = log2(col("stride_h"))
    num[:, 3] = log2(col("dilation_h"))
    with np.errstate(divide="ignore", invalid="ignore"):
        num[:, 4] = np.where(in_c > 1, log2(in_c / np.maximum(col("groups"), 1.0)) / np.log2(np.maximum(in_c, 2.0)),
                             0.0)
        num[:, 5] = np.clip(np.log2(out_c / in_c) / 3.0, -1.0, 1.0)
        num[:, 6] = np.log2(out_c / stem_c[g_of]) / 4.0
        num[:, 7] = np.minimum(log2(resolution[g_of] / out_h) / levels[g_of], 1.0)
        num[:, 8] = np.where(feature_map, np.log2(in_h / out_h), 0.0)
        total = numel_total[g_of]
        num[:, 9] = np.where(total > 0, numel / np.where(total > 0, total, 1.0), 0.0)
        num[:, 10] = np.log2(1.0 + numel / numel_mean[g_of]) / 4.0
        total = macs_total[g_of]
        num[:, 11] = np.where(total > 0, macs / np.where(total > 0, total, 1.0), 0.0)
        num[:, 12] = np.log2(1.0 + macs / macs_mean[g_of]) / 4.0
    local = np.arange(n) - starts[g_of]
    num[:, 13] = local / np.maximum(sizes - 1, 1)[g_of]
    return out.astype(np.float32)


__all__ = ["cg_arrays", "featurize_graphs"]
