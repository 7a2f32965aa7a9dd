"""A leave-one-family-out run as a picture: per family, gennape's honest
(nested) and shipped zero-shot Spearman next to ``#params`` and FLOPs.

Reads the JSON line a ``benchmarks/transfer.py --protocol lofo`` run prints last
(its saved stdout), so a run is drawn without being repeated; needs the
``plot`` extra (matplotlib)::

    python benchmarks/transfer.py --protocol lofo --lofo-seeds 0,1,2 --jobs 2 --threads 1 \\
        --lofo-labels ~/.cache/gennape/zoo/torchvision_eval/labels.csv \\
        --lofo-labels ~/.cache/gennape/zoo/timm_eval/labels.csv > lofo.out
    python benchmarks/lofo_plot.py lofo.out -o docs/lofo.png

A family whose nested figure is below the better size baseline is marked.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # lofo, as the benchmarks import each other

from lofo import column_title  # noqa: E402

#: Bars per family, bottom to top within a group: (JSON key, legend label, colour).
BARS = (("flops", "FLOPs", "#bbbbbb"), ("params", "#params", "#888888"),
        ("shipped_variant", "gennape, shipped", "#9ecae1"), ("zero_shot", "gennape, nested (honest)", "#2171b5"))


def read_run(path: Path) -> dict:
    """``{family: figures}`` from the last line of a LOFO run's stdout that parses as JSON."""
    try:
        lines = path.read_text().splitlines()
    except OSError as err:
        raise SystemExit(f"{path}: cannot read ({err.strerror})") from None
    for line in reversed(lines):
        if line.startswith("{"):
            try:
                run = json.loads(line)
            except json.JSONDecodeError:
                continue
            if run and all(isinstance(r, dict) and "zero_shot" in r for r in run.values()):
                return run
    raise SystemExit(f"{path}: no LOFO result line (the JSON a `benchmarks/transfer.py --protocol lofo` "
                     "run prints last)")


def plot_lofo(run: dict, out: Path) -> Path:
    """Horizontal grouped bars of :data:`BARS` for every family of ``run`` into ``out``."""
    import numpy as np

    from gennape.transfer.plot import _pyplot, save_figure

    plt = _pyplot()
    names = list(run)[::-1]  # the run's first family at the top
    height = 0.8 / len(BARS)
    fig, ax = plt.subplots(figsize=(7.5, 0.75 * len(names) + 1.2), dpi=120)
    for i, (key, label, colour) in enumerate(BARS):
        ys = np.arange(len(names)) + (i - (len(BARS) - 1) / 2) * height
        ax.barh(ys, [run[n][key] for n in names], height, label=label, color=colour)
    for y, n in enumerate(names):
        r = run[n]
        gap = r["zero_shot"] - max(r["params"], r["flops"])
        ax.text(1.005, y, f"{gap:+.3f}", va="center", fontsize=8, color="#b2182b" if gap < 0 else "#1a9850",
                transform=ax.get_yaxis_transform())
    ax.set_yticks(range(len(names)), [column_title(n) for n in names], fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel("zero-shot Spearman on a family no model trained on")
    ax.set_title("Leave one family out (right: nested minus the better of #params and FLOPs)", fontsize=9)
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles[::-1], labels[::-1], loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=len(BARS),
              fontsize=7, frameon=False)
    save_figure(fig, out)
    plt.close(fig)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="saved stdout of a --protocol lofo run")
    parser.add_argument("-o", "--out", type=Path, default=Path("lofo.png"), help="image file (default lofo.png)")
    args = parser.parse_args(argv)
    print(plot_lofo(read_run(args.run), args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
