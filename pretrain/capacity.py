"""The capacity term: the heads' score plus a linear term in the network's size.

The node features are scale-free on purpose (:mod:`gennape.encoder.features`), so the
GNN cannot see how big a network is, yet within a family size matters: on
NB-201 ``#params`` alone ranks at Spearman 0.80. The final score is therefore

    score = a * heads(embedding) + b * log(1 + total weight count) + c

with ``(a, b, c)`` fitted by least squares on the training graphs (NB-101),
after the heads. The size enters *linearly*: a family whose networks are all
smaller or larger than NB-101's shifts every score by the same amount, which
changes no rank within the family; only the spread of sizes inside it counts.
The weight count is the sum of ``weight_numel``, which batch-norm folding
does not change.

Fine-tuning refits ``(b, c)`` on the new family's labelled networks, keeping
``a`` (:func:`refit_size_term`): how much size buys differs between families,
and the heads cannot learn it (they never see size). By default (``"auto"``)
it does so only where leave-one-out on those networks says the refitted slope
predicts them better than the pretrained one (:func:`choose_size_term`). It
then trains the heads towards what the size term leaves over (:func:`head_target`). Measured with
the shipped nine-seed ensemble (``python benchmarks/transfer.py``, with and
without ``--keep-size-term``; 50 networks, 5 seeds, Spearman on the others):
NB-201 0.901 -> 0.915, NB-301 0.739 -> 0.771.

Measured with one sum-readout estimator (``gennape pretrain --limit 8000
--epochs 3 --seed 0``, ``python benchmarks/transfer.py``), without -> with the term:
zero-shot Spearman NB-201 0.736 -> 0.799, NB-301 0.498 -> 0.503, OFA-MBv3
0.951 -> 0.973, NB-101 test 0.763 -> 0.776; 50-sample fine-tuned NB-201
0.857 -> 0.883, NB-301 0.663 -> 0.675.
"""

from __future__ import annotations

import numpy as np

#: ``(a, b, c)`` of an estimator without the term.
NO_CAPACITY = (1.0, 0.0, 0.0)
#: A fit whose head weight ``a`` falls below this is refused (the heads would
#: carry no signal and :func:`head_target` would divide by almost zero).
MIN_HEAD_WEIGHT = 0.1


def fit_capacity(score: np.ndarray, log_weights: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least-squares ``(a, b, c)`` of ``y ~ a * score + b * log_weights + c``.

    Shapes:
        - score, log_weights, y: ``[n]`` (y on the target-transform scale)
    """
    design = np.stack([score, log_weights, np.ones_like(score)], axis=1)
    coef, *_ = np.linalg.lstsq(design, np.asarray(y, dtype=np.float64), rcond=None)
    if not np.all(np.isfinite(coef)) or coef[0] < MIN_HEAD_WEIGHT:
        return NO_CAPACITY
    return tuple(float(v) for v in coef)


#: Fewest labelled networks :func:`refit_size_term` estimates a slope from.
MIN_REFIT_NETWORKS = 10


def refit_size_term(score: np.ndarray, log_weights: np.ndarray, y: np.ndarray, coef) -> tuple[float, float, float]:
    """``(a, b', c')``: ``a`` kept, ``(b', c')`` least squares of
    ``y - a * score ~ b' * log_weights + c'`` on a new family's labelled networks.

    ``coef`` comes back unchanged when there is no size term
    (:data:`NO_CAPACITY`), fewer than :data:`MIN_REFIT_NETWORKS` networks, or
    networks all of one size (no slope to estimate).

    Shapes:
        - score, log_weights, y: ``[n]`` (y on the target-transform scale)
    """
    log_weights = np.asarray(log_weights, dtype=np.float64)
    if tuple(coef) == NO_CAPACITY or len(log_weights) < MIN_REFIT_NETWORKS or np.ptp(log_weights) == 0:
        return tuple(coef)
    a = coef[0]
    design = np.stack([log_weights, np.ones_like(log_weights)], axis=1)
    residual = np.asarray(y, dtype=np.float64) - a * np.asarray(score, dtype=np.float64)
    (b, c), *_ = np.linalg.lstsq(design, residual, rcond=None)
    if not (np.isfinite(b) and np.isfinite(c)):
        return tuple(coef)
    return (float(a), float(b), float(c))


#: ``refit_size_term`` of :meth:`GennapeEstimator.finetune`: ``auto`` chooses
#: by :func:`choose_size_term`; ``True`` / ``False`` are ``refit`` / ``keep``.
SIZE_TERM_CHOICES = ("auto", "refit", "keep")


def size_term_choice(value) -> str:
    """One of :data:`SIZE_TERM_CHOICES` from a choice or a bool (``True``: refit)."""
    if isinstance(value, bool):
        return "refit" if value else "keep"
    if value not in SIZE_TERM_CHOICES:
        raise ValueError(f"unknown size-term choice {value!r}; valid: {', '.join(SIZE_TERM_CHOICES)} (or a bool)")
    return value


def choose_size_term(score: np.ndarray, log_weights: np.ndarray, y: np.ndarray, coef) -> tuple[str, dict]:
    """``("refit" | "keep", errors)``: whether refitting the size slope on a new
    family's labelled networks predicts held-out ones better than keeping it,
    by leave-one-out on those networks.

    Both candidates refit the offset (it moves no rank, but would otherwise
    dominate the error); ``keep`` holds the pretrained slope ``b``, ``refit``
    fits it too (:func:`refit_size_term`). Their leave-one-out mean squared
    errors of ``y`` are closed forms (the mean's, and least squares' PRESS
    ``e_i / (1 - h_ii)``); ``refit`` is chosen only when strictly lower, and
    never where :func:`refit_size_term` would not refit.

    Shapes:
        - score, log_weights, y: ``[n]`` (y on the target-transform scale)
    """
    log_weights = np.asarray(log_weights, dtype=np.float64)
    if refit_size_term(score, log_weights, y, coef) == tuple(coef):
        return "keep", {}
    a, b, _ = coef
    residual = np.asarray(y, dtype=np.float64) - a * np.asarray(score, dtype=np.float64)
    n = len(residual)
    keep = (residual - b * log_weights) - np.mean(residual - b * log_weights)
    keep_mse = float(np.mean((keep * n / (n - 1)) ** 2))
    design = np.stack([log_weights, np.ones_like(log_weights)], axis=1)
    fit, *_ = np.linalg.lstsq(design, residual, rcond=None)
    leverage = np.einsum("ij,jk,ik->i", design, np.linalg.pinv(design.T @ design), design)
    refit_mse = float(np.mean(((residual - design @ fit) / (1.0 - leverage)) ** 2))
    errors = {"keep_loo_mse": keep_mse, "refit_loo_mse": refit_mse}
    return ("refit" if refit_mse < keep_mse else "keep"), errors


def apply_capacity(score: np.ndarray, log_weights: np.ndarray, coef) -> np.ndarray:
    """The final score ``a * score + b * log_weights + c``, ``[n]``."""
    a, b, c = coef
    return a * np.asarray(score, dtype=np.float64) + b * np.asarray(log_weights, dtype=np.float64) + c


def head_target(y: np.ndarray, log_weights: np.ndarray, coef) -> np.ndarray:
    """What the heads must output for the final score to equal ``y``, ``[n]``."""
    a, b, c = coef
    return (np.asarray(y, dtype=np.float64) - b * np.asarray(log_weights, dtype=np.float64) - c) / a


__all__ = ["MIN_HEAD_WEIGHT", "MIN_REFIT_NETWORKS", "NO_CAPACITY", "SIZE_TERM_CHOICES", "apply_capacity", "choose_size_term",
           "fit_capacity", "head_target", "refit_size_term", "size_term_choice"]
