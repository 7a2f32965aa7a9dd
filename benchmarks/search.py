"""Predictor-guided search measured against the tables (the truth is known).

For each family (NB-201: the whole space of 15,625 cells; NB-101: the 30,001
labelled networks as the candidate pool; OFA-MobileNetV3: the 2,223 labelled
subnets as the pool; TNB-101 micro: its whole space of 4,096 cells; TNB-101
macro: its 662 labelled skeletons as the pool; ``--labels`` picks the label
set, e.g. ``dataset=cifar100`` or ``task=class_scene``; dead cells are never
candidates) and each strategy, ``--queries`` networks are proposed
and scored by the predictor, then the true accuracy of the predicted top 10
is looked up: per seed the best true accuracy found, its percentile in the
space (pool) and its MACs; the table gives the median (and min-max) over
``--seeds`` seeds and how many seeds' top 10 hold a network of the true top 1 %.

Baselines at the same 10 true evaluations: random search (10 networks drawn,
best true accuracy), FLOPs-ranked search (``--queries`` random networks, the
10 with most MACs under the limits) and the oracle (the space's best).

``--finetune 50`` repeats the searches with the checkpoint fine-tuned on 50
searchable networks drawn with each seed (what ``gennape finetune`` does,
through :func:`gennape.transfer.finetune.finetune_estimator`; the 50 are not
excluded from the search); ``--select`` measures rules choosing the top 10
(:mod:`gennape.transfer.search.select`) on the same runs, ``--labelled-start``
adds evolution started from the 50.

The reference table starts regularized evolution from each family's reference
architecture (:mod:`gennape.transfer.search.space`; for a pool family the pool
member nearest to it) with its MACs as the limit, and reports what it found.

    OMP_NUM_THREADS=1 nice python benchmarks/search.py --families nb201 --finetune 50 --finetune-mode heads
    python benchmarks/search.py --families nb201,nb101,ofa_mbv3 --seeds 3
    python benchmarks/search.py --families tnb101_micro,tnb101_macro --queries 300 --finetune 50 --finetune-mode heads

Markdown tables go to stdout; the last line is JSON. Also reports the
predictor's measured queries/s and where the time goes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

STRATEGY_NAMES = ("evolution", "reinforce", "local", "random")
TITLES = {"nb201": "NB-201 (whole space, 15,625)", "nb101": "NB-101 (pool: 30,001 labelled)",
          "ofa_mbv3": "OFA-MobileNetV3 ImageNet (pool: 2,223 labelled)",
          "tnb101_micro": "TNB-101 micro (whole space, 4,096)", "tnb101_macro": "TNB-101 macro (pool: 662 labelled)"}


class Truth:
    """A family's labelled table as a search space with known answers."""

    def __init__(self, family: str, limit: int | None = None, labels: dict | None = None):
        from gennape.transfer.search import PoolSpace, get_space

        base = get_space(family)
        records = base.family.load_labelled(**(labels or {}))
        acc: dict[str, list[float]] = {}
        specs = {}
        for r in records:
            k = base.key(r.spec)
            acc.setdefault(k, []).append(r.accuracy)
            specs.setdefault(k, r.spec)
        if limit is not None and limit < len(specs):
            keep = sorted(np.random.default_rng(0).choice(len(specs), size=limit, replace=False))
            keys = list(specs)
            specs = {keys[i]: specs[keys[i]] for i in keep}
        self.accuracy = {k: float(np.mean(acc[k])) for k in specs}  # duplicate OFA rows: their mean
        whole = family == "nb201" and limit is None  # NB-201's table is its whole space
        self.space = base if whole else PoolSpace(base, list(specs.values()))
        self.family = family
        t = time.perf_counter()
        self.macs = {k: base.family.to_cg(s).macs for k, s in specs.items()}
        self.cg_seconds = time.perf_counter() - t
        self.sorted_acc = np.sort(np.array(list(self.accuracy.values())))
        self.top1 = float(np.quantile(self.sorted_acc, 0.99))
        self.specs = specs
        # What a search may propose (dead cells are not): the pool networks a user could label.
        self.searchable = [k for k, sp in specs.items() if base.live(sp) is not None]

    def percentile(self, a: float) -> float:
        """Share (%) of the space with true accuracy at most ``a``."""
        return 100.0 * np.searchsorted(self.sorted_acc, a, side="right") / len(self.sorted_acc)

    def outcome(self, keys: list[str]) -> dict:
        """Best true accuracy among ``keys`` (the networks looked up), its percentile and MACs."""
        best = max(keys, key=lambda k: self.accuracy[k])
        return {"best": self.accuracy[best], "percentile": self.percentile(self.accuracy[best]),
                "macs": self.macs[best], "top1": any(self.accuracy[k] >= self.top1 for k in keys), "key": best}


def summarise(rows: list[dict]) -> dict:
    b = np.array([r["best"] for r in rows])
    return {"median": float(np.median(b)), "min": float(b.min()), "max": float(b.max()),
            "percentile": float(np.median([r["percentile"] for r in rows])),
            "macs": float(np.median([r["macs"] for r in rows])), "top1_seeds": int(sum(r["top1"] for r in rows)),
            "seeds": len(rows)}


def run_strategies(truth: Truth, evaluator, queries: int, seeds: int, strategies, log) -> dict:
    from gennape.transfer.search import run_search

    out = {}
    for strategy in strategies:
        rows = []
        for seed in range(seeds):
            before = evaluator.stats.predicted
            r = run_search(truth.space, evaluator, strategy, queries, seed=seed)
            rows.append(truth.outcome([c.key for c in r.ranked[:10]]))
            log(f"  {strategy} seed {seed}: best {100 * rows[-1]['best']:.2f} % "
                f"({evaluator.stats.predicted - before} new predictions, {r.seconds:.1f} s)")
        out[strategy] = summarise(rows)
    return out


def baselines(truth: Truth, queries: int, seeds: int, max_macs) -> dict:
    keys = [k for k in truth.accuracy if max_macs is None or truth.macs[k] <= max_macs]
    out = {"random_10": [], "flops_ranked": []}
    for seed in range(seeds):
        rng = np.random.default_rng(1000 + seed)
        out["random_10"].append(truth.outcome([keys[i] for i in rng.choice(len(keys), 10, replace=False)]))
        drawn = [keys[i] for i in rng.choice(len(keys), min(queries, len(keys)), replace=False)]
        out["flops_ranked"].append(truth.outcome(sorted(drawn, key=lambda k: -truth.macs[k])[:10]))
    res = {name: summarise(rows) for name, rows in out.items()}
    res["oracle"] = summarise([truth.outcome(keys)])
    return res


def reference_row(truth: Truth, evaluator_factory, queries: int, seeds: int) -> dict:
    """Evolution started from the reference, under the reference's MACs."""
    from gennape.transfer.search import run_search

    space = truth.space
    ref = space.base.reference() if hasattr(space, "base") else space.reference()
    key = space.key(ref)
    note = space.reference_arch[0]
    if key not in truth.accuracy:  # a pool family: the nearest pool member stands in
        g = space.nearest(space.base.encode(ref), 1)[0]
        ref, key = space.decode(g), space.key(space.decode(g))
        note += " (nearest pool member)"
    limit = truth.macs[key]
    ev = evaluator_factory(limit)
    rows = []
    for seed in range(seeds):
        r = run_search(space, ev, "evolution", queries, seed=seed, start=[ref])
        rows.append(truth.outcome([c.key for c in r.ranked[:10]]))
    return {"reference": note, "arch": ref.to_arch(), "ref_acc": truth.accuracy[key], "ref_macs": limit,
            "ref_percentile": truth.percentile(truth.accuracy[key]), **summarise(rows)}


def profile_predictor(truth: Truth, ev) -> dict:
    """Queries/s of 10,000 random proposals through a fresh evaluator ``ev``
    (repeats from its cache) and distinct networks/s, by step."""
    from gennape.transfer.search import run_search

    cpu = time.process_time()
    r = run_search(truth.space, ev, "random", 10_000, seed=123, batch_size=256)
    cpu = time.process_time() - cpu
    st = r.stats
    return {"queries": st.queries, "seconds": round(r.seconds, 2), "cpu_seconds": round(cpu, 2),
            "queries_per_s": round(st.queries / r.seconds, 1), "queries_per_cpu_s": round(st.queries / cpu, 1),
            "predicted": st.predicted, "cache_hits": st.cache_hits,
            "distinct_per_s": round(st.predicted / sum(st.seconds.values()), 1),
            "seconds_by_step": {k: round(v, 2) for k, v in st.seconds.items()}}


def fmt_row(name: str, s: dict, space_best: float | None = None) -> str:
    return (f"| {name} | {100 * s['median']:.2f} ({100 * s['min']:.2f}-{100 * s['max']:.2f}) | "
            f"{s['percentile']:.2f} | {s['macs'] / 1e6:.1f} | {s['top1_seeds']}/{s['seeds']} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default="nb201")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--max-flops", type=float, default=None, help="MACs limit (default none)")
    parser.add_argument("--finetune", type=int, default=0, metavar="N", help="also fine-tune on N networks per seed")
    parser.add_argument("--finetune-seeds", type=int, default=None, help="seeds of the fine-tuned runs (default --seeds)")
    parser.add_argument("--finetune-mode", choices=("encoder", "heads"), default="encoder",
                        help="what fine-tuning trains (gennape finetune --mode; default encoder)")
    parser.add_argument("--limit", type=int, default=None, help="subsample each pool (quick runs)")
    parser.add_argument("--labels", default="", metavar="KEY=VALUE[,...]",
                        help="label set of load_labelled, e.g. dataset=cifar100 (NB-201), task=class_scene (TNB-101)")
    parser.add_argument("--strategies", default=",".join(STRATEGY_NAMES), help="comma-separated (default all)")
    parser.add_argument("--select", default="score", metavar="RULE[,...]",
                        help="fine-tuned runs: how the top 10 is chosen, rules of "
                             "gennape.transfer.search.select (default score; several: each measured)")
    parser.add_argument("--labelled-start", action="store_true",
                        help="fine-tuned runs: also evolution starting from the labelled networks")
    parser.add_argument("--finetune-only", action="store_true", help="only the fine-tuned runs")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--profile-only", action="store_true", help="only the predictor's speed")
    args = parser.parse_args(argv)
    args.strategies = [x for x in args.strategies.split(",") if x]
    args.select = [x for x in args.select.split(",") if x]
    labels = dict(kv.split("=", 1) for kv in args.labels.split(",") if kv)
    bad = [x for x in args.strategies if x not in STRATEGY_NAMES]
    if bad:
        parser.error(f"unknown strategies {bad}; valid: {', '.join(STRATEGY_NAMES)}")

    import torch

    torch.set_num_threads(1)
    from gennape.transfer.model import load_estimator
    from gennape.transfer.search import Evaluator

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    est = load_estimator(args.checkpoint)
    results = {}
    for family in args.families.split(","):
        t0 = time.perf_counter()
        truth = Truth(family, args.limit, labels)
        log(f"{family}: {len(truth.accuracy)} networks, top 1 % >= {100 * truth.top1:.2f} % "
            f"(CGs in {truth.cg_seconds:.1f} s)")
        res = {"n": len(truth.accuracy), "top1_threshold": truth.top1, "labels": labels}
        ev = Evaluator(truth.space, est, max_macs=args.max_flops)
        if not args.no_profile:  # also fills ev's cache for the searches
            res["profile"] = profile_predictor(truth, ev)
            log(f"  profile: {res['profile']}")
        if args.profile_only and not args.no_profile:
            res["profile_1_member"] = profile_predictor(truth, Evaluator(truth.space, est, members=1))
            log(f"  profile, first member only: {res['profile_1_member']}")
        if args.profile_only:
            results[family] = res
            continue
        if args.finetune_only:
            res["finetuned"] = finetuned_runs(truth, est, args, log)
            log(f"  fine-tuned: {json.dumps(res['finetuned'])}")
            results[family] = res
            print_tables(family, res, args)
            continue
        res["zero_shot"] = run_strategies(truth, ev, args.queries, args.seeds, args.strategies, log)
        log(f"  zero-shot: {json.dumps(res['zero_shot'])}")
        res["baselines"] = baselines(truth, args.queries, args.seeds, args.max_flops)
        log(f"  baselines: {json.dumps(res['baselines'], default=float)}")
        res["reference"] = reference_row(truth, lambda m: Evaluator(truth.space, est, max_macs=m), args.queries,
                                         args.seeds)
        log(f"  reference: {res['reference']}")
        if args.finetune:
            res["finetuned"] = finetuned_runs(truth, est, args, log)
            log(f"  fine-tuned: {json.dumps(res['finetuned'])}")
        res["seconds"] = round(time.perf_counter() - t0, 1)
        results[family] = res
        print_tables(family, res, args)
    print(json.dumps({"queries": args.queries, "seeds": args.seeds, "max_macs": args.max_flops, "labels": labels,
                      "results": results}, default=float))
    return 0


def finetuned_runs(truth: Truth, est, args, log) -> dict:
    """Per seed: fine-tune on ``args.finetune`` searchable networks drawn with
    that seed, then search; each run's top 10 is chosen by every rule of
    ``--select`` (the same run, so rules differ only in the choice). With
    ``--labelled-start``, also regularized evolution whose first population is
    the labelled networks (``evolution+labelled``)."""
    from gennape.transfer.finetune import FinetuneConfig, choose_samples, finetune_estimator
    from gennape.transfer.search import Evaluator, run_search
    from gennape.transfer.search.select import select_top

    keys = truth.searchable
    strategies = list(args.strategies) + (["evolution+labelled"] if args.labelled_start else [])
    rows: dict[str, list] = {f"{s}/{rule}": [] for s in strategies for rule in args.select}
    seconds = []
    for seed in range(args.finetune_seeds or args.seeds):
        t = time.perf_counter()
        used = [keys[i] for i in choose_samples(len(keys), args.finetune, seed)]
        cgs = [truth.space.family.to_cg(truth.specs[k]) for k in used]
        tuned = finetune_estimator(est, cgs, [truth.accuracy[k] for k in used],
                                   FinetuneConfig(mode=args.finetune_mode, seed=seed))
        ft = time.perf_counter() - t
        ev = Evaluator(truth.space, tuned, max_macs=args.max_flops)
        for strategy in strategies:
            base, _, extra = strategy.partition("+")
            start = [truth.specs[k] for k in used] if extra == "labelled" else []
            r = run_search(truth.space, ev, base, args.queries, seed=seed, start=start)
            for rule in args.select:
                top = select_top(r.ranked, 10, rule, truth.space)
                rows[f"{strategy}/{rule}"].append(truth.outcome([c.key for c in top]))
        seconds.append(time.perf_counter() - t)
        log(f"  fine-tuned seed {seed}: fine-tune {ft:.0f} s, total {seconds[-1]:.0f} s, "
            + ", ".join(f"{name} {100 * rs[-1]['best']:.2f}{'*' if rs[-1]['top1'] else ''}"
                        for name, rs in rows.items()))
    return {"samples": args.finetune, "mode": args.finetune_mode, **{n: summarise(rs) for n, rs in rows.items()},
            "seconds_per_seed": float(np.mean(seconds))}


def print_tables(family: str, res: dict, args) -> None:
    head = ("| search | best true acc. % median (min-max) | percentile | MACs (M) | top-1 % in top 10 |\n"
            "|---|---|---|---|---|")
    title = TITLES.get(family, family) if args.limit is None else f"{family} (pool: {res['n']:,} drawn)"
    labels = ",".join(f"{k}={v}" for k, v in res.get("labels", {}).items())
    title += f", labels {labels or 'default'}"
    print(f"\n### {title}: {args.queries} predictor queries, top 10 looked up, "
          f"{args.seeds} seeds (top 1 % >= {100 * res['top1_threshold']:.2f} %)\n")
    print(head)
    for s in res.get("zero_shot", {}):
        print(fmt_row(f"{s} (zero-shot)", res["zero_shot"][s]))
    if "finetuned" in res:
        ft = res["finetuned"]
        for name in [n for n in ft if "/" in n]:
            strategy, rule = name.split("/")
            print(fmt_row(f"{strategy} ({ft['samples']}-shot fine-tuned, {ft['mode']}; top 10 by {rule})", ft[name]))
    if "zero_shot" not in res:
        return
    b = res["baselines"]
    print(fmt_row("random, 10 true evaluations", b["random_10"]))
    print(fmt_row(f"FLOPs-ranked ({args.queries} drawn, top 10 by MACs)", b["flops_ranked"]))
    print(fmt_row("oracle", b["oracle"]))
    r = res["reference"]
    print(f"\nReference {r['reference']} `{r['arch']}`: {100 * r['ref_acc']:.2f} % "
          f"(percentile {r['ref_percentile']:.1f}), {r['ref_macs'] / 1e6:.1f} M MACs; evolution from it under "
          f"its MACs: median best {100 * r['median']:.2f} % ({100 * r['min']:.2f}-{100 * r['max']:.2f}), "
          f"median {r['macs'] / 1e6:.1f} M MACs")
    if "profile" in res:
        p = res["profile"]
        print(f"\nPredictor: {p['queries']} random queries in {p['seconds']} s wall, {p.get('cpu_seconds')} s CPU "
              f"({p['queries_per_s']} /s, "
              f"{p['cache_hits']} from the cache); {p['distinct_per_s']} distinct networks/s; "
              f"seconds by step {p['seconds_by_step']}")


if __name__ == "__main__":
    raise SystemExit(main())
