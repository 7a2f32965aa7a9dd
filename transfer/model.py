"""Loading checkpoints and scoring CGs: the one place transfer/ meets the estimator.

:func:`default_checkpoint` is the checkpoint shipped inside the package
(``transfer/checkpoints/default/``, a nine-seed ensemble made by ``gennape
pretrain --members 9`` on the shared NB-101 data; its ``config.json`` records
the command and data hash).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gennape.cg.errors import GennapeError

#: The shipped checkpoints' folder: one subfolder per checkpoint, named as ``--checkpoint NAME`` takes it.
SHIPPED_CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
#: The shipped checkpoint used when none is named.
DEFAULT_CHECKPOINT = SHIPPED_CHECKPOINTS / "default"


def shipped_checkpoints() -> list[str]:
    """Names of the checkpoints shipped with the package (``default``, ``nb101``, ...)."""
    if not SHIPPED_CHECKPOINTS.is_dir():
        return []
    return sorted(p.name for p in SHIPPED_CHECKPOINTS.iterdir() if (p / "config.json").is_file())


def checkpoint_path(checkpoint: str | Path | None) -> Path:
    """The folder of ``checkpoint``: a folder path, the name of a shipped
    checkpoint (:func:`shipped_checkpoints`) when no such folder exists, or the default."""
    if checkpoint is None:
        return default_checkpoint()
    path = Path(checkpoint)
    if not path.is_dir() and str(checkpoint) in shipped_checkpoints():
        return SHIPPED_CHECKPOINTS / str(checkpoint)
    return path


def default_checkpoint() -> Path:
    """The pretrained checkpoint shipped with the package (a folder)."""
    return DEFAULT_CHECKPOINT


def load_estimator(checkpoint: str | Path | None = None):
    """A fitted :class:`gennape.pretrain.estimator.GennapeEstimator` or
    :class:`gennape.pretrain.ensemble.GennapeEnsemble` from ``checkpoint`` (a
    folder or a shipped checkpoint's name, :func:`checkpoint_path`; default:
    :func:`default_checkpoint`), whichever its ``config.json`` names
    (:data:`gennape.pretrain.base.ESTIMATORS`)."""
    from gennape.pretrain.ensemble import load_fitted

    path = checkpoint_path(checkpoint)
    if not path.is_dir():
        names = shipped_checkpoints()
        hint = (f" (nor a shipped checkpoint's name: {', '.join(names)})" if checkpoint is not None and names
                else "" if checkpoint is not None
                else " (the package ships no pretrained checkpoint; pass --checkpoint DIR)")
        raise GennapeError(f"{path}: checkpoint folder not found{hint}")
    return load_fitted(path)


@dataclass(frozen=True)
class Scores:
    """Per-graph outputs of one batch.

    ``accuracy`` is clipped to ``[0, 1]``; ``score`` is the unclipped
    prediction it comes from (same order), the one to rank by;
    ``accuracy_std`` the predicted uncertainty of ``accuracy`` (an ensemble's
    spread over its members, NaN for one estimator).

    Shapes:
        - accuracy, score, ood_score, ood, accuracy_std: ``[n]``
        - memberships: ``[n, K]``
    """

    accuracy: np.ndarray
    score: np.ndarray
    memberships: np.ndarray
    ood_score: np.ndarray
    ood: np.ndarray
    accuracy_std: np.ndarray


def score_cgs(estimator, cgs: list) -> Scores:
    """Predicted accuracy (fraction), memberships and out-of-distribution score
    and flag of ``cgs``, from one embedding pass
    (:meth:`gennape.pretrain.estimator.GennapeEstimator.predict_details`)."""
    out = estimator.predict_details(cgs)
    return Scores(
        accuracy=np.asarray(out["accuracy"], dtype=np.float64),
        score=np.asarray(out["score"], dtype=np.float64),
        memberships=np.asarray(out["memberships"], dtype=np.float64),
        ood_score=np.asarray(out["ood_score"], dtype=np.float64),
        ood=np.asarray(out["ood"], dtype=bool),
        accuracy_std=np.asarray(out.get("accuracy_std", np.full(len(out["score"]), np.nan)), dtype=np.float64),
    )


def label_of(estimator) -> str:
    """The scale ``estimator``'s accuracies are on (:meth:`gennape.pretrain.base.EstimatorBase.label`)."""
    from gennape.pretrain.base import UNKNOWN_LABEL

    label = getattr(estimator, "label", None)
    return label() if callable(label) else UNKNOWN_LABEL


__all__ = ["DEFAULT_CHECKPOINT", "default_checkpoint", "load_estimator", "Scores", "label_of", "score_cgs"]
