"""Ranking and error metrics of predicted against true accuracy.

The one metrics module of gennape: pretraining's validation and
``gennape evaluate`` alike (it lives here, in the lowest layer that both
:mod:`gennape.pretrain` and :mod:`gennape.transfer` import).

Every function but :func:`rank_metrics` takes two 1-D sequences of the same
length ``n >= 2`` (``pred``, ``true``), returns a float and raises
``ValueError`` on ``NaN`` inputs. Higher is better for every metric but
:func:`mae`.

* :func:`spearman`: ``scipy.stats.spearmanr`` (Pearson correlation of
  average ranks); NaN when either sequence is constant.
* :func:`kendall`: ``scipy.stats.kendalltau``, tau-b (corrected for ties in
  either sequence); NaN when either sequence is constant.
* :func:`ndcg_at_k`: normalised discounted cumulative gain of the ``k``
  networks ranked best by ``pred``. The *gain* of a network is the percentile
  of its true accuracy within the evaluated set, ``(r - 1) / (n - 1)`` with
  ``r`` its average rank by true accuracy (1 = worst), so the worst network
  gains 0 and the best 1, whatever the accuracy scale (percent or fraction)
  and however far a few failed networks lie below the rest. Discount
  ``1 / log2(position + 1)``; the ideal ordering is the one by true accuracy.
  A random ordering scores about 0.5, a perfect one 1.0. (scikit-learn's
  ``ndcg_score`` takes the raw labels as gains and averages over tied
  predictions, so it is not the same number.)
* :func:`precision_at_top`: the fraction of the true top ``fraction`` (10 % by
  default, at least one network) that the prediction also puts in its top
  ``fraction``. Ties are broken by position in the input, the same way for
  both sequences. A random ordering scores about ``fraction``.
* :func:`mae`: mean absolute error, in the unit of the inputs.

:func:`all_metrics` returns all of them in one dict (the ``gennape evaluate``
JSON keys); :func:`rank_metrics` the two correlations for training-time
checks, NaN (never an error) for fewer than two, constant or NaN inputs.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import stats

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


def _constant(p: np.ndarray, t: np.ndarray) -> bool:
    # A correlation with a constant sequence is undefined; scipy would say so
    # with a ConstantInputWarning, gennape says NaN.
    return bool(np.ptp(p) == 0 or np.ptp(t) == 0)


def spearman(pred: ArrayLike, true: ArrayLike) -> float:
    """Spearman's rank correlation (NaN when either sequence is constant)."""
    p, t = _pair(pred, true)
    return float("nan") if _constant(p, t) else float(stats.spearmanr(p, t).statistic)


def kendall(pred: ArrayLike, true: ArrayLike) -> float:
    """Kendall's tau-b (NaN when either sequence is constant)."""
    p, t = _pair(pred, true)
    return float("nan") if _constant(p, t) else float(stats.kendalltau(p, t, variant="b").statistic)


def ndcg_at_k(pred: ArrayLike, true: ArrayLike, k: int = 10) -> float:
    """NDCG@k with percentile-of-true-accuracy gains (see the module docstring)."""
    p, t = _pair(pred, true)
    n = p.size
    k = min(k, n)
    gains = (stats.rankdata(t) - 1.0) / (n - 1)
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


def rank_metrics(pred: ArrayLike, true: ArrayLike) -> dict[str, float]:
    """Spearman rho and Kendall tau-b of ``pred`` against ``true``, plus ``n``.

    For checks during training: NaN, not an error, when there are fewer than
    two values, either sequence is constant or holds a NaN (a diverged model).
    """
    p = np.asarray(pred, dtype=np.float64).ravel()
    t = np.asarray(true, dtype=np.float64).ravel()
    if p.shape != t.shape:
        raise ValueError(f"pred and true differ in length ({p.size} vs {t.size})")
    if p.size < 2 or np.isnan(p).any() or np.isnan(t).any():
        return {"spearman": float("nan"), "kendall": float("nan"), "n": int(p.size)}
    return {"spearman": spearman(p, t), "kendall": kendall(p, t), "n": int(p.size)}


__all__ = ["spearman", "kendall", "ndcg_at_k", "precision_at_top", "mae", "all_metrics", "rank_metrics"]
