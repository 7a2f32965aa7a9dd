"""``gennape landscape --family F [--checkpoint DIR] [--steps N] [--max-lag K] [--seed S] --out plot.png``

Walks the family's space by single changes (an op or an edge) and draws the
autocorrelation of true accuracy (when the benchmark data is found, see
``GENNAPE_DATA``) and predicted accuracy against the number of steps, and the
mean |delta accuracy| by edit distance (needs the ``plot`` extra). Where the
labelled table is not the whole space (NB-101's 30,001, OFA's 2,223) the walk
stays on it: a step moves to the labelled network nearest the change.

Exit codes: 0 written; 2 bad arguments or no matplotlib.
"""

from __future__ import annotations

import argparse

from gennape.commands._options import add_checkpoint
from gennape.commands.search import FAMILIES

HELP = "random-walk autocorrelation of true and predicted accuracy in a family's space"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = "exit codes: 0 written; 2 usage error or matplotlib missing."
    parser.add_argument("--family", required=True, choices=FAMILIES, help="search space")
    add_checkpoint(parser)
    parser.add_argument("--steps", type=int, default=1000, metavar="N", help="walk length (default 1000)")
    parser.add_argument("--max-lag", type=int, default=15, metavar="K", help="largest lag drawn (default 15)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the walk (default 0)")
    parser.add_argument("--no-truth", action="store_true", help="predicted accuracy only, even when data is found")
    parser.add_argument("--out", required=True, metavar="PLOT.png", help="picture to write (.png, .pdf, .svg)")


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    import numpy as np

    from gennape.cg.errors import GennapeError
    from gennape.transfer.model import load_estimator
    from gennape.transfer.plot import _pyplot
    from gennape.transfer.search import Evaluator, PoolSpace, get_space
    from gennape.transfer.search.landscape import measure, plot_landscape

    if args.steps < 10 or args.max_lag < 1 or args.max_lag >= args.steps:
        raise GennapeError("--steps must be at least 10 and --max-lag between 1 and --steps - 1")
    out = Path(args.out)
    if not out.parent.is_dir():
        raise GennapeError(f"{out}: folder {out.parent} does not exist")
    _pyplot()  # fail before the slow part when matplotlib is missing
    space = get_space(args.family)
    scores = {}
    pool = False
    if not args.no_truth:
        try:
            records = space.family.load_labelled()
        except GennapeError as err:
            print(f"gennape landscape: no true accuracy ({err})", file=sys.stderr)
            records = []
        if records:
            truth: dict[str, list[float]] = {}
            for r in records:
                truth.setdefault(space.key(r.spec), []).append(r.accuracy)
            if len(truth) < int(np.prod(space.decisions, dtype=float)):  # a table, not the whole space
                space, pool = PoolSpace(space, [r.spec for r in records]), True
            scores["true"] = lambda specs: [float(np.mean(truth[space.key(s)])) for s in specs]
    evaluator = Evaluator(space, load_estimator(args.checkpoint))
    scores["predicted"] = lambda specs: [c.accuracy for c in evaluator(specs)]
    land = measure(space, scores, steps=args.steps, max_lag=args.max_lag, seed=args.seed, pool=pool)
    plot_landscape(land, out)
    noise = 2 / np.sqrt(args.steps)
    for name, r in land.autocorrelation.items():
        below = [k for k, v in enumerate(r, 1) if not v > noise]
        where = f"within noise from lag {below[0]}" if below else f"above noise up to lag {args.max_lag}"
        print(f"{name}: autocorrelation lag 1 {r[0]:.3f}, {where}")
    print(f"wrote {out}")
    return 0
