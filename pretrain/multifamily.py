"""Pretraining on several labelled families at once, with targets comparable across them.

Each family has its own accuracy scale (NB-101 CIFAR-10 around 0.9, NB-201
ImageNet16-120 around 0.3, TNB-101 tasks elsewhere again), so raw accuracies
of different families cannot be regressed together. The target of a network
is instead its *within-family quantile*: its mid-rank among the labelled
networks of its own family, divided by their number, in ``(0, 1)``
(:func:`within_family_quantiles`). Every family then spans the same range and
only the order inside a family is learned, which is what a zero-shot ranking
of a new family needs.

:func:`pretrain_families` fits a :class:`GennapeEstimator` on those targets
(the contrastive stage sees every training CG). The NB-101-only pretraining of
:func:`gennape.pretrain.run.pretrain_nb101` is untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


def within_family_quantiles(acc) -> np.ndarray:
    """Mid-rank of each accuracy among ``acc`` divided by ``len(acc)``, ``[n]`` in ``(0, 1)``.

    Ties share their mean rank, so equal accuracies get equal targets.
    """
    acc = np.asarray(acc, dtype=np.float64)
    return ranks(acc) - 0.5 / len(acc)


def ranks(x) -> np.ndarray:
    """Mid-ranks of ``x`` divided by ``len(x)``, ``[n]`` (ties share their mean rank)."""
    from scipy.stats import rankdata

    return rankdata(np.asarray(x, dtype=np.float64)) / len(x)


def size_prior(params, macs) -> np.ndarray:
    """The rank-mean of #params and MACs among the networks scored, ``[n]``: a
    size-only score that needs no label (higher = bigger)."""
    return 0.5 * (ranks(params) + ranks(macs))


def fit_macs_size_term(head_score, log_weights, log_macs, y_t, family_of) -> np.ndarray:
    """``(a, b, d)`` of ``y_t ~ a * head_score + b * log_weights + d * log_macs``
    plus one offset per family, by least squares.

    The columns and targets are centred within each family (``family_of``: the
    family index of each row), so the slopes say how size orders networks
    *inside* a family; a pooled fit would also learn which family is bigger,
    which within-family quantile targets do not carry.

    Shapes:
        - every argument: ``[n]``; returns ``[3]``
    """
    family_of = np.asarray(family_of)
    y_t = np.asarray(y_t, dtype=np.float64)

    def centred(col):
        col = np.asarray(col, dtype=np.float64)
        means = {f: col[family_of == f].mean() for f in np.unique(family_of)}
        return col - np.array([means[f] for f in family_of])

    design = np.stack([centred(head_score), centred(log_weights), centred(log_macs)], axis=1)
    coef, *_ = np.linalg.lstsq(design, centred(y_t), rcond=None)
    return coef


@dataclass
class FamilySample:
    """Labelled networks of one family, as the estimator and the size baselines see them.

    Shapes: every array ``[n]``; ``cgs`` a list of ``n`` :class:`gennape.cg.graph.CG`.
    """

    name: str
    keys: list[str]
    cgs: list
    accuracy: np.ndarray
    params: np.ndarray
    macs: np.ndarray

    def __len__(self) -> int:
        return len(self.keys)


def load_family_sample(name: str, limit: int | None = None, seed: int = 0, **label_options) -> FamilySample:
    """``limit`` networks (all when None) of family ``name``'s labelled file, drawn with ``seed``,
    their CGs built through :class:`gennape.cg.families.cache.CGCache`."""
    from gennape.cg.families import get_family
    from gennape.cg.families.cache import CGCache

    family = get_family(name)
    recs = family.load_labelled(**label_options)
    if limit is not None and limit < len(recs):
        keep = np.sort(np.random.default_rng(seed).choice(len(recs), limit, replace=False))
        recs = [recs[i] for i in keep]
    cgs = CGCache().get_or_build(family, [(r.key, r.spec) for r in recs], "labelled")
    return FamilySample(name, [r.key for r in recs], cgs, np.array([r.accuracy for r in recs]),
                        np.array([c.params for c in cgs], dtype=np.float64),
                        np.array([c.macs for c in cgs], dtype=np.float64))


#: What :func:`training_set` regresses: ``quantile`` (the within-family quantile) or
#: ``residual`` (the quantile minus the :func:`size_prior`: what size does not explain).
TARGETS = ("quantile", "residual")


def family_targets(sample: FamilySample, target: str = "quantile") -> np.ndarray:
    """The targets of one family's networks, ``[n]`` (see :data:`TARGETS`)."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; valid targets: {', '.join(TARGETS)}")
    q = within_family_quantiles(sample.accuracy)
    return q if target == "quantile" else q - size_prior(sample.params, sample.macs)


def training_set(samples: Sequence[FamilySample], target: str = "quantile"):
    """``(pack, targets, family_of)`` of several families: one
    :class:`gennape.pretrain.packed.GraphPack` of all their CGs, the
    target of each (:func:`family_targets`), and the index of its family in ``samples``."""
    from gennape.pretrain.estimator import as_pack

    if not samples:
        raise ValueError("no families to train on")
    cgs = [cg for s in samples for cg in s.cgs]
    targets = np.concatenate([family_targets(s, target) for s in samples])
    family_of = np.concatenate([np.full(len(s), i) for i, s in enumerate(samples)])
    return as_pack(cgs), targets, family_of


def pretrain_families(samples: Sequence[FamilySample], target: str = "quantile", **params):
    """A :class:`GennapeEstimator` (``params``: its parameters) fitted on the CGs of
    ``samples`` with :func:`family_targets` ``target``; ``metadata_`` names the families.

    With ``target="residual"`` the estimator learns what the size prior leaves
    over: score a family by ``size_prior(...) + est.target_transform_.inverse(est.predict_score(...))``.
    """
    from gennape.pretrain.estimator import GennapeEstimator

    pack, targets, _ = training_set(samples, target)
    est = GennapeEstimator(**params).fit(pack, targets)
    what = f"within-family {target} of accuracy"
    est.metadata_ = {"label": f"{what} ({', '.join(s.name for s in samples)})",  # the scale predict reports
                     "training_data": {"families": {s.name: len(s) for s in samples}, "target": what}}
    return est


__all__ = ["TARGETS", "FamilySample", "family_targets", "fit_macs_size_term", "load_family_sample", "pretrain_families", "ranks", "size_prior",
           "training_set", "within_family_quantiles"]
