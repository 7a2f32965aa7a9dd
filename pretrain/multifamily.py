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


def family_centred(columns, family_of) -> np.ndarray:
    """``columns`` (``[n]`` or ``[n, k]``) minus their mean within each family of ``family_of`` (``[n]``)."""
    out = np.array(columns, dtype=np.float64)
    family_of = np.asarray(family_of)
    for f in np.unique(family_of):
        out[family_of == f] -= out[family_of == f].mean(axis=0)
    return out


def fit_size_term_across_families(head_score, size, y_t, family_of) -> tuple[float, float, float]:
    """``(a, b, c)`` of ``y_t ~ a * head_score + b * size + c`` with
    ``a >= MIN_HEAD_WEIGHT`` and ``b >= 0``, fitted on columns centred within each family.

    Centring: the slopes say how the heads and size order networks *inside* a
    family; a pooled fit would also learn which family is bigger, which
    within-family targets do not carry. Non-negative: on families where weights
    and MACs move together any split between signals fits, and a negative one
    turns into a wrong sign on the family where they part. The head weight keeps
    a floor so that fine-tuning, which trains the heads towards ``(y - b * size - c) / a``,
    stays well posed. ``c`` puts the mean score on the mean target.

    Shapes:
        - every argument: ``[n]``
    """
    from scipy.optimize import lsq_linear

    from gennape.pretrain.capacity import MIN_HEAD_WEIGHT

    design = family_centred(np.stack([head_score, size], axis=1), family_of)
    a, b = lsq_linear(design, family_centred(y_t, family_of), bounds=([MIN_HEAD_WEIGHT, 0.0], np.inf),
                      method="bvls").x
    c = float(np.mean(y_t) - a * np.mean(head_score) - b * np.mean(size))
    return float(a), float(b), c


def out_of_family_head_scores(est, samples: Sequence["FamilySample"], packs=None) -> np.ndarray:
    """``[sum of len(samples)]``: each family's head scores from heads trained
    (from scratch, on ``est``'s frozen encoder and clusters) on the *other*
    families' within-family quantile targets only.

    These say how the heads rank a family whose labels they never saw, which is
    what the size term's head weight must reflect; in-sample head scores would
    overrate the heads (they were trained on those very labels).
    """
    import copy

    from gennape.pretrain.capacity import NO_CAPACITY
    from gennape.pretrain.estimator import as_pack
    from gennape.pretrain.model import run_model

    packs = packs or [as_pack(s.cgs) for s in samples]
    scores = []
    for g in range(len(samples)):
        rest = [i for i in range(len(samples)) if i != g]
        inner = copy.deepcopy(est)
        inner.capacity_ = NO_CAPACITY  # the heads learn the targets themselves, as in fit
        inner.fit_heads(as_pack([cg for i in rest for cg in samples[i].cgs]),
                        np.concatenate([within_family_quantiles(samples[i].accuracy) for i in rest]),
                        epochs=est.head_epochs, lr=est.head_lr, reset=True, refit_transform=False)
        scores.append(run_model(inner.model_, packs[g]).head_score)
    return np.concatenate(scores)


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


#: How :func:`pretrain_families` fits the size term's ``(a, b, c)`` across families:
#: ``out_of_family`` (:func:`out_of_family_head_scores`), ``in_sample`` (the
#: trained heads' own scores), or ``none`` (the estimator's pooled fit).
SIZE_TERM_FITS = ("out_of_family", "in_sample", "none")


def pretrain_families(samples: Sequence[FamilySample], target: str = "quantile",
                      size_term_fit: str = "out_of_family", **params):
    """A :class:`GennapeEstimator` (``params``: its parameters) fitted on the CGs of
    ``samples`` with :func:`family_targets` ``target``; ``metadata_`` names the families.

    The size term is then refitted across families (``size_term_fit``, one of
    :data:`SIZE_TERM_FITS`) by :func:`fit_size_term_across_families`.
    With ``target="residual"`` the estimator learns what the size prior leaves
    over: score a family by ``size_prior(...) + est.target_transform_.inverse(est.predict_score(...))``.
    """
    from gennape.pretrain.estimator import GennapeEstimator, as_pack
    from gennape.pretrain.model import run_model

    if size_term_fit not in SIZE_TERM_FITS:
        raise ValueError(f"unknown size-term fit {size_term_fit!r}; valid: {', '.join(SIZE_TERM_FITS)}")
    pack, targets, family_of = training_set(samples, target)
    est = GennapeEstimator(**params).fit(pack, targets)
    if size_term_fit != "none" and est.capacity_term:
        packs = [as_pack(s.cgs) for s in samples]
        heads = (out_of_family_head_scores(est, samples, packs) if size_term_fit == "out_of_family"
                 else run_model(est.model_, pack).head_score)
        est.capacity_ = fit_size_term_across_families(heads, est.size_of(pack),
                                                      est.target_transform_.transform(targets), family_of)
    what = f"within-family {target} of accuracy"
    est.metadata_ = {"label": f"{what} ({', '.join(s.name for s in samples)})",  # the scale predict reports
                     "training_data": {"families": {s.name: len(s) for s in samples}, "target": what}}
    return est


__all__ = ["SIZE_TERM_FITS", "TARGETS", "FamilySample", "family_centred", "family_targets",
           "fit_size_term_across_families", "load_family_sample", "out_of_family_head_scores", "pretrain_families",
           "ranks", "size_prior", "training_set", "within_family_quantiles"]
