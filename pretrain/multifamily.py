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
(the contrastive stage sees every training CG), then refits its size term
across families on out-of-family head scores (:func:`out_of_family_head_scores`,
:func:`fit_size_term_across_families`). :func:`load_all_label_sets` labels a
family's networks by every label set at once. The whole recipe, data to
checkpoint, is :mod:`gennape.pretrain.run_families`; the NB-101-only
pretraining of :func:`gennape.pretrain.run.pretrain_nb101` is untouched.
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


def fit_size_term_across_families(head_score, size, y_t, family_of, head_shrink: float = 1.0) -> tuple[float, float, float]:
    """``(a, b, c)`` of ``y_t ~ a * head_score + b * size + c`` with
    ``a >= MIN_HEAD_WEIGHT`` and ``b >= 0``, fitted on columns centred within each family.

    ``head_shrink`` (in ``(0, 1]``) multiplies the fitted head-to-size ratio
    ``a / b``; the pair is then rescaled to the targets by least squares (and
    up to the head-weight floor). Even out-of-family head scores overrate the
    heads on a family whose CGs the encoder never saw (the inner folds share
    the outer encoder, pretrained on every training family's CGs), so the
    ratio they give is an upper bound; how much to shrink it is chosen by the
    leave-one-family-out protocol (``benchmarks/lofo.py``).

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
    if not 0.0 < head_shrink <= 1.0:
        raise ValueError(f"head_shrink must be in (0, 1], got {head_shrink}")
    target = family_centred(y_t, family_of)
    a, b = lsq_linear(design, target, bounds=([MIN_HEAD_WEIGHT, 0.0], np.inf), method="bvls").x
    if head_shrink < 1.0:
        direction = design @ np.array([head_shrink * a, b])
        scale = max(float(direction @ target) / max(float(direction @ direction), 1e-300), 0.0)
        a, b = head_shrink * a * scale, b * scale
        if a < MIN_HEAD_WEIGHT:  # the same ranking, with the floor fine-tuning needs
            a, b = MIN_HEAD_WEIGHT, b * MIN_HEAD_WEIGHT / max(a, 1e-300)
    c = float(np.mean(y_t) - a * np.mean(head_score) - b * np.mean(size))
    return float(a), float(b), c


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
    #: The label set, as ``load_labelled`` options (``"task=class_scene"``; empty: the default).
    label_set: str = ""

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def title(self) -> str:
        """``name`` with its label set: ``nb201[dataset=cifar100]``."""
        return f"{self.name}[{self.label_set}]" if self.label_set else self.name


def label_sets(name: str) -> list[dict[str, str]]:
    """Every label set of family ``name``: each combination of its
    ``label_options`` values, as ``load_labelled`` keywords (``[{}]`` when it has one)."""
    import itertools

    from gennape.cg.families import get_family

    options = get_family(name).label_options
    return [dict(zip(options, values)) for values in itertools.product(*options.values())]


def load_all_label_sets(name: str, limit: int | None = None, seed: int = 0) -> "FamilySample":
    """``limit`` networks of family ``name`` labelled by every label set at once
    (:func:`label_sets`): each network's ``accuracy`` is its mean within-family
    quantile over the label sets (NB-201: CIFAR-10, CIFAR-100, ImageNet16-120).

    One CG per network rather than one per label set keeps the training pack as
    small as one label set's, and the mean quantile says how good a network is
    across the datasets it was trained on. Networks missing from some label set
    are left out. The CGs are the first label set's (TNB-101's tasks differ in
    the classifier only; a key's ``@task`` suffix names the task's variant).
    """
    sets = label_sets(name)
    first = load_family_sample(name, limit, seed, **sets[0])
    if len(sets) == 1:
        return first

    def network(key: str) -> str:
        return key.partition("@")[0]

    from gennape.cg.families import get_family

    keep = {network(k) for k in first.keys}
    quantiles = []
    for options in sets:  # labels only: no CG is built beyond the sample's
        recs = get_family(name).load_labelled(**options)
        keep &= {network(r.key) for r in recs}
        quantiles.append(dict(zip((network(r.key) for r in recs),
                                  within_family_quantiles([r.accuracy for r in recs]))))
    rows = [i for i, k in enumerate(first.keys) if network(k) in keep]
    mean_q = np.array([np.mean([q[network(first.keys[i])] for q in quantiles]) for i in rows])
    return FamilySample(name, [first.keys[i] for i in rows], [first.cgs[i] for i in rows], mean_q,
                        first.params[rows], first.macs[rows], "mean quantile of " + " | ".join(
                            ",".join(f"{k}={v}" for k, v in o.items()) for o in sets))


def load_family_sample(name: str, limit: int | None = None, seed: int = 0, exclude=(), **label_options) -> FamilySample:
    """``limit`` networks (all when None) of family ``name``'s labelled file, drawn with ``seed``
    from those whose key is not in ``exclude``, their CGs built through
    :class:`gennape.cg.families.cache.CGCache`."""
    from gennape.cg.families import get_family
    from gennape.cg.families.cache import CGCache

    family = get_family(name)
    exclude = set(exclude)
    recs = [r for r in family.load_labelled(**label_options) if r.key not in exclude]
    if limit is not None and limit < len(recs):
        keep = np.sort(np.random.default_rng(seed).choice(len(recs), limit, replace=False))
        recs = [recs[i] for i in keep]
    cgs = CGCache().get_or_build(family, [(r.key, r.spec) for r in recs], "labelled")
    return FamilySample(name, [r.key for r in recs], cgs, np.array([r.accuracy for r in recs]),
                        np.array([c.params for c in cgs], dtype=np.float64),
                        np.array([c.macs for c in cgs], dtype=np.float64),
                        ",".join(f"{k}={v}" for k, v in label_options.items()))


def out_of_family_head_scores(est, samples: Sequence["FamilySample"], pack=None) -> np.ndarray:
    """``[sum of len(samples)]``: each sample's head scores from heads trained
    (from scratch, on ``est``'s frozen encoder and clusters) on the within-family
    quantile targets of the *other families* only: every label set of a family
    (NB-201's three datasets) is left out together, since they label one space.
    ``pack``: the samples' CGs packed in order (:func:`training_set`'s), if at hand.

    These say how the heads rank a family whose labels they never saw, which is
    what the size term's head weight must reflect; in-sample head scores would
    overrate the heads (they were trained on those very labels).
    """
    import copy

    from gennape.pretrain.capacity import NO_CAPACITY
    from gennape.pretrain.estimator import as_pack
    from gennape.pretrain.model import run_model

    pack = pack if pack is not None else as_pack([cg for s in samples for cg in s.cgs])
    family = np.concatenate([np.full(len(s), s.name, dtype=object) for s in samples])
    targets = np.concatenate([within_family_quantiles(s.accuracy) for s in samples])
    scores = np.empty(len(pack))
    for name in dict.fromkeys(s.name for s in samples):
        held, rest = np.flatnonzero(family == name), np.flatnonzero(family != name)
        inner = copy.deepcopy(est)
        inner.capacity_ = NO_CAPACITY  # the heads learn the targets themselves, as in fit
        inner.fit_heads(pack.subset(rest), targets[rest], epochs=est.head_epochs, lr=est.head_lr, reset=True,
                        refit_transform=False)
        scores[held] = run_model(inner.model_, pack.subset(held)).head_score
    return scores


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
                      size_term_fit: str = "out_of_family", members: int = 1, head_shrink: float = 1.0,
                      unlabelled=None, **params):
    """A :class:`GennapeEstimator` (``params``: its parameters) fitted on the CGs of
    ``samples`` with :func:`family_targets` ``target``; ``metadata_`` names the families.
    With ``members`` > 1, a :class:`gennape.pretrain.ensemble.GennapeEnsemble` of
    that many such estimators, seeded ``seed``, ``seed + 1``, ...
    ``unlabelled``: graphs without labels that join the contrastive stage
    (:meth:`GennapeEstimator.fit`), e.g. the networks to be ranked.

    The size term is then refitted across families (``size_term_fit``, one of
    :data:`SIZE_TERM_FITS`) by :func:`fit_size_term_across_families` with ``head_shrink``.
    With ``target="residual"`` the estimator learns what the size prior leaves
    over: score a family by ``size_prior(...) + est.target_transform_.inverse(est.predict_score(...))``.
    """
    from gennape.pretrain.estimator import GennapeEstimator, as_pack
    from gennape.pretrain.model import run_model

    if size_term_fit not in SIZE_TERM_FITS:
        raise ValueError(f"unknown size-term fit {size_term_fit!r}; valid: {', '.join(SIZE_TERM_FITS)}")
    if members > 1:
        from gennape.pretrain.ensemble import GennapeEnsemble
        from gennape.pretrain.progress import progress

        template = GennapeEstimator(**params)
        ens = GennapeEnsemble(template, members)
        unlabelled = as_pack(unlabelled) if unlabelled is not None else None  # packed once for every member
        ens.members_ = [pretrain_families(samples, target, size_term_fit, head_shrink=head_shrink,
                                          unlabelled=unlabelled, **{**params, "seed": template.seed + i})
                        for i in progress(range(members), desc="pretraining ensemble members", unit="member")]
        ens.metadata_ = dict(ens.members_[0].metadata_)
        return ens
    pack, targets, family_of = training_set(samples, target)
    est = GennapeEstimator(**params).fit(pack, targets, unlabelled=unlabelled)
    if size_term_fit != "none" and est.capacity_term:
        heads = (out_of_family_head_scores(est, samples, pack) if size_term_fit == "out_of_family"
                 else run_model(est.model_, pack).head_score)
        est.capacity_ = fit_size_term_across_families(heads, est.size_of(pack),
                                                      est.target_transform_.transform(targets), family_of,
                                                      head_shrink)
    what = f"within-family {target} of accuracy"
    est.metadata_ = {"label": f"{what} ({', '.join(dict.fromkeys(s.name for s in samples))})",  # predict's scale
                     "training_data": {"families": {s.title: len(s) for s in samples}, "target": what}}
    return est


__all__ = ["SIZE_TERM_FITS", "TARGETS", "FamilySample", "family_centred", "family_targets",
           "fit_size_term_across_families", "label_sets", "load_all_label_sets", "load_family_sample", "out_of_family_head_scores", "pretrain_families",
           "ranks", "size_prior", "training_set", "within_family_quantiles"]
