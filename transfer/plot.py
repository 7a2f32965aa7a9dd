"""Predicted against true accuracy as a picture (needs the ``plot`` extra: matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from gennape.cg.atomic import atomic_write
from gennape.cg.errors import GennapeError


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise GennapeError(
            "plotting needs matplotlib: pip install 'gennape[plot]' (or pip install matplotlib)"
        ) from None
    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, out: Path, fmt: str | None = None) -> None:
    """Lay ``fig`` out and write it to ``out`` atomically, in ``fmt`` (default:
    the extension's format, else png)."""
    fig.tight_layout()
    with atomic_write(out, "wb") as f:
        fig.savefig(f, format=fmt or out.suffix.lstrip(".") or "png")


def plot_predictions(pred: Sequence[float], true: Sequence[float], out: str | Path,
                     title: str = "", metrics: dict | None = None) -> Path:
    """Scatter predicted against true accuracy (both in percent) into ``out``.

    Args:
        pred, true: accuracies as fractions, one per network.
        out: image file; the format follows the extension (.png, .pdf, .svg).
        title: first title line (e.g. the labels file); the second line gives
            Spearman and Kendall tau.
        metrics: :func:`gennape.pretrain.metrics.all_metrics` of ``pred``/``true``
            (computed when omitted).

    The image is written to a temporary name and renamed.
    """
    import numpy as np

    from gennape.pretrain.metrics import all_metrics

    out = Path(out)
    if not out.parent.is_dir():
        raise GennapeError(f"{out}: folder {out.parent} does not exist")
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in ("png", "pdf", "svg", "jpg", "jpeg"):
        raise GennapeError(f"{out}: plot file must end in .png, .pdf, .svg or .jpg")
    plt = _pyplot()
    m = metrics or all_metrics(pred, true)
    p, t = 100 * np.asarray(pred, dtype=float), 100 * np.asarray(true, dtype=float)
    fig, ax = plt.subplots(figsize=(5, 5), dpi=120)
    try:
        ax.scatter(t, p, s=6 if len(t) > 500 else 14, alpha=0.5 if len(t) > 500 else 0.8, linewidths=0)
        ax.set_xlabel("true accuracy (%)")
        ax.set_ylabel("predicted accuracy (%)")
        stats = f"Spearman {m['spearman']:.3f}, Kendall tau {m['kendall']:.3f}, n={m['n']}"
        ax.set_title(f"{title}\n{stats}" if title else stats, fontsize=10)
        ax.grid(alpha=0.3)
        save_figure(fig, out, fmt)
    finally:
        plt.close(fig)
    return out


__all__ = ["plot_predictions", "save_figure"]
