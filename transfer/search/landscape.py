"""The landscape as NAS-Bench-101 studies it: random walks of single changes.

A walk of ``steps`` single changes (:meth:`Space.neighbours`: one op or one
edge flipped, the network changed) visits networks ``x_0, x_1, ...``; the
autocorrelation at lag ``k`` is Pearson's r between ``acc(x_t)`` and
``acc(x_{t+k})``. NAS-Bench-101 found the true accuracy's autocorrelation
indistinguishable from noise beyond about 6 changes. The same walk scored by
the predictor shows whether it keeps the locality local search relies on.
Mean ``|acc(x) - acc(y)|`` over the walk's pairs, grouped by their edit
distance (changes between the genotypes), gives the same from the other side.

With a pool (a labelled table that is not the whole space) a step moves to a
pool member nearest the changed genotype (:class:`PoolSpace`), so a step may
be more than one change; distances are always counted on the genotypes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from gennape.transfer.search.space import Genotype, Space


def random_walk(space: Space, steps: int, seed: int = 0) -> list[Genotype]:
    """``steps + 1`` genotypes, each a random neighbour of the one before."""
    rng = np.random.default_rng(seed)
    walk = [space.sample(rng)]
    while len(walk) <= steps:
        options = space.neighbours(walk[-1])
        walk.append(options[int(rng.integers(len(options)))] if options else space.sample(rng))
    return walk


def autocorrelation(values: Sequence[float], max_lag: int) -> np.ndarray:
    """Pearson r of ``values[t]`` and ``values[t + k]`` for ``k = 1..max_lag`` (nan when undefined)."""
    x = np.asarray(values, dtype=np.float64)
    out = np.full(max_lag, np.nan)
    for k in range(1, max_lag + 1):
        if len(x) - k < 3:
            break
        a, b = x[:-k], x[k:]
        if a.std() > 0 and b.std() > 0:
            out[k - 1] = float(np.corrcoef(a, b)[0, 1])
    return out


def mean_abs_difference(walk: Sequence[Genotype], values: Sequence[float], space: Space,
                        max_lag: int) -> dict[int, float]:
    """Mean ``|values[i] - values[j]|`` over walk pairs at most ``max_lag`` steps
    apart, grouped by the edit distance of their genotypes."""
    sums: dict[int, list[float]] = {}
    for i in range(len(walk)):
        for j in range(i + 1, min(len(walk), i + max_lag + 1)):
            d = space.distance(walk[i], walk[j])
            if d:
                sums.setdefault(d, []).append(abs(values[i] - values[j]))
    return {d: float(np.mean(v)) for d, v in sorted(sums.items())}


@dataclass
class Landscape:
    """Walk statistics of each scored series (``true`` when labels exist, ``predicted``)."""

    family: str
    steps: int
    autocorrelation: dict[str, np.ndarray]
    abs_difference: dict[str, dict[int, float]]
    pool: bool


def measure(space: Space, scores: dict[str, Callable[[list], np.ndarray]], steps: int = 1000, max_lag: int = 15,
            seed: int = 0, pool: bool = False) -> Landscape:
    """Walk ``space`` and score the walk with each of ``scores`` (name -> ``f(specs) -> values``)."""
    walk = random_walk(space, steps, seed)
    specs = [space.decode(g) for g in walk]
    ac, diff = {}, {}
    for name, f in scores.items():
        values = np.asarray(f(specs), dtype=np.float64)
        ac[name] = autocorrelation(values, max_lag)
        diff[name] = mean_abs_difference(walk, values, space, max_lag)
    return Landscape(space.name, steps, ac, diff, pool)


def plot_landscape(land: Landscape, out: str | Path, title: str = "") -> Path:
    """Autocorrelation by lag and mean |delta accuracy| (points) by edit distance, one line per series."""
    from gennape.transfer.plot import _pyplot, save_figure

    plt = _pyplot()
    out = Path(out)
    colours = {"true": "black", "predicted": "tab:red"}
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4.2), dpi=120)
    try:
        noise = 2 / np.sqrt(land.steps)
        for name, r in land.autocorrelation.items():
            a1.plot(np.arange(1, len(r) + 1), r, "-o", ms=3.5, color=colours.get(name), label=f"{name} accuracy")
        a1.axhspan(-noise, noise, color="0.85", label=f"noise (±2/√{land.steps})")
        a1.axhline(0, color="0.4", lw=0.8)
        a1.set_xlabel("steps along the walk" + (" (pool moves)" if land.pool else " (= single changes)"))
        a1.set_ylabel("autocorrelation")
        a1.set_title("random-walk autocorrelation", fontsize=10)
        a1.legend(fontsize=8)
        a1.grid(alpha=0.3)
        for name, d in land.abs_difference.items():
            a2.plot(list(d), [100 * v for v in d.values()], "-o", ms=3.5, color=colours.get(name),
                    label=f"{name} accuracy")
        a2.set_xlabel("edit distance (ops or edges changed)")
        a2.set_ylabel("mean |Δ accuracy| (percentage points)")
        a2.set_title("accuracy change by edit distance", fontsize=10)
        a2.legend(fontsize=8)
        a2.grid(alpha=0.3)
        fig.suptitle(title or f"{land.family}: landscape of a {land.steps}-step random walk", fontsize=11)
        save_figure(fig, out)
    finally:
        plt.close(fig)
    return out


__all__ = ["random_walk", "autocorrelation", "mean_abs_difference", "Landscape", "measure", "plot_landscape"]
