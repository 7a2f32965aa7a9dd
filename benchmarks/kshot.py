"""k-shot recipes compared under the honest protocol: chosen on some families, reported on another.

For each family (``--families``, default the development set NB-201, OFA-MobileNetV3,
TNB-101 micro / macro and NB-101 test), the shipped checkpoint's frozen features
(:func:`gennape.pretrain.kshot_estimator.frozen_features`) of up to ``--limit``
networks (seeded subsample) are computed once; then, for each of ``--seeds`` (5)
draws of ``--samples`` (50) labelled networks (the draws of
``benchmarks/transfer.py``), every variant of :data:`VARIANTS` is fitted on the
labelled networks and scored by Spearman on the others. The table gives mean ±
std per family, the mean over the development families and the worst seed's
gain over zero-shot; ``--report FAMILY`` scores that family last, in its own
column, after the development mean is printed (choose on the mean, then read it).

    python benchmarks/kshot.py --threads 1 --limit 1000
    python benchmarks/kshot.py --threads 1 --limit 1000 --report nb301

Markdown table to stdout; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from gennape.pretrain.kshot import KERNELS  # noqa: E402

DEV_FAMILIES = ("nb201", "ofa_mbv3", "tnb101_micro", "tnb101_macro", "nb101")
#: name -> KShotSelector keywords ("zero-shot": the frozen model's own ranking;
#: "guarded": select, unless a nested leave-one-out of the whole selection is
#: no better than zero-shot's leave-one-out error).
VARIANTS = {
    "zero-shot": None,
    "select (shipped: top 10, linear kernel)": {},  # SHIPPED
    "all kernels (linear, RBF, members; the first recipe)": {"kernels": KERNELS},
    "best candidate only (top 1)": {"top": 1},
    "top 20": {"top": 20},
    "bases only (zero-shot / + size / + MACs)": {"kernels": ()},
    "no MACs": {"bases": ("zero-shot", "zero-shot+size")},
    "no size columns": {"bases": ("zero-shot",)},
    "guarded by nested leave-one-out": "guarded",
}


SHIPPED = "select (shipped: top 10, linear kernel)"


def nested_loo_mse(feats, y_t, **options) -> float:
    """Leave-one-out error of the whole selection (refitted without each network)."""
    from gennape.pretrain.kshot import KShotSelector

    n = feats.n
    errors = []
    for i in range(n):
        keep = np.delete(np.arange(n), i)
        sel = KShotSelector(**options).fit(feats.subset(keep), y_t[keep])
        errors.append(y_t[i] - sel.predict(feats.subset([i]))[0])
    return float(np.mean(np.square(errors)))


def _transfer_benchmark():
    """benchmarks/transfer.py as a module (its ``load_family``: the same networks and draws)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("benchmark_transfer", Path(__file__).with_name("transfer.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def score_family(est, name: str, limit: int, samples: int, seeds: int, log) -> dict:
    from gennape.pretrain.kshot import KShotSelector
    from gennape.pretrain.kshot_estimator import frozen_features
    from gennape.pretrain.metrics import spearman
    from gennape.pretrain.targets import TargetTransform
    from gennape.transfer.finetune import choose_samples

    t = time.perf_counter()
    _, pack, y, _, macs, _ = _transfer_benchmark().load_family(name, limit, seed=0)
    feats = frozen_features(est, pack, np.log1p(macs))
    log(f"{name}: {len(y)} networks, features in {time.perf_counter() - t:.0f}s")
    kind = (est.members_[0] if hasattr(est, "members_") else est).target_transform_.kind
    out = {v: [] for v in VARIANTS}
    for seed in range(seeds):
        used = choose_samples(len(y), samples, seed)
        rest = np.setdiff1d(np.arange(len(y)), used)
        y_t = TargetTransform(kind).fit(y[used]).transform(y[used])
        train, test = feats.subset(used), feats.subset(rest)
        zero = spearman(test.score, y[rest])
        for variant, options in VARIANTS.items():
            if options is None:
                rho = zero
            elif options == "guarded":
                sel = KShotSelector().fit(train, y_t)
                ok = nested_loo_mse(train, y_t) < sel.zero_shot_loo_mse_
                rho = spearman(sel.predict(test), y[rest]) if ok else zero
            else:
                rho = spearman(KShotSelector(**options).fit(train, y_t).predict(test), y[rest])
            out[variant].append(float(rho))
        log(f"  {name} seed {seed}: zero-shot {zero:.3f}, select {out[SHIPPED][-1]:.3f}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="checkpoint folder (default: the shipped one)")
    parser.add_argument("--families", default=",".join(DEV_FAMILIES), help="development families (choose on these)")
    parser.add_argument("--report", default=None, metavar="FAMILY", help="family reported after the choice")
    parser.add_argument("--limit", type=int, default=1000, help="networks per family (seeded subsample)")
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    from gennape.transfer.model import load_estimator

    torch.set_num_threads(args.threads)
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    est = load_estimator(args.checkpoint)
    dev = [f.strip() for f in args.families.split(",") if f.strip()]
    results = {name: score_family(est, name, args.limit, args.samples, args.seeds, log) for name in dev}
    report = score_family(est, args.report, args.limit, args.samples, args.seeds, log) if args.report else None

    def cell(vals):
        return f"{np.mean(vals):.3f} ± {np.std(vals, ddof=1):.3f}"

    print(f"### k-shot variants ({args.samples} labelled networks, {args.seeds} seeds, Spearman on the others; "
          f"up to {args.limit} networks per family)\n")
    head = dev + (["development mean", "worst seed vs zero-shot"]) + ([f"reported: {args.report}"] if report else [])
    print("| variant | " + " | ".join(head) + " |")
    print("|---|" + "---|" * len(head))
    summary = {}
    for variant in VARIANTS:
        means = [float(np.mean(results[f][variant])) for f in dev]
        worst = min(min(np.subtract(results[f][variant], results[f]["zero-shot"])) for f in dev)
        row = [cell(results[f][variant]) for f in dev] + [f"{np.mean(means):.3f}", f"{worst:+.3f}"]
        if report:
            row.append(cell(report[variant]))
        print(f"| {variant} | " + " | ".join(row) + " |")
        summary[variant] = {"dev_mean": float(np.mean(means)), "worst_seed_gain": float(worst),
                            **{f: results[f][variant] for f in dev},
                            **({args.report: report[variant]} if report else {})}
    print()
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
