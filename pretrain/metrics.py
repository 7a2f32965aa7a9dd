"""Rank-correlation metrics (what the estimator is judged by)."""

from __future__ import annotations

import numpy as np


def rank_metrics(pred, true) -> dict[str, float]:
    """Spearman rho and Kendall tau-b of ``pred`` against ``true``, plus ``n``."""
    from scipy.stats import kendalltau, spearmanr

    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    if len(pred) < 2 or np.ptp(pred) == 0 or np.ptp(true) == 0:
        return {"spearman": float("nan"), "kendall": float("nan"), "n": int(len(pred))}
    return {
        "spearman": float(spearmanr(pred, true).statistic),
        "kendall": float(kendalltau(pred, true).statistic),
        "n": int(len(pred)),
    }


__all__ = ["rank_metrics"]
