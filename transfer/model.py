"""Loading checkpoints and scoring CGs: the one place transfer/ meets the estimator.

:func:`default_checkpoint` is the checkpoint shipped inside the package
(``transfer/checkpoints/default/``, made by ``gennape pretrain`` on the shared
NB-101 data; its ``config.json`` records the command and data hash).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cg.errors import GennapeError

#: The shipped checkpoint's folder.
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "default"


def default_checkpoint() -> Path:
    """The pretrained checkpoint shipped with the package (a folder)."""
    return DEFAULT_CHECKPOINT


def load_estimator(checkpoint: str | Path | None = None):
    """A fitted :class:`pretrain.estimator.GennapeEstimator` from ``checkpoint``
    (default: :func:`default_checkpoint`)."""
    from pretrain.estimator import GennapeEstimator

    path = Path(checkpoint) if checkpoint is not None else default_checkpoint()
    if not path.is_dir():
        hint = "" if checkpoint is not None else " (the package ships no pretrained checkpoint; pass --checkpoint DIR)"
        raise GennapeError(f"{path}: checkpoint folder not found{hint}")
    return GennapeEstimator.load(path)


#: ``ood`` flags a model whose out-of-distribution score exceeds this, unless
#: the checkpoint's config.json sets ``ood_threshold``. The score is the
#: distance to the nearest training embedding over the 95th percentile of that
#: distance inside the training set (see ``GennapeEstimator.ood_score``).
DEFAULT_OOD_THRESHOLD = 2.0


def ood_threshold(estimator) -> float:
    """The flag threshold of ``estimator``'s checkpoint (or the default)."""
    meta = getattr(estimator, "metadata_", {}) or {}
    return float(meta.get("ood_threshold", DEFAULT_OOD_THRESHOLD))


@dataclass(frozen=True)
class Scores:
    """Per-graph outputs of one batch.

    Shapes:
        - accuracy, ood_score, ood: ``[n]``
        - memberships: ``[n, K]``
    """

    accuracy: np.ndarray
    memberships: np.ndarray
    ood_score: np.ndarray
    ood: np.ndarray


def score_cgs(estimator, cgs: list) -> Scores:
    """Predicted accuracy (fraction), memberships and out-of-distribution score
    of ``cgs``, from ONE pass of the encoder (``predict``, ``memberships`` and
    ``ood_score`` would each embed the graphs again)."""
    from pretrain.fuzzy import predict_membership
    from pretrain.heads_training import predict_heads

    emb = estimator.embed(cgs)
    u = predict_membership(emb, estimator.cluster_centers_, estimator.fuzzifier)
    accuracy = estimator.target_transform_.inverse(predict_heads(estimator.heads_, emb, u, estimator.device))
    ood = np.asarray(estimator._ood(emb), dtype=np.float64)
    return Scores(
        accuracy=np.asarray(accuracy, dtype=np.float64),
        memberships=np.asarray(u, dtype=np.float64),
        ood_score=ood,
        ood=ood > ood_threshold(estimator),
    )


__all__ = ["DEFAULT_CHECKPOINT", "default_checkpoint", "load_estimator", "Scores", "score_cgs", "ood_threshold", "DEFAULT_OOD_THRESHOLD"]
