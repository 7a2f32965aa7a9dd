"""k-shot correction on frozen features, the recipe chosen by leave-one-out on the user's labels.

With k (say 50) labelled networks of a new family, the pretrained model stays
frozen and a small kernel ridge regression is fitted on what it already
computes for each network (:class:`KShotFeatures`): the zero-shot score, the
network's size (log weight count, log MACs) and the GNN embeddings. A
candidate predicts the transformed label as

    y ~ base(x) + f(x)

where ``base`` is a nearly unpenalised linear function of the standardised
zero-shot score and, by candidate, the size columns (:data:`BASES`), and ``f``
a penalised kernel ridge term (by default :data:`DEFAULT_KERNELS`, a linear
kernel on the concatenated embeddings of every ensemble member; :data:`KERNELS`
also has RBF kernels and one on the members' deviations from their mean score)
with a weight and a noise level from :data:`WEIGHTS` × :data:`NOISES`. The bases alone are candidates too, and
``"zero-shot"`` alone (``a * score + c``) *is* the zero-shot ranking.

Every candidate's leave-one-out error on the k labels is closed form (kernel
ridge's ``e_i / (1 - H_ii)``), so all of them (48 by default; 273 with every
kernel) are scored in well under a second; the prediction is the mean of the :data:`TOP` candidates with
the lowest leave-one-out mean squared error. Nothing about the family is
fixed in advance: with labels that the zero-shot score already ranks well
the zero-shot candidate and its close relatives win; with labels the
embeddings explain better, the kernels do. Size columns of a new network
are clipped to the labelled networks' range: a linear size slope fitted on
k networks must not extrapolate (NB-201's disconnected cells have no weights
at all; with none of them among the 50 an unclipped slope ranked them first).

The grid, ``TOP``, the clip and the default kernel were chosen on NB-201,
OFA-MobileNetV3, TNB-101 micro / macro and NB-101 (50-shot Spearman over 5
seeds); docs/results.md records that, the NB-301 figures, and which of them
was measured before any choice looked at NB-301.

Pure NumPy (no torch): :mod:`gennape.pretrain.kshot_estimator` computes the
features and wraps this in an estimator with a checkpoint.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

#: Base columns of each candidate family (``score``: the zero-shot score).
BASES: dict[str, tuple[str, ...]] = {
    "zero-shot": ("score",),
    "zero-shot+size": ("score", "log_weights"),
    "zero-shot+size+macs": ("score", "log_weights", "log_macs"),
}
#: Kernel ridge terms on the frozen embeddings (``members``: the members'
#: deviations from their mean score; needs an ensemble).
KERNELS = ("linear", "rbf1", "rbf2", "members", "linear+rbf2", "linear+members")
#: The kernels :class:`KShotSelector` tries by default. All of :data:`KERNELS`
#: was the first recipe; the linear kernel alone ties it on the development
#: families' mean and never ends below zero-shot on the whole OFA family,
#: where RBF candidates chosen by leave-one-out did (docs/results.md).
DEFAULT_KERNELS = ("linear",)
#: Weight of the kernel term relative to the noise (a GP's signal variance).
WEIGHTS = (0.1, 0.3, 1.0, 3.0, 10.0)
#: Ridge noise levels (the labels are on a standard-normal quantile scale).
NOISES = (0.1, 0.3, 1.0)
#: How many of the best candidates by leave-one-out are averaged.
TOP = 10
#: Prior variance of the base's coefficients: large, so the base is nearly
#: unpenalised least squares (its slope on the zero-shot score is the data's).
BASE_PRIOR = 1e3
#: Fewest labelled networks the selection runs on.
MIN_NETWORKS = 5
#: Noise of a base alone (least squares with a weak prior; its level barely matters).
_BASE_NOISE = 1.0


class KShotFeatures(NamedTuple):
    """What the frozen estimator computes for ``n`` networks.

    Shapes:
        - score: ``[n]`` zero-shot score (the ensemble's mean)
        - member_scores: ``[M, n]`` each member's score (``M = 1`` for one estimator)
        - embedding: ``[n, M * D]`` every member's standardised embedding, side by side
        - log_weights, log_macs: ``[n]`` ``log(1 + weights)``, ``log(1 + MACs)``
    """

    score: np.ndarray
    member_scores: np.ndarray
    embedding: np.ndarray
    log_weights: np.ndarray
    log_macs: np.ndarray

    def subset(self, index) -> "KShotFeatures":
        """The rows ``index``."""
        index = np.asarray(index)
        return KShotFeatures(self.score[index], self.member_scores[:, index], self.embedding[index],
                             self.log_weights[index], self.log_macs[index])

    @property
    def n(self) -> int:
        """How many networks (``len`` is the tuple's, five)."""
        return len(self.score)


class Candidate(NamedTuple):
    """One candidate model: a base, a kernel term (``None``: the base alone), its weight and noise."""

    base: str
    kernel: str | None
    weight: float
    noise: float


def candidates(n_members: int, bases=tuple(BASES), kernels=KERNELS) -> list[Candidate]:
    """Every candidate of the grid over ``bases`` and ``kernels`` (default: all),
    bases alone first (``members`` kernels only for ensembles)."""
    _check_names("base", bases, tuple(BASES))
    _check_names("kernel", kernels, KERNELS)
    kernels = [k for k in kernels if n_members > 1 or "members" not in k]
    out = [Candidate(b, None, 0.0, _BASE_NOISE) for b in bases]
    out += [Candidate(b, k, w, s) for b in bases for k in kernels for w in WEIGHTS for s in NOISES]
    return out


def _check_names(what: str, names, valid) -> None:
    for name in names:
        if name not in valid:
            raise ValueError(f"unknown {what} {name!r}; valid: {', '.join(valid)}")


class _Standardiser:
    """Column statistics of the labelled networks, applied to any rows."""

    def __init__(self, train: KShotFeatures):
        self.train = train
        self.columns = {name: np.asarray(getattr(train, name), dtype=np.float64)
                        for name in ("score", "log_weights", "log_macs")}
        e = np.asarray(train.embedding, dtype=np.float64)
        self.e_mean, self.e_std = e.mean(axis=0), _safe_std(e.std(axis=0))
        m = _deviations(train)
        self.m_mean, self.m_std = m.mean(axis=0), _safe_std(np.array(m.std()))
        self.e_train = (e - self.e_mean) / self.e_std
        self.m_train = (m - self.m_mean) / self.m_std
        sq = _row_sq_dists(e, e)
        upper = sq[np.triu_indices(len(e), 1)]
        self.median_sq = float(np.median(upper)) if upper.size and np.median(upper) > 0 else 1.0

    def base(self, feats: KShotFeatures, base: str) -> np.ndarray:
        """Standardised base columns ``[n, len(BASES[base])]``; size columns clipped to the training range."""
        cols = []
        for name in BASES[base]:
            train = self.columns[name]
            x = np.asarray(getattr(feats, name), dtype=np.float64)
            if name != "score":  # a size slope fitted on k networks must not extrapolate
                x = np.clip(x, train.min(), train.max())
            cols.append((x - train.mean()) / _safe_std(train.std()))
        return np.stack(cols, axis=1)

    def kernels(self, feats: KShotFeatures, names) -> dict[str, np.ndarray]:
        """Kernel blocks ``[n, n_train]`` between ``feats`` and the labelled networks."""
        out: dict[str, np.ndarray] = {}
        need = {part for name in names for part in name.split("+")}
        e = np.asarray(feats.embedding, dtype=np.float64)
        if "linear" in need:
            out["linear"] = _row_products((e - self.e_mean) / self.e_std, self.e_train) / e.shape[1]
        if need & {"rbf1", "rbf2"}:
            sq = _row_sq_dists(e, np.asarray(self.train.embedding, dtype=np.float64))
            out["rbf1"] = np.exp(-sq / self.median_sq)
            out["rbf2"] = np.exp(-sq / (2.0 * self.median_sq))
        if "members" in need:
            m = (_deviations(feats) - self.m_mean) / self.m_std
            out["members"] = _row_products(m, self.m_train) / m.shape[1]
        for name in names:
            if "+" in name:
                parts = name.split("+")
                out[name] = sum(out[p] for p in parts) / len(parts)
        return out

    def gram(self, feats: KShotFeatures, cands, base_blocks=None, kernel_blocks=None):
        """``{candidate: [n, n_train] kernel}`` of each candidate."""
        bases = base_blocks if base_blocks is not None else {
            b: _row_products(self.base(feats, b), self.base(self.train, b)) for b in {c.base for c in cands}}
        kernels = kernel_blocks if kernel_blocks is not None else self.kernels(
            feats, {c.kernel for c in cands if c.kernel is not None})
        return {c: BASE_PRIOR * (1.0 + bases[c.base]) + (c.weight * kernels[c.kernel] if c.kernel else 0.0)
                for c in cands}


class KShotSelector:
    """The mean of the ``top`` candidates with the lowest leave-one-out error.

    Args:
        top: how many of the best candidates are averaged (>= 1).
        bases: which of :data:`BASES` to try (default all; ``"zero-shot"`` must
            stay in for "keep the zero-shot ranking" to be a candidate).
        kernels: which of :data:`KERNELS` to try (default :data:`DEFAULT_KERNELS`;
            ``()``: bases alone).

    Fitted attributes: ``train_`` (the labelled networks' :class:`KShotFeatures`),
    ``chosen_`` (the ``top`` candidates, best first), ``loo_mse_`` (their
    leave-one-out errors), ``dual_`` (``[top, n]`` their kernel ridge
    coefficients) and ``zero_shot_loo_mse_`` (the zero-shot candidate's error,
    for the record).
    """

    def __init__(self, top: int = TOP, bases: tuple[str, ...] = tuple(BASES),
                 kernels: tuple[str, ...] = DEFAULT_KERNELS):
        self.top = top
        self.bases = bases
        self.kernels = kernels

    def fit(self, feats: KShotFeatures, y: np.ndarray) -> "KShotSelector":
        """Score every candidate by leave-one-out on ``y`` (labels on the
        target-transform scale, ``[n]``) and keep the ``top`` best."""
        y = np.asarray(y, dtype=np.float64)
        if len(y) != feats.n:
            raise ValueError(f"{feats.n} networks but {len(y)} labels")
        if len(y) < MIN_NETWORKS:
            raise ValueError(f"the k-shot selection needs at least {MIN_NETWORKS} labelled networks, got {len(y)}")
        if self.top < 1:
            raise ValueError(f"top must be at least 1, got {self.top}")
        if "zero-shot" not in self.bases:
            raise ValueError("bases must include 'zero-shot' (keeping the zero-shot ranking is always a candidate)")
        std = _Standardiser(feats)
        cands = candidates(feats.member_scores.shape[0], self.bases, self.kernels)
        grams = std.gram(feats, cands)
        scored = []
        for i, c in enumerate(cands):
            loo, dual = _loo_kernel_ridge(grams[c], y, c.noise)
            scored.append((float(np.mean(loo ** 2)), i, c, dual))
        scored.sort(key=lambda t: (t[0], t[1]))  # ties: the grid's order (simpler candidates first)
        best = scored[:self.top]
        self.train_ = feats
        self.chosen_ = [c for _, _, c, _ in best]
        self.loo_mse_ = [m for m, _, _, _ in best]
        self.dual_ = np.stack([d for _, _, _, d in best])
        self.zero_shot_loo_mse_ = next(m for m, _, c, _ in scored if c.base == "zero-shot" and c.kernel is None)
        self.n_candidates_ = len(cands)
        self._std = std
        return self

    def predict_candidates(self, feats: KShotFeatures) -> np.ndarray:
        """Each chosen candidate's prediction, ``[top, n]`` (on the labels' scale).

        Computed one network at a time (row-wise products), so a network's
        prediction does not depend on which others are predicted with it."""
        std = self._standardiser()
        grams = std.gram(feats, self.chosen_)
        return np.stack([_row_products(grams[c], d[None, :])[:, 0] for c, d in zip(self.chosen_, self.dual_)])

    def predict(self, feats: KShotFeatures) -> np.ndarray:
        """The mean of the chosen candidates' predictions, ``[n]``."""
        each = self.predict_candidates(feats)
        total = each[0].copy()
        for row in each[1:]:  # added one candidate at a time: the same bits for any batch
            total += row
        return total / len(each)

    def _standardiser(self) -> _Standardiser:
        if not hasattr(self, "train_"):
            raise ValueError("this KShotSelector is not fitted yet; call fit(features, y) first")
        if getattr(self, "_std", None) is None:
            self._std = _Standardiser(self.train_)
        return self._std

    def describe(self) -> list[dict]:
        """The chosen candidates as JSON-ready dicts (with their leave-one-out errors)."""
        return [{**c._asdict(), "loo_mse": m} for c, m in zip(self.chosen_, self.loo_mse_)]


#: Folds of :func:`cross_val_predictions` (at most one network per fold below it).
CV_FOLDS = 10


def cross_val_predictions(feats: KShotFeatures, y: np.ndarray, folds: int = CV_FOLDS, seed: int = 0,
                          **options) -> np.ndarray:
    """Each network's prediction by a :class:`KShotSelector` (``options``) fitted,
    selection included, without its fold, ``[n]``: what the correction would
    say of networks it was not chosen on, from the labelled networks alone.

    ``folds`` seeded random folds of near-equal size (``min(folds, n)``); a fold
    whose complement has fewer than :data:`MIN_NETWORKS` networks gives NaN.

    Shapes:
        - y: ``[n]`` (labels on the target-transform scale)
    """
    y = np.asarray(y, dtype=np.float64)
    n = feats.n
    fold_of = np.random.default_rng(seed).permutation(n) % max(1, min(folds, n))
    out = np.full(n, np.nan)
    for fold in np.unique(fold_of):
        held, rest = np.flatnonzero(fold_of == fold), np.flatnonzero(fold_of != fold)
        if len(rest) >= MIN_NETWORKS:
            out[held] = KShotSelector(**options).fit(feats.subset(rest), y[rest]).predict(feats.subset(held))
    return out


def _loo_kernel_ridge(gram: np.ndarray, y: np.ndarray, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """``(leave-one-out residuals [n], dual coefficients [n])`` of kernel ridge
    regression with kernel ``gram`` ``[n, n]`` and ridge ``noise``: residual ``i``
    is ``(y_i - yhat_i) / (1 - H_ii)`` with ``H = K (K + noise I)^-1``."""
    n = len(y)
    inv = np.linalg.inv(gram + noise * np.eye(n))
    hat = gram @ inv
    dual = inv @ y
    return (y - hat @ y) / (1.0 - np.diag(hat)), dual


def _deviations(feats: KShotFeatures) -> np.ndarray:
    """Each member's score minus the mean score, ``[n, M]``."""
    return np.asarray(feats.member_scores, dtype=np.float64).T - np.asarray(feats.score, dtype=np.float64)[:, None]


def _safe_std(s):
    """Standard deviations with zeros replaced by one (a constant column then standardises to zero)."""
    s = np.asarray(s, dtype=np.float64)
    return np.where(s > 1e-12, s, 1.0)


def _row_products(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b.T`` ``[n, m]`` one row of ``a`` at a time (a matrix product's
    summation order may depend on how many rows it is given)."""
    out = np.empty((len(a), len(b)))
    for i, row in enumerate(a):
        out[i] = b @ row
    return out


def _row_sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances ``[n, m]``, one row of ``a`` at a time."""
    out = np.empty((len(a), len(b)))
    for i, row in enumerate(a):
        out[i] = np.sum((b - row) ** 2, axis=1)
    return out


__all__ = ["BASES", "BASE_PRIOR", "CV_FOLDS", "Candidate", "DEFAULT_KERNELS", "KERNELS", "KShotFeatures", "KShotSelector",
           "MIN_NETWORKS", "NOISES", "TOP", "WEIGHTS", "candidates", "cross_val_predictions"]
