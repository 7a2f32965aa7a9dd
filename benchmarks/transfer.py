"""Transfer results: zero-shot and 50-sample fine-tuned ranking on unseen families.

For each registered family (``gennape.cg.families.family_names()``; NB-201: all
15,625 cells; NB-301: 725 DARTS genotypes; OFA-MobileNetV3: 2,223 subnets;
TNB-101 micro: 4,096 cells and macro: 662 skeletons, ``class_object``; NB-101
test split as the in-domain row) it prints, against the benchmark's accuracy:

* zero-shot Spearman / Kendall tau-b / NDCG@10 of the checkpoint (and, for a
  seed ensemble, each member's Spearman alone);
* fine-tuned on ``--samples`` (50) networks drawn with each of ``--seeds`` (5)
  seeds, evaluated on the *other* networks: mean and std of Spearman.
  ``--mode``: ``select`` (default; the frozen model plus a correction chosen by
  leave-one-out on the 50, :mod:`gennape.pretrain.kshot`), ``encoder`` or
  ``heads`` (``--size-term``: refit or keep the size slope, default auto: by
  leave-one-out on the 50; ``--keep-size-term`` = ``--size-term keep``);
* the ``#params`` and FLOPs (MACs) baselines, from the same CGs the model sees;
* for NB-201 and NB-301 the best zero-cost proxy of the shared NASLib files
  (on the 724 / 725 networks that have proxies), next to the zero-shot
  Spearman on the same subset.

``--ablations`` also pretrains small variants with ``gennape pretrain``'s code
(:func:`gennape.pretrain.run.pretrain_nb101`, on ``--ablation-limit`` NB-101 networks
for ``--ablation-epochs`` epochs) that differ from a base run in one choice:
no contrastive term, one head instead of fuzzy heads, another GNN type, raw
accuracy instead of the target transform, three times longer pretraining, one
input column per op type instead of op classes, no capacity term, mean
readout instead of sum, no feature-range clamp (``--ablation-only`` picks
some); and
reports their zero-shot Spearman per family (mean ± std over
``--ablation-seeds`` pretraining seeds). ``--finetune-modes`` runs all three
fine-tuning modes (select, heads only, encoder + heads) on the same samples.

``--protocol lofo`` is the honest protocol (issue 15): leave one family out,
each family scored by models that never saw it (:mod:`lofo`, which says how
the variants are chosen); ``--lofo-seeds``, ``--lofo-kshot``.

    python benchmarks/transfer.py                     # the README table (shipped checkpoint)
    python benchmarks/transfer.py --protocol lofo --lofo-seeds 0,1,2 --jobs 2 --threads 1 \
        --lofo-labels ~/.cache/gennape/zoo/torchvision_eval/labels.csv --lofo-labels ~/.cache/gennape/zoo/timm_eval/labels.csv   # README's table
    python benchmarks/transfer.py --protocol lofo --lofo-seeds 0 --jobs 2 --threads 1 --lofo-kshot   # its 50-shot column
    python benchmarks/transfer.py --checkpoint DIR --limit 2000   # quicker, subsampled
    python benchmarks/transfer.py --ablations --families nb201,nb301

Markdown tables go to stdout; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

#: The pretraining family, scored last on its test split.
PRETRAIN_FAMILY = "nb101"
#: Record fields that are not zero-cost proxies (``best_accuracy``: TNB-101's best-epoch label).
NOT_PROXIES = {"flops", "params", "params_millions", "val_accuracy", "macs", "src", "train_time_108",
               "best_accuracy"}


def default_families() -> tuple[str, ...]:
    """Every registered family, the pretraining family last."""
    from gennape.cg.families import family_names

    names = family_names()
    return tuple(n for n in names if n != PRETRAIN_FAMILY) + (PRETRAIN_FAMILY,)


def title(name: str) -> str:
    """The family's table title (the pretraining family: its in-domain test split)."""
    from gennape.cg.families import get_family

    return "NB-101 test split (in-domain)" if name == PRETRAIN_FAMILY else get_family(name).title


# ------------------------------------------------------------------- data
def load_family(name: str, limit: int | None, seed: int):
    """``(keys, cgs as a GraphPack, accuracies, params, macs, extras)`` of a family."""
    from gennape.cg.families import get_family
    from gennape.cg.families.cache import CGCache
    from gennape.pretrain.estimator import as_pack

    family = get_family(name)
    recs = family.load_labelled()
    if name == PRETRAIN_FAMILY:
        from gennape.pretrain.data import split_indices

        recs = [recs[i] for i in split_indices([r.key for r in recs])["test"]]
    if limit is not None and limit < len(recs):
        keep = np.sort(np.random.default_rng(seed).choice(len(recs), limit, replace=False))
        recs = [recs[i] for i in keep]
    cgs = CGCache().get_or_build(family, [(r.key, r.spec) for r in recs], "labelled")
    params = np.array([c.params for c in cgs], dtype=np.float64)
    macs = np.array([c.macs for c in cgs], dtype=np.float64)
    pack = as_pack(cgs)
    del cgs
    return ([r.key for r in recs], pack, np.array([r.accuracy for r in recs]), params, macs,
            [r.extra for r in recs])


def best_proxy(extras, y: np.ndarray, pred: np.ndarray) -> dict | None:
    """Best zero-cost proxy by Spearman on the networks that have proxies, and
    the model's zero-shot Spearman on the same networks."""
    from gennape.pretrain.metrics import spearman

    have = [i for i, e in enumerate(extras) if any(_proxy(v) is not None for k, v in e.items() if k not in NOT_PROXIES)]
    if len(have) < 10:
        return None
    names = sorted({k for i in have for k, v in extras[i].items() if k not in NOT_PROXIES and _proxy(v) is not None})
    scores = {}
    for name in names:
        idx = [i for i in have if _proxy(extras[i].get(name)) is not None]
        vals = np.array([_proxy(extras[i][name]) for i in idx])
        if len(idx) >= 10 and np.isfinite(vals).all():
            scores[name] = (spearman(vals, y[idx]), len(idx))
    name, (rho, n) = max(scores.items(), key=lambda kv: kv[1][0])
    return {"name": name, "spearman": rho, "n": n, "model_spearman_same_subset": spearman(pred[have], y[have])}


def _proxy(v):
    if isinstance(v, dict):
        v = v.get("score")
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


# --------------------------------------------------------------- measures
def zero_shot(est, pack, y):
    """Metrics of the checkpoint as it is, plus how out-of-distribution the family looks."""
    from gennape.pretrain.metrics import all_metrics, spearman

    t = time.perf_counter()
    details = est.predict_details(pack)
    seconds = time.perf_counter() - t
    pred, ood = details["accuracy"], details["ood_score"]
    out = {**all_metrics(pred, y), "seconds": seconds, "ood_score_median": float(np.median(ood)),
           "ood_flagged": float(np.mean(details["ood"]))}
    if "member_scores" in details:  # an ensemble: how each member alone ranks the family
        out["member_spearman"] = [spearman(s, y) for s in details["member_scores"]]
    return pred, out


def predict_embedded(est, emb, size):
    """``est.predict`` from embeddings already computed (``est.embed``) and sizes (``est.size_of``)."""
    return est.target_transform_.inverse(est.score_embedded(emb, size))


def finetuned(est, pack, y, samples: int, seeds: int, epochs: int, mode: str, log=lambda line: None,
              refit_size_term: bool | str = "auto") -> dict:
    """Mean/std over seeds of the metrics on the networks NOT used for tuning.

    With ``mode="select"`` (:class:`gennape.pretrain.kshot_estimator.KShotEstimator`)
    the frozen model's features are computed once and each seed fits on its own
    labelled rows.
    """
    from gennape.transfer.finetune import SELECT, FinetuneConfig, choose_samples, finetune_estimator
    from gennape.pretrain.metrics import all_metrics

    feats = None
    if mode == SELECT:  # nothing is trained: the frozen features of every network, once
        from gennape.pretrain.kshot_estimator import frozen_features

        feats = frozen_features(est, pack)
    # With the encoder frozen, embed once and reuse (15,625 NB-201 graphs).
    emb = est.embed(pack) if mode == "heads" and not hasattr(est, "members_") else None
    runs = []
    for seed in range(seeds):
        t = time.perf_counter()
        used = choose_samples(len(y), samples, seed)
        rest = np.setdiff1d(np.arange(len(y)), used)
        if feats is not None:
            from gennape.pretrain.kshot_estimator import KShotEstimator

            tuned = KShotEstimator(est).fit_features(feats.subset(used), y[used])
            pred = tuned._accuracy(tuned.predict_score_features(feats.subset(rest)))
            chosen = ", ".join(sorted({f"{c['base']}+{c['kernel'] or 'alone'}"
                                       for c in tuned.metadata_["finetune"]["chosen"]}))
        else:
            config = FinetuneConfig(mode=mode, epochs=epochs, seed=seed, refit_size_term=refit_size_term)
            tuned = finetune_estimator(est, pack.subset(used), y[used], config)
            pred = (predict_embedded(tuned, emb[rest], tuned.size_of(pack)[rest]) if emb is not None
                    else tuned.predict(pack.subset(rest)))
            chosen = f"size term {tuned.metadata_['finetune']['size_term']}"
        m = all_metrics(pred, y[rest])
        m["seconds"] = time.perf_counter() - t
        runs.append(m)
        log(f"  fine-tuned ({mode}, seed {seed}): Spearman {m['spearman']:.3f} ({m['seconds']:.0f}s; {chosen})")
    out = {"n_tuned": samples, "n_eval": int(len(y) - samples), "seeds": seeds, "mode": mode, "epochs": epochs,
           "refit_size_term": refit_size_term}
    for key in ("spearman", "kendall", "ndcg10", "mae"):
        vals = np.array([r[key] for r in runs])
        out[key] = float(vals.mean())
        out[f"{key}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
    out["per_seed_spearman"] = [float(r["spearman"]) for r in runs]
    out["seconds_per_seed"] = float(np.mean([r["seconds"] for r in runs]))
    return out


def baselines(params, macs, y) -> dict:
    from gennape.pretrain.metrics import all_metrics

    keys = ("spearman", "kendall", "ndcg10")
    return {name: {k: v for k, v in all_metrics(x, y).items() if k in keys}
            for name, x in (("params", params), ("flops", macs))}


# ---------------------------------------------------------------- ablations
ABLATIONS = {
    "base": {},
    "one input column per op type (no op classes)": {"op_encoding": "op"},
    "no capacity term": {"capacity_term": False},
    "mean readout instead of sum": {"readout": "mean"},
    "no feature-range clamp": {"feature_clamp": False},
    "no contrastive pretraining": {"contrastive_weight": 0.0},
    "one head (K=1)": {"num_clusters": 1},
    "GNN: GIN": {"conv": "gin"},
    "GNN: GCN": {"conv": "gcn"},
    "raw accuracy target": {"target_transform": "raw"},
    "3x longer pretraining": {"epochs_factor": 3},
}


def run_ablations(base_params: dict, families: dict, limit: int, epochs: int, head_epochs: int,
                  seeds: int, log, only: list[str] | None = None) -> dict:
    """Pretrain every variant of :data:`ABLATIONS` (the base and those whose
    name contains one of ``only``, when given) with ``seeds`` seeds; zero-shot
    Spearman per family (mean and std over seeds)."""
    from gennape.cg.data import data_file
    from gennape.pretrain.estimator import GennapeEstimator
    from gennape.pretrain.run import pretrain_nb101
    from gennape.pretrain.metrics import spearman

    keep = {k: v for k, v in base_params.items() if k not in ("epochs", "head_epochs", "device", "seed")}
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, change in ABLATIONS.items():
            if only and name != "base" and not any(part in name for part in only):
                continue
            runs = []
            for seed in range(seeds):
                factor = change.get("epochs_factor", 1)
                params = {**keep, "epochs": factor * epochs, "head_epochs": head_epochs, "seed": seed,
                          **{k: v for k, v in change.items() if k != "epochs_factor"}}
                t = time.perf_counter()
                m = pretrain_nb101(data_file("nb101", "nb101_30k_labelled.json.gz"), Path(tmp) / "ck", limit=limit,
                                   command=f"benchmarks/transfer.py --ablations ({name})", log=lambda line: None,
                                   **params)
                est = GennapeEstimator.load(Path(tmp) / "ck")
                run = {"nb101_test": m["test"]["spearman"], "seconds": time.perf_counter() - t}
                for fam, (pack, y) in families.items():
                    run[fam] = spearman(est.predict(pack), y)
                runs.append(run)
                log(f"ablation {name}, seed {seed}: " + ", ".join(f"{k} {v:.3f}" for k, v in run.items()))
            row = {}
            for key in runs[0]:
                vals = np.array([r[key] for r in runs])
                row[key] = float(vals.mean())
                row[f"{key}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
            out[name] = row
    return out


# ------------------------------------------------------------------- output
def fmt(x, digits=3) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="checkpoint folder (default: the shipped one)")
    parser.add_argument("--families", default=",".join(default_families()))
    parser.add_argument("--limit", type=int, help="subsample each family to N networks (seeded)")
    parser.add_argument("--samples", type=int, default=50, help="fine-tuning set size (default 50)")
    parser.add_argument("--seeds", type=int, default=5, help="fine-tuning seeds (default 5)")
    parser.add_argument("--epochs", type=int, default=None, help="fine-tuning epochs (default: gennape.transfer.finetune's)")
    parser.add_argument("--mode", default="select", choices=("select", "encoder", "heads"),
                        help="fine-tuning mode (gennape.transfer.finetune.MODES; default select)")
    parser.add_argument("--no-finetune", action="store_true")
    parser.add_argument("--keep-size-term", action="store_true",
                        help="fine-tune without refitting the size slope (same as --size-term keep)")
    parser.add_argument("--size-term", choices=("auto", "refit", "keep"), default="auto",
                        help="refit or keep the size slope, or choose by leave-one-out (default auto; "
                             "gennape.transfer.finetune)")
    parser.add_argument("--finetune-modes", action="store_true", help="also compare fine-tuning modes")
    parser.add_argument("--ablations", action="store_true", help="pretrain and compare ablated variants")
    parser.add_argument("--ablation-limit", type=int, default=3000, help="NB-101 networks per ablation run")
    parser.add_argument("--ablation-epochs", type=int, default=3)
    parser.add_argument("--ablation-seeds", type=int, default=3, help="pretraining seeds per variant (default 3)")
    parser.add_argument("--ablation-head-epochs", type=int, default=100)
    parser.add_argument("--ablation-only", metavar="TEXT,...",
                        help="run only the base and the variants whose name contains one of these")
    parser.add_argument("--ablation-eval-limit", type=int, default=3000,
                        help="networks per family for ablation scores (default 3000)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--protocol", choices=("checkpoint", "lofo"), default="checkpoint",
                        help="checkpoint: score one checkpoint on every family (default); lofo: leave one "
                             "family out, a model fitted on the others' labels scores it")
    parser.add_argument("--limit-per-family", type=int, default=1000,
                        help="lofo: networks scored per family (seeded subsample; default 1000)")
    parser.add_argument("--train-per-family", type=int, default=1000,
                        help="lofo: training networks per family (seeded subsample; default 1000)")
    parser.add_argument("--lofo-epochs", type=int, default=3, help="lofo: encoder epochs (default 3, the recipe's)")
    parser.add_argument("--lofo-head-epochs", type=int, default=100,
                        help="lofo: head epochs (default 100, the recipe's)")
    parser.add_argument("--lofo-seeds", default="0", metavar="S,...",
                        help="lofo: pretraining seeds, one fold model each (default 0)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="lofo: folds run at once, one process each with --threads threads (default 1)")
    parser.add_argument("--lofo-kshot", action="store_true",
                        help="lofo: also fine-tune (--mode) on --samples networks with --seeds seeds")
    parser.add_argument("--lofo-set", action="append", metavar="NAME=VALUE",
                        help="lofo: train the folds with this estimator parameter instead of the recipe's "
                             "(repeatable; VALUE as JSON), e.g. supervised_weight=1.0")
    parser.add_argument("--lofo-unlabelled", action="store_true",
                        help="lofo: the held-out family's scored networks (not their labels) join each fold's "
                             "contrastive stage")
    parser.add_argument("--lofo-labels", action="append", metavar="LABELS.csv",
                        help="lofo: a scored-only family (repeatable): every fold model ranks its networks, "
                             "none trains on them, e.g. CACHE/torchvision_eval/labels.csv")
    args = parser.parse_args()
    args.families_given = any(a == "--families" or a.startswith("--families=") for a in sys.argv[1:])

    import torch

    from gennape.transfer.finetune import DEFAULT_EPOCHS
    from gennape.transfer.model import checkpoint_path, load_estimator

    torch.set_num_threads(args.threads)
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    if args.protocol == "lofo":
        from lofo import recipe_overrides, run_lofo

        try:  # parsed once here; every fold trains with args.lofo_overrides
            args.lofo_overrides = recipe_overrides(args.lofo_set or [])
        except ValueError as e:
            parser.error(str(e))
        run_lofo(args, log, finetuned)
        return 0
    ckpt = checkpoint_path(args.checkpoint)
    est = load_estimator(ckpt)
    epochs = args.epochs or DEFAULT_EPOCHS
    size_term = "keep" if args.keep_size_term else args.size_term
    names = [f.strip() for f in args.families.split(",") if f.strip()]
    results: dict = {"checkpoint": str(ckpt), "checkpoint_command": est.metadata_.get("command"),
                     "families": {}, "limit": args.limit}
    ablation_sets = {}
    for name in names:
        t = time.perf_counter()
        keys, pack, y, params, macs, extras = load_family(name, args.limit, seed=0)
        log(f"{name}: {len(y)} networks loaded in {time.perf_counter() - t:.1f}s")
        pred, zs = zero_shot(est, pack, y)
        log(f"{name}: zero-shot Spearman {zs['spearman']:.3f}, median OOD score {zs['ood_score_median']:.2f}, "
            f"{100 * zs['ood_flagged']:.0f}% flagged ({zs['seconds']:.0f}s)")
        res = {"n": len(y), "zero_shot": zs, "baselines": baselines(params, macs, y)}
        proxy = best_proxy(extras, y, pred)
        if proxy is not None and name != PRETRAIN_FAMILY:
            res["best_zero_cost_proxy"] = proxy
        if not args.no_finetune and name != PRETRAIN_FAMILY and len(y) > args.samples + 10:
            res["finetuned"] = finetuned(est, pack, y, args.samples, args.seeds, epochs, args.mode, log, size_term)
            if args.finetune_modes:
                for other in ("select", "heads", "encoder"):
                    if other != args.mode:
                        res["finetuned_" + other] = finetuned(est, pack, y, args.samples, args.seeds, epochs, other,
                                                              log, size_term)
        results["families"][name] = res
        log(f"{name}: zero-shot Spearman {zs['spearman']:.3f}" +
            (f", fine-tuned {res['finetuned']['spearman']:.3f}" if "finetuned" in res else "") +
            f" ({time.perf_counter() - t:.0f}s)")
        if args.ablations:
            n = min(args.ablation_eval_limit, len(y))
            idx = np.sort(np.random.default_rng(1).choice(len(y), n, replace=False))
            ablation_sets[name] = (pack.subset(idx), y[idx])
        del pack

    print(f"### Transfer from NAS-Bench-101 (checkpoint `{ckpt}`)\n")
    print(f"| family | n | zero-shot Spearman | Kendall | NDCG@10 | {args.samples}-sample fine-tuned Spearman "
          f"(mean ± std, {args.seeds} seeds, {args.mode}) | #params | FLOPs | best zero-cost proxy | "
          "OOD flagged |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in results["families"].items():
        zs, ft, b = r["zero_shot"], r.get("finetuned"), r["baselines"]
        ft_s = f"{fmt(ft['spearman'])} ± {fmt(ft['spearman_std'])}" if ft else "—"
        px = r.get("best_zero_cost_proxy")
        px_s = (f"{px['name']} {fmt(px['spearman'])} (n={px['n']}; ours {fmt(px['model_spearman_same_subset'])})"
                if px else "—")
        print(f"| {title(name)} | {r['n']} | {fmt(zs['spearman'])} | {fmt(zs['kendall'])} | {fmt(zs['ndcg10'])} "
              f"| {ft_s} | {fmt(b['params']['spearman'])} | {fmt(b['flops']['spearman'])} | {px_s} "
              f"| {100 * zs['ood_flagged']:.0f}% |")
    members = {name: r["zero_shot"]["member_spearman"] for name, r in results["families"].items()
               if "member_spearman" in r["zero_shot"]}
    if members:
        print("\n### Zero-shot Spearman of each ensemble member alone\n")
        print("| member (seed) | " + " | ".join(title(f) for f in members) + " |")
        print("|---|" + "---|" * len(members))
        seeds = [m.seed for m in est.members_]
        for i, seed in enumerate(seeds):
            print(f"| {i} ({seed}) | " + " | ".join(fmt(v[i]) for v in members.values()) + " |")
        print("| **ensemble (mean score)** | " + " | ".join(
            f"**{fmt(results['families'][f]['zero_shot']['spearman'])}**" for f in members) + " |")
    if args.finetune_modes:
        print("\n### Fine-tuning: what to train (Spearman on the rest, mean ± std over seeds)\n")
        print("| family | select (frozen, leave-one-out) | heads only | encoder + heads |")
        print("|---|---|---|---|")
        for name, r in results["families"].items():
            cols = [r.get("finetuned") if r.get("finetuned", {}).get("mode") == m else r.get(f"finetuned_{m}")
                    for m in ("select", "heads", "encoder")]
            print(f"| {title(name)} | " + " | ".join(
                f"{fmt(c['spearman'])} ± {fmt(c['spearman_std'])}" if c else "—" for c in cols) + " |")

    if args.ablations:
        log("ablations: pretraining variants ...")
        member = est.members_[0] if hasattr(est, "members_") else est  # variants are single estimators
        results["ablations"] = run_ablations(member.get_params(), ablation_sets, args.ablation_limit,
                                             args.ablation_epochs, args.ablation_head_epochs,
                                             args.ablation_seeds, log,
                                             [t for t in (args.ablation_only or "").split(",") if t])
        results["ablation_setup"] = {"nb101_limit": args.ablation_limit, "epochs": args.ablation_epochs,
                                     "head_epochs": args.ablation_head_epochs, "seeds": args.ablation_seeds,
                                     "eval_networks_per_family": args.ablation_eval_limit}
        print(f"\n### Ablations (pretrained on {args.ablation_limit} NB-101 networks, {args.ablation_epochs} "
              f"epochs, {args.ablation_seeds} seeds; zero-shot Spearman mean ± std, up to "
              f"{args.ablation_eval_limit} networks per family)\n")
        fams = list(ablation_sets)
        print("| variant | NB-101 test | " + " | ".join(title(f) for f in fams) + " |")
        print("|---|---|" + "---|" * len(fams))
        for variant, row in results["ablations"].items():
            cells = [f"{fmt(row[k])} ± {fmt(row[k + '_std'])}" for k in ("nb101_test", *fams)]
            print(f"| {variant} | " + " | ".join(cells) + " |")
    print()
    print(json.dumps(results, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
