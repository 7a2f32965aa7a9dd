"""Fuzzy c-means clustering of embeddings (scikit-fuzzy), seeded locally.

``skfuzzy.cluster.cmeans`` draws its initial partition from the global NumPy
random state when given a ``seed`` (it calls ``np.random.seed``), which would
silently reseed everyone else's random numbers. We never pass ``seed``:
the initial membership matrix comes from our own
``np.random.default_rng(seed)`` and goes in as ``init``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FuzzyClusters:
    """The result of :func:`fit_fuzzy_clusters`.

    Attributes:
        centers: ``[K, d]`` cluster centres.
        membership: ``[n, K]`` membership of the fitted points (rows sum to one).
        m: the fuzzifier.
        fpc: fuzzy partition coefficient (1 = crisp, 1/K = uniform).
        iterations: iterations c-means ran.
    """

    centers: np.ndarray
    membership: np.ndarray
    m: float
    fpc: float
    iterations: int


def initial_membership(n: int, k: int, seed: int) -> np.ndarray:
    """A random ``[k, n]`` partition (columns sum to one) from a local generator."""
    u = np.random.default_rng(seed).random((k, n))
    return u / u.sum(axis=0, keepdims=True)


def fit_fuzzy_clusters(x: np.ndarray, k: int, m: float = 2.0, seed: int = 0,
                       error: float = 1e-5, maxiter: int = 300) -> FuzzyClusters:
    """Fuzzy c-means on the rows of ``x``.

    Args:
        x: ``[n, d]`` points (embeddings).
        k: number of clusters (>= 1; 1 gives one centre, the mean).
        m: fuzzifier, > 1.
        seed: seed of the initial partition (the global NumPy state is untouched).
        error: stopping tolerance on the membership change.
        maxiter: iteration limit.
    """
    from skfuzzy.cluster import cmeans

    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) < k:
        raise ValueError(f"need a 2-D array with at least k={k} rows, got shape {x.shape}")
    if m <= 1:
        raise ValueError(f"the fuzzifier m must be > 1, got {m}")
    if k == 1:
        return FuzzyClusters(x.mean(axis=0, keepdims=True), np.ones((len(x), 1)), m, 1.0, 0)
    init = initial_membership(len(x), k, seed)
    centers, u, _, _, _, iterations, fpc = cmeans(x.T, k, m, error=error, maxiter=maxiter, init=init)
    # Order clusters by their first coordinate so the result does not depend
    # on an arbitrary permutation of the labels.
    order = np.lexsort(centers.T[::-1])
    return FuzzyClusters(centers[order], u[order].T, m, float(fpc), int(iterations))


def predict_membership(x: np.ndarray, centers: np.ndarray, m: float) -> np.ndarray:
    """Membership ``[n, K]`` of new points against fixed centres (closed form,
    what ``skfuzzy.cluster.cmeans_predict`` converges to)."""
    import torch

    from gennape.heads.membership import fcm_membership

    return fcm_membership(torch.as_tensor(np.asarray(x, np.float64)), torch.as_tensor(centers), m).numpy()


__all__ = ["FuzzyClusters", "fit_fuzzy_clusters", "initial_membership", "predict_membership"]
