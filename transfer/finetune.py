"""Fine-tuning a pretrained estimator on a few labelled networks of a new family.

Three modes, chosen by name (:data:`MODES`):

``select`` (the default)
    nothing is trained: the pretrained model stays frozen and a small kernel
    ridge correction on its zero-shot score, the networks' sizes and its
    embeddings is fitted on the labels, the recipe chosen among 48
    candidates (the zero-shot ranking itself among them) by leave-one-out on
    those same labels (:class:`gennape.pretrain.kshot_estimator.KShotEstimator`,
    :mod:`gennape.pretrain.kshot`). Seconds, not minutes, and since
    "keep the zero-shot ranking" is a candidate, it ends below zero-shot only
    where the labels mislead leave-one-out.
``encoder`` / ``heads``
    warm-started training of encoder and heads, or of the heads alone (below).

``select`` was chosen as the default by measurement under the honest protocol
(docs/results.md, "k-shot: select vs fine-tuning"): chosen on NB-201,
OFA-MobileNetV3, TNB-101 micro / macro and NB-101, then NB-301 reported once.

For ``encoder`` and ``heads``, the training itself is the estimator's own warm-started fit,
:meth:`gennape.pretrain.estimator.GennapeEstimator.finetune` (and
:meth:`gennape.pretrain.ensemble.GennapeEnsemble.finetune`, each member on the
same networks); this module reads labels, converts the files, calls it on a
copy and writes the checkpoint.

What ``mode="encoder"`` (the default: encoder and heads end to end) and
``mode="heads"`` (the heads alone) train is described at
:meth:`GennapeEstimator.finetune`; in both the target transform is refitted
on the new labels, so the saved checkpoint predicts on the new family's
accuracy scale, and the new networks' embeddings join the out-of-distribution
reference set (the new family is no longer "unseen").

The default, ``encoder``, was chosen by measurement (``benchmarks/transfer.py``, ``--mode encoder`` and
``--mode heads``, 50 networks, 5 seeds, Spearman on the other networks, a
five-seed sum-readout ensemble): NB-201 0.900 (encoder) vs 0.881 (heads), NB-301 0.654 vs
0.537, OFA-MobileNetV3 0.979 vs 0.972. The cluster centres are never moved:
with 50 networks a re-clustering would be mostly noise. Before training, the
capacity term's size slope and offset are refitted on the labelled networks
(``refit_size_term``, :func:`gennape.pretrain.capacity.refit_size_term`; how much size
buys differs between families) and its head weight kept, where leave-one-out on
the labelled networks says the refit predicts them better (``"auto"``,
:func:`gennape.pretrain.capacity.choose_size_term`); the heads then learn
what it leaves over.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

from gennape.cg.errors import GennapeError
from gennape.pretrain.base import LABEL_KEY, YOUR_LABELS, keyword_defaults
from gennape.pretrain.estimator import FINETUNE_MODES, GennapeEstimator, check_finetune_options
from gennape.pretrain.progress import progress

#: The frozen, leave-one-out-selected correction (:mod:`gennape.pretrain.kshot_estimator`).
SELECT = "select"
#: Every fine-tuning mode: ``select`` and :meth:`GennapeEstimator.finetune`'s.
MODES = (SELECT,) + FINETUNE_MODES
DEFAULT_MODE = SELECT
#: :meth:`GennapeEstimator.finetune`'s defaults, the one place they are set.
_DEFAULTS = keyword_defaults(GennapeEstimator.finetune)
DEFAULT_EPOCHS = _DEFAULTS["epochs"]


@dataclass(frozen=True)
class FinetuneConfig:
    """The keyword arguments of :meth:`GennapeEstimator.finetune`, with its
    defaults; ``seed`` also draws the labelled rows (:func:`finetune_labels`).

    Args:
        mode: one of :data:`MODES` (``select``: nothing trained, the other
            fields but ``seed`` unused).
        epochs: passes over the labelled set.
        lr: heads' learning rate.
        encoder_lr: encoder's learning rate (``mode="encoder"`` only).
        seed: seed of the training order (and the global states stay untouched).
        refit_size_term: ``"auto"`` (refit the size term's slope and offset
            on the labels only where leave-one-out on them says it predicts
            better, :func:`gennape.pretrain.capacity.choose_size_term`),
            ``"refit"`` / ``True`` or ``"keep"`` / ``False``.
    """

    mode: str = DEFAULT_MODE
    epochs: int = _DEFAULTS["epochs"]
    lr: float = _DEFAULTS["lr"]
    encoder_lr: float = _DEFAULTS["encoder_lr"]
    seed: int = _DEFAULTS["seed"]
    refit_size_term: bool | str = _DEFAULTS["refit_size_term"]

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown fine-tuning mode {self.mode!r}; valid modes: {', '.join(MODES)}")
        if self.mode != SELECT:
            check_finetune_options(self.mode, self.epochs)


def choose_samples(n: int, samples: int | None, seed: int) -> np.ndarray:
    """Indices of ``samples`` rows out of ``n`` (all, in order, when None),
    drawn with a local generator seeded by ``seed``."""
    if samples is None or samples >= n:
        return np.arange(n)
    if samples < 2:
        raise GennapeError(f"--samples must be at least 2, got {samples}")
    return np.sort(np.random.default_rng(seed).choice(n, size=samples, replace=False))


def finetune_estimator(estimator, cgs: Sequence, y: Sequence[float], config: FinetuneConfig = FinetuneConfig()):
    """A fine-tuned copy of ``estimator`` (the argument is left unchanged).

    Args:
        estimator: a fitted :class:`gennape.pretrain.estimator.GennapeEstimator`,
            :class:`gennape.pretrain.ensemble.GennapeEnsemble` or
            :class:`gennape.pretrain.kshot_estimator.KShotEstimator` (then its
            pretrained estimator is fine-tuned afresh: the old correction is replaced).
        cgs: the labelled graphs (CGs or a ``GraphPack``).
        y: their accuracies as fractions.
        config: what and how long to train.
    """
    from gennape.pretrain.kshot_estimator import KShotEstimator

    if config.mode == SELECT:
        return KShotEstimator(estimator).fit(cgs, y)
    if isinstance(estimator, KShotEstimator):
        estimator = estimator.base_
    return copy.deepcopy(estimator).finetune(cgs, y, **asdict(config))


@dataclass
class FinetuneReport:
    """What a fine-tune from a labels file used.

    Attributes:
        used: the labelled rows trained on (converted successfully).
        failures: files that could not be converted (skipped).
        self_check: :func:`self_check` on ``used``.
    """

    used: list
    failures: list
    self_check: dict = field(default_factory=dict)


def self_check(estimator, tuned, cgs: Sequence, y, seed: int = 0) -> dict:
    """How the labelled networks themselves rank, before and after: Spearman
    with ``y`` of ``estimator``'s zero-shot score (``zero_shot``), of the CGs'
    parameter counts (``params``) and MACs (``flops``), and, for a ``select``
    correction, of its :func:`gennape.pretrain.kshot.cross_val_predictions`
    (``cross_validated``: each network predicted by a correction chosen
    without it). ``std_error`` is the standard error of a Spearman figure on
    these ``n`` networks (Fisher's approximation, ``(1 - rho^2) * 1.06 / sqrt(n - 3)``
    at the zero-shot figure): on 50 labels it is about 0.1, so differences
    smaller than that say nothing, and the cross-validated figure says how the
    correction ranks networks *like these*. Trained modes have no
    cross-validated figure (they would have to be trained once per fold).
    """
    from gennape.pretrain.kshot import CV_FOLDS, cross_val_predictions
    from gennape.pretrain.kshot_estimator import KShotEstimator
    from gennape.pretrain.metrics import spearman

    y = np.asarray(y, dtype=np.float64)
    zero = spearman(estimator.predict_score(cgs), y)
    out = {"n": int(len(y)), "zero_shot": zero,
           "params": spearman(np.array([c.params for c in cgs], dtype=np.float64), y),
           "flops": spearman(np.array([c.macs for c in cgs], dtype=np.float64), y),
           "std_error": float((1.0 - zero ** 2) * 1.06 / np.sqrt(len(y) - 3)) if len(y) > 3 else float("nan")}
    if isinstance(tuned, KShotEstimator):
        pred = cross_val_predictions(tuned.selector_.train_, tuned.target_transform_.transform(y), seed=seed)
        keep = np.isfinite(pred)
        out.update(cross_validated=spearman(pred[keep], y[keep]) if keep.sum() > 2 else float("nan"),
                   folds=CV_FOLDS)
    # JSON has no NaN: a figure too few networks give is None (checkpoints keep this in config.json)
    return {k: None if isinstance(v, float) and not np.isfinite(v) else v for k, v in out.items()}


def finetune_labels(labels, estimator, config: FinetuneConfig = FinetuneConfig(), *,
                    samples: int | None = None, out=None, input_shape=None, command: str = ""):
    """Fine-tune on ``samples`` rows of a :class:`gennape.transfer.labels.Labels` (all by default).

    Rows are drawn with ``config.seed`` before conversion (so 50 rows out of
    15,625 convert only 50 files); rows whose file fails to convert are
    skipped and reported in ``est.finetune_report_.failures``. With ``out``,
    the checkpoint is saved there (atomically) together with
    ``labels_used.csv``, the rows it was tuned on, ready for
    ``gennape evaluate --exclude``.
    """
    from pathlib import Path

    from gennape.transfer.labels import write_labels
    from gennape.transfer.predict import FailedModel, convert_file

    rows = [labels.rows[i] for i in choose_samples(len(labels), samples, config.seed)]
    cgs, used, failures = [], [], []
    for row in progress(rows, desc="converting labelled networks", unit="file"):
        result = convert_file(row.path, input_shape)
        if isinstance(result, FailedModel):
            failures.append(result)
        else:
            cgs.append(result)
            used.append(row)
    if len(used) < 2:
        causes = "; ".join(f"{f.path}: {f.error}" for f in failures[:3])
        raise GennapeError(f"{labels.source}: only {len(used)} labelled model(s) could be converted ({causes})")
    try:
        est = finetune_estimator(estimator, cgs, [r.accuracy for r in used], config)
    except GennapeError as err:  # too few or equal labels: say which file
        raise GennapeError(f"{labels.source}: {err}") from None
    est.metadata_["finetune"].update({
        "labels": str(labels.source), "labels_scale": labels.scale, "failed": len(failures),
        **({"command": command} if command else {}),
    })
    est.metadata_[LABEL_KEY] = f"{YOUR_LABELS} ({labels.source})"
    check = self_check(estimator, est, cgs, [r.accuracy for r in used], config.seed)
    est.metadata_["finetune"]["self_check"] = check
    est.finetune_report_ = FinetuneReport(used, failures, check)
    if out is not None:
        out = Path(out)
        est.save(out)
        write_labels(out / "labels_used.csv", [r.path for r in used], [r.accuracy for r in used])
    return est


__all__ = ["MODES", "DEFAULT_EPOCHS", "DEFAULT_MODE", "SELECT", "FinetuneConfig", "FinetuneReport", "choose_samples",
           "finetune_estimator", "finetune_labels", "self_check"]
