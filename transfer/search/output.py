"""What ``gennape search`` writes: candidates.csv, the top networks as ONNX, pareto.png."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Sequence

from gennape.cg.atomic import write_text_atomic
from gennape.transfer.search.search import Candidate

CSV_COLUMNS = ("rank", "arch", "predicted_accuracy", "uncertainty", "score", "params", "macs", "ood", "key")


def _fmt(v: float | None, digits: int = 6) -> str:
    return "" if v is None else f"{v:.{digits}f}"


def candidates_csv(ranked: Sequence[Candidate]) -> str:
    """The ranked candidates as CSV (:data:`CSV_COLUMNS`); ``arch`` is the family's ARCH string."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for rank, c in enumerate(ranked, start=1):
        w.writerow([rank, c.spec.to_arch(), _fmt(c.accuracy), _fmt(c.uncertainty), _fmt(c.score), c.params, c.macs,
                    "" if c.ood is None else int(c.ood), c.key])
    return buf.getvalue()


def write_candidates(path: str | Path, ranked: Sequence[Candidate]) -> Path:
    path = Path(path)
    write_text_atomic(path, candidates_csv(ranked))
    return path


def export_top(family, ranked: Sequence[Candidate], folder: str | Path, k: int) -> list[Path]:
    """The best ``k`` candidates as ``rank01.onnx``, ... (the family's own export)."""
    from gennape.cg.families.export import export_onnx

    folder = Path(folder)
    width = max(2, len(str(k)))
    return [export_onnx(family, c.spec, folder / f"rank{i:0{width}d}.onnx") for i, c in enumerate(ranked[:k], 1)]


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both (fewer MACs, higher
    score), ordered by MACs. ``points``: ``(macs, score)``."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], float("-inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def plot_pareto(ranked: Sequence[Candidate], out: str | Path, *, top: int = 10, reference: Candidate | None = None,
                reference_name: str = "reference", max_macs: float | None = None, title: str = "") -> Path:
    """Predicted accuracy against MACs of every feasible candidate, the Pareto
    front as a line, the top ``top`` ringed, the reference as a star and the
    MACs limit as a dashed line."""
    import numpy as np

    from gennape.transfer.plot import _pyplot, save_figure

    plt = _pyplot()
    out = Path(out)
    acc = np.array([100 * _value(c) for c in ranked])
    macs = np.array([c.macs / 1e6 for c in ranked])
    front = pareto_front(list(zip(macs, acc)))
    fig, ax = plt.subplots(figsize=(6.4, 4.6), dpi=120)
    try:
        ax.scatter(macs, acc, s=8, c="0.6", alpha=0.5, linewidths=0, label=f"candidates ({len(ranked)})")
        ax.plot(macs[front], acc[front], "-o", color="tab:red", ms=3.5, lw=1.2, label="Pareto front")
        k = min(top, len(ranked))
        ax.scatter(macs[:k], acc[:k], s=48, facecolors="none", edgecolors="tab:blue", linewidths=1.2,
                   label=f"top {k} (exported)")
        if reference is not None:
            ax.scatter([reference.macs / 1e6], [100 * _value(reference)], marker="*", s=180, c="gold",
                       edgecolors="black", linewidths=0.8, zorder=5, label=reference_name)
        if max_macs is not None:
            ax.axvline(max_macs / 1e6, color="0.3", ls="--", lw=1, label="MACs limit")
        ax.set_xlabel("MACs (millions)")
        ax.set_ylabel("predicted accuracy (%)" if ranked and ranked[0].accuracy is not None else "predicted score")
        if len(acc):
            lo = np.percentile(acc, 2)  # a few collapsed networks must not squash the rest
            if reference is not None:
                lo = min(lo, 100 * _value(reference))
            ax.set_ylim(lo - 0.05 * (acc.max() - lo + 1e-9), acc.max() + 0.08 * (acc.max() - lo + 1e-9))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        if title:
            ax.set_title(title, fontsize=10)
        save_figure(fig, out)
    finally:
        plt.close(fig)
    return out


def _value(c: Any) -> float:
    return c.accuracy if c.accuracy is not None else c.score


__all__ = ["CSV_COLUMNS", "candidates_csv", "write_candidates", "export_top", "pareto_front", "plot_pareto"]
