"""Where networks lie relative to what the predictor knows: a 2-D embedding map.

The background is the checkpoint's stored training embeddings (its OOD
reference set: pretraining networks plus any fine-tuning ones; for an
ensemble, the first member's, whose embedding space the map shows). A PCA
fitted on them projects both them and the given networks to 2-D. Points are
coloured by group (one per PATH argument: a file, a folder or a family
name) or by fuzzy cluster (argmax membership, the training points too);
networks flagged out of distribution (the estimator's OOD score) are ringed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np


@dataclass
class EmbeddingMap:
    """Shapes: reference ``[R, 2]``, points ``[N, 2]``; labels/cluster/ood ``[N]``."""

    reference: np.ndarray
    reference_cluster: np.ndarray
    points: np.ndarray
    labels: list[str]
    cluster: np.ndarray
    ood: np.ndarray
    explained: tuple[float, float]


def _member(estimator):
    return estimator.members_[0] if hasattr(estimator, "members_") else estimator


def pca_2d(reference: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """``(mean, components [2, D], explained variance ratios)`` of ``reference``."""
    mean = reference.mean(axis=0)
    _, s, vt = np.linalg.svd(reference - mean, full_matrices=False)
    var = s ** 2 / max((s ** 2).sum(), 1e-12)
    return mean, vt[:2], (float(var[0]), float(var[1]) if len(var) > 1 else 0.0)


def build_map(estimator, groups: Sequence[tuple[str, list]]) -> EmbeddingMap:
    """Embed each group's CGs and project them over the training embeddings.

    Args:
        estimator: a fitted estimator or ensemble.
        groups: ``(label, cgs)`` pairs.
    """
    import torch

    from gennape.pretrain.estimator import as_pack

    member = _member(estimator)
    model = member.model_  # the fitted GennapeModel: its buffers hold the training embeddings and centres
    ref = model.reference_embeddings.double().cpu().numpy()
    mean, comps, explained = pca_2d(ref)
    cgs = [cg for _, group in groups for cg in group]
    labels = [label for label, group in groups for _ in group]
    pack = as_pack(cgs)
    with torch.inference_mode():
        emb = member.embed(pack)
        ood = np.asarray(estimator.predict_details(pack)["ood"], dtype=bool)

        def cluster(e):
            u = model.membership(torch.as_tensor(e, dtype=torch.float64, device=model.cluster_centers.device))
            return u.argmax(dim=1).cpu().numpy()

        return EmbeddingMap((ref - mean) @ comps.T, cluster(ref), (emb - mean) @ comps.T, labels, cluster(emb),
                            ood, explained)


def plot_map(m: EmbeddingMap, out: str | Path, color: str = "group", title: str = "") -> Path:
    """Draw :class:`EmbeddingMap` ``m`` into ``out``; ``color``: ``group`` or ``cluster``."""
    from gennape.transfer.plot import _pyplot, save_figure

    if color not in ("group", "cluster"):
        raise ValueError(f"unknown colouring {color!r}; valid: group, cluster")
    plt = _pyplot()
    out = Path(out)
    fig, ax = plt.subplots(figsize=(7, 5.6), dpi=120)
    try:
        cmap = plt.get_cmap("tab10")
        if color == "cluster":
            for k in np.unique(np.concatenate([m.reference_cluster, m.cluster])):
                sel = m.reference_cluster == k
                ax.scatter(*m.reference[sel].T, s=5, color=cmap(int(k) % 10), alpha=0.18, linewidths=0)
                sel = m.cluster == k
                if sel.any():
                    ax.scatter(*m.points[sel].T, s=16, color=cmap(int(k) % 10), linewidths=0, zorder=3,
                               label=f"cluster {int(k)} ({int(sel.sum())})")
        else:
            ax.scatter(*m.reference.T, s=5, c="0.75", alpha=0.5, linewidths=0,
                       label=f"training embeddings ({len(m.reference)})")
            for i, label in enumerate(dict.fromkeys(m.labels)):
                sel = np.array([lab == label for lab in m.labels])
                ax.scatter(*m.points[sel].T, s=16, color=cmap(i % 10), linewidths=0, zorder=3,
                           label=f"{label} ({int(sel.sum())})")
        if m.ood.any():
            ax.scatter(*m.points[m.ood].T, s=70, facecolors="none", edgecolors="black", linewidths=0.6, alpha=0.6,
                       zorder=4, label=f"out of distribution ({int(m.ood.sum())})")
        ax.set_xlabel(f"PC 1 ({100 * m.explained[0]:.0f} % of training variance)")
        ax.set_ylabel(f"PC 2 ({100 * m.explained[1]:.0f} %)")
        ax.set_title(title or "embeddings over the checkpoint's training embeddings (PCA)", fontsize=10)
        ax.legend(fontsize=8, loc="best", markerscale=1.5)
        ax.grid(alpha=0.3)
        save_figure(fig, out)
    finally:
        plt.close(fig)
    return out


__all__ = ["EmbeddingMap", "pca_2d", "build_map", "plot_map"]
