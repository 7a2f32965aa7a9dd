"""``gennape search --family F [--checkpoint DIR] [--strategy S] [--queries N] [--max-flops F] [--max-params P] [--top K] [--seed S] --out DIR``

Searches a family's space for the networks the estimator predicts best,
under FLOPs (MACs) and parameter limits checked on each network's exact CG.
Writes ``DIR/candidates.csv`` (every distinct feasible network met, ranked:
ARCH string, predicted accuracy, ensemble spread, score, params, MACs, OOD
flag), ``DIR/rank01.onnx``... (the top K), ``DIR/pareto.png`` (needs the
``plot`` extra) and ``DIR/search.json`` (settings, reference, profile). Needs
no benchmark data: only the family's space and the checkpoint.

The main workflow: label ~50 networks of your space, ``gennape finetune
--labels LABELS.csv --out mine``, then ``gennape search --checkpoint mine``.

Predictions come from the checkpoint's distilled student when it has one
(``gennape distill``; ~20x faster, ranks as the ensemble does, docs/results.md),
else from the checkpoint itself; ``--predictor`` chooses.

Exit codes: 0 done; 2 bad arguments or no feasible network found.
"""

from __future__ import annotations

import argparse

from gennape.commands._options import add_checkpoint

HELP = "search a family's space for the networks predicted best, under FLOPs/params limits"

#: Families with a search space, listed here so that building the parser imports
#: nothing heavy (``gennape.transfer.search.space.SPACE_NAMES`` holds the same names).
FAMILIES = ("nb101", "nb201", "nb301", "ofa_mbv3", "tnb101_micro", "tnb101_macro")

#: Strategy names, listed here so that building the parser imports nothing heavy
#: (``gennape.transfer.search.strategies.STRATEGIES`` holds the same names).
STRATEGY_NAMES = ("evolution", "reinforce", "local", "random")
#: ``--predictor`` choices (``gennape.transfer.distill.PREDICTORS`` holds the same names).
PREDICTORS = ("auto", "student", "teacher")
#: Top-K rules (``gennape.transfer.search.select.SELECTIONS``), listed for the same reason.
SELECTIONS = ("score", "diverse", "optimistic")
_SUFFIX = {"k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9}


def count(text: str) -> float:
    """``600M``, ``1.5G``, ``250000`` -> a number (argparse type)."""
    t = text.strip()
    scale = _SUFFIX.get(t[-1:], 1.0)
    try:
        value = float(t[:-1] if t[-1:] in _SUFFIX else t) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count (e.g. 250000, 600M, 1.5G)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = "exit codes: 0 done; 2 usage error or no feasible network found."
    parser.add_argument("--family", required=True, choices=FAMILIES, help="search space")
    add_checkpoint(parser, "estimator checkpoint, e.g. one from gennape finetune")
    parser.add_argument("--strategy", choices=STRATEGY_NAMES, default="evolution",
                        help="search strategy (default evolution: regularized evolution)")
    parser.add_argument("--queries", type=int, default=1000, metavar="N",
                        help="networks proposed, each answered by the predictor or its cache (default 1000)")
    parser.add_argument("--max-flops", type=count, default=None, metavar="F",
                        help="limit on multiply-accumulates per sample (MACs, as the CG counts them): 600M, 1.5G")
    parser.add_argument("--max-params", type=count, default=None, metavar="P", help="limit on parameters: 1.2M")
    parser.add_argument("--top", type=int, default=10, metavar="K", help="export the best K as ONNX (default 10)")
    parser.add_argument("--select", choices=SELECTIONS, default="score",
                        help="how the exported K are chosen: best scores (default), diverse (no two within one "
                             "change), optimistic (accuracy + ensemble spread); docs/results.md measures them")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the search (default 0)")
    parser.add_argument("--start", metavar="ARCH", default=None,
                        help="start from this ARCH string, or 'reference' for the family's reference architecture")
    parser.add_argument("--members", type=int, default=None, metavar="M",
                        help="predict with the first M members of an ensemble checkpoint only "
                             "(faster, noisier; default all)")
    parser.add_argument("--predictor", choices=PREDICTORS, default="auto",
                        help="auto (default): the checkpoint's distilled student when it has one "
                             "(gennape distill; ~20x faster), else the checkpoint itself; student; teacher")
    parser.add_argument("--batch-size", type=int, default=32, metavar="B",
                        help="proposals predicted together (default 32)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")


def run(args: argparse.Namespace) -> int:
    import json
    import sys
    from pathlib import Path

    from gennape.cg.atomic import write_text_atomic
    from gennape.cg.errors import GennapeError
    from gennape.pretrain.progress import progress
    from gennape.transfer.distill import choose_predictor, student_problem
    from gennape.transfer.search import Evaluator, get_space, run_search
    from gennape.transfer.search.output import export_top, plot_pareto, write_candidates
    from gennape.transfer.search.select import select_top

    for name in ("queries", "top", "batch_size"):
        if getattr(args, name) < 1:
            raise GennapeError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise GennapeError(f"{out}: exists and is not a folder")
    space = get_space(args.family)
    start = []
    if args.start == "reference":
        if space.reference() is None:
            raise GennapeError(f"family {args.family} has no reference architecture; pass an ARCH string")
        start = [space.reference()]
    elif args.start is not None:
        try:
            start = [space.check(space.family.parse(args.start))]
        except ValueError as err:
            raise GennapeError(f"--start: {err}") from None
    if args.members is not None and args.predictor == "student":
        raise GennapeError("--members chooses ensemble members; it cannot go with --predictor student")
    estimator, predictor = choose_predictor(args.checkpoint, "teacher" if args.members else args.predictor)
    if predictor == "teacher" and args.predictor == "auto" and args.members is None:
        print(f"gennape search: {student_problem(args.checkpoint)}; predicting with the checkpoint itself "
              "(slower)", file=sys.stderr)
    try:
        evaluator = Evaluator(space, estimator, max_macs=args.max_flops, max_params=args.max_params,
                              members=args.members)
    except ValueError as err:
        raise GennapeError(f"--members: {err}") from None
    with progress(total=args.queries, desc=f"gennape search {args.family} {args.strategy}", unit="query") as bar:
        result = run_search(space, evaluator, args.strategy, args.queries, seed=args.seed,
                            batch_size=args.batch_size, start=start, progress=bar)
    if not result.ranked:
        raise GennapeError(f"no network of {args.family} met the limits in {args.queries} queries "
                           f"({result.stats.infeasible} over the limits); raise --max-flops / --max-params")
    out.mkdir(parents=True, exist_ok=True)
    write_candidates(out / "candidates.csv", result.ranked)
    chosen = select_top(result.ranked, args.top, args.select, space)
    exported = export_top(space.family, chosen, out, args.top)

    reference = space.reference()
    ref = None
    if reference is not None:
        ref_eval = Evaluator(space, evaluator.estimator)  # unconstrained: the reference may be over the limits
        ref = ref_eval([reference])[0]
    stats = result.stats
    profile = {"seconds": round(result.seconds, 3), "queries_per_s": round(stats.queries / result.seconds, 1),
               "predicted": stats.predicted, "cache_hits": stats.cache_hits, "infeasible": stats.infeasible,
               "seconds_by_step": {k: round(v, 3) for k, v in stats.seconds.items()}}
    best = result.ranked[0]
    summary = {
        "family": args.family, "strategy": args.strategy, "queries": args.queries, "seed": args.seed,
        "select": args.select, "checkpoint": str(args.checkpoint or "default"), "predictor": predictor,
        "max_macs": args.max_flops, "max_params": args.max_params,
        "distinct_feasible": len(result.ranked), "best": _row(best),
        "reference": None if ref is None else {"name": space.reference_arch[0], **_row(ref)},
        "exported": [{"file": p.name, "arch": c.spec.to_arch()} for p, c in zip(exported, chosen)],
        "profile": profile,
    }
    plot_note = None
    try:
        plot_pareto(result.ranked, out / "pareto.png", top=args.top, reference=ref,
                    reference_name=f"reference: {space.reference_arch[0]}" if ref else "reference",
                    max_macs=args.max_flops,
                    title=f"gennape search {args.family} ({args.strategy}, {args.queries} queries, seed {args.seed})")
    except GennapeError as err:
        plot_note = f"pareto.png skipped: {err}"
    summary["pareto_png"] = plot_note is None
    write_text_atomic(out / "search.json", json.dumps(summary, indent=2) + "\n")

    acc = f"{100 * best.accuracy:.2f} %" if best.accuracy is not None else f"score {best.score:.4f}"
    print(f"best of {len(result.ranked)} distinct feasible networks: {acc} predicted, "
          f"{best.macs / 1e6:.1f} M MACs, {best.params / 1e6:.3f} M params")
    print(f"  {best.spec.to_arch()}")
    if ref is not None:
        print(f"reference ({space.reference_arch[0]}): {100 * ref.accuracy:.2f} % predicted, "
              f"{ref.macs / 1e6:.1f} M MACs")
    print(f"{stats.queries} queries in {result.seconds:.1f} s ({profile['queries_per_s']} /s; "
          f"{stats.predicted} predicted by the {predictor}, {stats.cache_hits} from the cache, "
          f"{stats.infeasible} over the limits)")
    print(f"wrote {out / 'candidates.csv'}, {len(exported)} ONNX file(s), {out / 'search.json'}"
          + ("" if plot_note else f", {out / 'pareto.png'}"))
    if plot_note:
        print(f"gennape search: {plot_note}", file=sys.stderr)
    return 0


def _row(c) -> dict:
    return {"arch": c.spec.to_arch(), "predicted_accuracy": c.accuracy, "uncertainty": c.uncertainty,
            "score": c.score, "params": c.params, "macs": c.macs, "ood": c.ood}
