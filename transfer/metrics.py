"""Ranking and error metrics of predicted against true accuracy.

NumPy only (scipy is not imported). Every function takes two 1-D sequences
of the same length ``n >= 2`` (``pred``, ``true``) and returns a float; ``NaN``
inputs raise ``ValueError``. Higher is better for every metric but :func:`mae`.

* :func:`spearman`: Pearson correlation of average ranks (ties share the mean
  of their positions), as ``scipy.stats.spearmanr``.
* :func:`kendall`: Kendall's tau-b, which corrects for ties in either
  sequence, computed with Knight's O(n log n) algorithm (vectorised merge
  passes), as ``scipy.stats.kendalltau``.
* :func:`ndcg_at_k`: normalised discounted cumulative gain of the ``k``
  networks ranked best by ``pred``. The *gain* of a network is the percentile
  of its true accuracy within the evaluated set, ``(r - 1) / (n - 1)`` with
  ``r`` its average rank by true accuracy (1 = worst), so the worst network
  gains 0 and the best 1, whatever the accuracy scale (percent or fraction)
  and however far a few failed networks lie below the rest. Discount
  ``1 / log2(position + 1)``; the ideal ordering is the one by true accuracy.
  A random ordering scores about 0.5, a perfect one 1.0.
* :func:`precision_at_top`: the fraction of the true top ``fraction`` (10 % by
  default, at least one network) that the prediction also puts in its top
  ``fraction``. Ties are broken by position in the input, the same way for
  both sequences. A random ordering scores about ``fraction``.
* :func:`mae`: mean absolute error, in the unit of the inputs.

:func:`all_metrics` returns all of them in one dict (the ``gennape evaluate``
JSON keys).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

ArrayLike = Sequence[float] | np.ndarray


def _pair(pred: ArrayLike, true: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, dtype=np.float64).ravel()
    t = np.asarray(true, dtype=np.float64).ravel()
    if p.shape != t.shape:
        raise ValueError(f"pred and true differ in length ({p.size} vs {t.size})")
    if p.size < 2:
        raise ValueError(f"need at least 2 values, got {p.size}")
    if np.isnan(p).any() or np.isnan(t).any():
        raise ValueError("pred and true must not contain NaN")
    return p, t


def rankdata(x: ArrayLike) -> np.ndarray:
    """Average ranks starting at 1 (ties share the mean of their positions)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    # Start index of each run of equal values in sorted order.
    new_run = np.concatenate(([True], xs[1:] != xs[:-1]))
    starts = np.flatnonzero(new_run)
    ends = np.concatenate((starts[1:], [x.size]))
    avg = (starts + ends + 1) / 2.0  # mean of 1-based positions start+1..end
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    denom = math.sqrt(float(a @ a) * float(b @ b))
    if denom == 0.0:
        return float("nan")  # one sequence is constant: correlation undefined
    return float(np.clip((a @ b) / denom, -1.0, 1.0))


def spearman(pred: ArrayLike, true: ArrayLike) -> float:
    """Spearman's rank correlation (NaN when either sequence is constant)."""
    p, t = _pair(pred, true)
    return _pearson(rankdata(p), rankdata(t))


def _tied_pairs(sorted_values: np.ndarray) -> int:
    """Number of pairs with equal values in an already sorted array."""
    new_run = np.concatenate(([True], sorted_values[1:] != sorted_values[:-1]))
    counts = np.diff(np.concatenate((np.flatnonzero(new_run), [sorted_values.size])))
    return int((counts * (counts - 1) // 2).sum())


def count_inversions(values: np.ndarray) -> int:
    """Pairs ``i < j`` with ``values[i] > values[j]`` (strictly), O(n log^2 n) in NumPy.

    Bottom-up merge sort: at each level every right block counts, for each of
    its elements, the larger elements of its left neighbour with one vectorised
    ``searchsorted`` over all blocks at once (values offset by block id keep
    the blocks apart in one sorted array).
    """
    v = np.unique(np.asarray(values), return_inverse=True)[1].astype(np.int64).ravel()
    n = v.size
    total = 0
    width = 1
    while width < n:
        idx = np.arange(n)
        pair = idx // (2 * width)
        is_left = (idx % (2 * width)) < width
        # Inside each block values are sorted (previous levels); key by pair id.
        keys = pair * n + v
        left_keys = keys[is_left]  # globally sorted: pairs ascending, sorted within
        right_pair = pair[~is_left]
        right_vals = v[~is_left]
        # Elements of the left block of each pair: those with key < (pair+1)*n.
        left_end = np.searchsorted(left_keys, (right_pair + 1) * n, side="left")
        not_greater = np.searchsorted(left_keys, right_pair * n + right_vals, side="right")
        total += int((left_end - not_greater).sum())
        # Merge: sort within each pair block.
        # Blocks stay contiguous after sorting (keys of pair b lie in [b n, (b+1) n)).
        v = np.sort(keys) - pair * n
        width *= 2
    return total


def kendall(pred: ArrayLike, true: ArrayLike) -> float:
    """Kendall's tau-b (NaN when either sequence is constant).

    Knight's algorithm: sort by ``(pred, true)``; then every discordant pair is
    a strict inversion of ``true`` in that order, and
    ``tau_b = (n0 - n1 - n2 + n3 - 2 * swaps) / sqrt((n0 - n1) (n0 - n2))``
    with ``n0`` all pairs, ``n1`` / ``n2`` pairs tied in pred / true and ``n3``
    pairs tied in both.
    """
    p, t = _pair(pred, true)
    n = p.size
    order = np.lexsort((t, p))
    ps, ts = p[order], t[order]
    n0 = n * (n - 1) // 2
    n1 = _tied_pairs(ps)
    both = np.concatenate(([True], (ps[1:] != ps[:-1]) | (ts[1:] != ts[:-1])))
    counts = np.diff(np.concatenate((np.flatnonzero(both), [n])))
    n3 = int((counts * (counts - 1) // 2).sum())
    n2 = _tied_pairs(np.sort(t))
    swaps = count_inversions(ts)
    denom = math.sqrt(float(n0 - n1) * float(n0 - n2))
    if denom == 0.0:
        return float("nan")
    return float(np.clip((n0 - n1 - n2 + n3 - 2 * swaps) / denom, -1.0, 1.0))


def ndcg_at_k(pred: ArrayLike, true: ArrayLike, k: int = 10) -> float:
    """NDCG@k with percentile-of-true-accuracy gains (see the module docstring)."""
    p, t = _pair(pred, true)
    n = p.size
    k = min(k, n)
    gains = (rankdata(t) - 1.0) / (n - 1)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    # Stable descending order: ties keep input order.
    by_pred = np.argsort(-p, kind="stable")[:k]
    ideal = np.sort(gains)[::-1][:k]
    idcg = float(ideal @ discount)
    if idcg == 0.0:
        return float("nan")
    return float(gains[by_pred] @ discount) / idcg


def precision_at_top(pred: ArrayLike, true: ArrayLike, fraction: float = 0.1) -> float:
    """Share of the true top ``fraction`` that the prediction also ranks in its top ``fraction``."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    p, t = _pair(pred, true)
    k = max(1, int(math.ceil(fraction * p.size)))
    top_pred = np.argsort(-p, kind="stable")[:k]
    top_true = np.argsort(-t, kind="stable")[:k]
    return float(np.intersect1d(top_pred, top_true).size / k)


def mae(pred: ArrayLike, true: ArrayLike) -> float:
    """Mean absolute error."""
    p, t = _pair(pred, true)
    return float(np.abs(p - t).mean())


def all_metrics(pred: ArrayLike, true: ArrayLike, rank_by: ArrayLike | None = None) -> dict[str, float]:
    """``spearman``, ``kendall``, ``ndcg10``, ``precision_top10``, ``mae`` and ``n``.

    ``rank_by`` (default ``pred``) is what the rank metrics order by: the
    estimator's unclipped score, so that accuracies clipped to [0, 1] add no ties.
    """
    p, t = _pair(pred, true)
    r = p if rank_by is None else _pair(rank_by, true)[0]
    return {
        "n": int(p.size),
        "spearman": spearman(r, t),
        "kendall": kendall(r, t),
        "ndcg10": ndcg_at_k(r, t, 10),
        "precision_top10": precision_at_top(r, t, 0.1),
        "mae": mae(p, t),
    }


__all__ = [
    "rankdata", "spearman", "kendall", "count_inversions", "ndcg_at_k",
    "precision_at_top", "mae", "all_metrics",
]
