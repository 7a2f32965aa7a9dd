"""Leave one family out (issue 15): how the recipe ranks a family it never saw.

For each family F of :data:`LOFO_FAMILIES` (a search space, left out with all
its datasets and tasks) and each pretraining seed, one estimator is fitted by
:data:`gennape.pretrain.run_families.RECIPE` on the *other* families' labelled
CGs (within-family quantile targets, :mod:`gennape.pretrain.multifamily`) and
scores F. The fold's encoder and heads do not depend on the size measure (the
heads learn the targets themselves; the size term is fitted afterwards), so
one fold model gives every size measure's variant:

* ``size: M``: size measure M alone (no learning);
* ``gnn``: the heads alone;
* ``in-sample fit: M``: the size term fitted on the heads' scores of their own labels;
* ``out-of-family fit: M``: fitted on out-of-family head scores;
* ``heads xS: M``: that fit with the head-to-size ratio shrunk by S
  (:data:`HEAD_SHRINKS`);
* ``... + OOD trust: M``: the same with ``head_trust="ood"``;
* ``... + head clip: M``: the heads' deviation from their training mean
  clipped to one training standard deviation (computed here, not a model option).

The recipe's own row is the model's own forward. The shipped variant is the
candidate (the last four kinds of row) with the
best LOFO mean over every family and seed; each family's *honest* figure is
the ``nested choice`` row: the candidate with the best mean over the *other*
families, scored on F, so nothing of F chooses anything of F's figure.
With several seeds a second table scores the *ensemble* of the seeds' fold
models (each network's mean score over them), which is what the shipped
checkpoint is (its members are seeded like the folds); its shipped variant
and nested choice are the headline ones (``zero_shot`` in the JSON).
``--lofo-kshot`` fine-tunes the :data:`RECIPE` variant's first-seed fold model
on ``--samples`` networks of F (``--seeds`` draws). ``--lofo-set NAME=VALUE``
(repeatable) trains the folds with an estimator parameter other than
:data:`RECIPE`'s, to measure an idea by the same protocol.
``--lofo-unlabelled`` lets F's scored networks (never their labels) join each
fold's contrastive stage (measured, not kept: docs/results.md, LOFO item 10).

``--lofo-labels LABELS.csv`` (repeatable) adds a *scored-only* family: any
``gennape evaluate --labels`` file, such as the torchvision classifiers that
``benchmarks/zoo_coverage.py export --corpus torchvision_eval`` writes with
their published top-1. No fold trains on it; every fold model ranks it, and
its column is the mean over the folds (the ensemble table: the mean over the
folds of the seed-ensemble's Spearman). It enters the shipped variant's mean
and the other families' nested choices like any family, and gets its own
nested choice: a family of real networks written by other people's code
telling the recipe what a NAS space cannot.

    python benchmarks/transfer.py --protocol lofo --lofo-seeds 0,1,2 --jobs 2 --threads 1 \
        --lofo-labels ~/.cache/gennape/zoo/torchvision_eval/labels.csv --lofo-labels ~/.cache/gennape/zoo/timm_eval/labels.csv
    python benchmarks/transfer.py --protocol lofo --lofo-seeds 0 --jobs 2 --threads 1 --lofo-kshot

Markdown tables go to stdout; the last line is JSON per family.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

#: Families of the protocol: one per SPACE (NB-201's three datasets and TNB-101's
#: tasks are label sets of one space, never separate families), each scored
#: against its default label set (NB-201 CIFAR-10, TNB-101 class_object).
LOFO_FAMILIES = ("nb101", "nb201", "nb301", "ofa_mbv3", "tnb101_micro", "tnb101_macro")
NESTED_ROW = "nested choice"
#: A ``--lofo-labels`` family's ``trained_on``: no fold trains on it.
SCORED_ONLY = "none (scored only)"


def fmt(x, digits=3) -> str:
    return "—" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{digits}f}"


#: Head-weight shrinks tried (:func:`gennape.pretrain.multifamily.fit_size_term_across_families`).
HEAD_SHRINKS = (1.0, 0.5, 0.25, 0.1)
#: Row prefixes of the candidates: the shipped variant and the nested choice are among them.
CANDIDATE_PREFIXES = ("out-of-family fit", "heads x")


def variant_row(measure: str, head_trust: str = "constant", head_shrink: float = 1.0, clip: bool = False) -> str:
    """A candidate's row: ``out-of-family fit`` (or ``heads xS`` with a head
    shrink S), ``+ OOD trust`` / ``+ head clip``, then the size measure."""
    base = "out-of-family fit" if head_shrink == 1.0 else f"heads x{head_shrink:g}"
    return base + (" + OOD trust" if head_trust == "ood" else "") + (" + head clip" if clip else "") + f": {measure}"


def recipe_row(params: dict) -> str:
    """The row that a recipe's parameters score."""
    return variant_row(params["size_measure"], params["head_trust"], params.get("head_shrink", 1.0))


def fold_rows(est, others, pack) -> dict[str, np.ndarray]:
    """Every row's scores of the networks in ``pack`` from one fold's estimator
    ``est`` (fitted on ``others`` with ``size_term_fit="none"``); leaves ``est``
    as :data:`RECIPE`'s model (size measure, fitted size term, head trust), whose
    own forward scores the recipe's row."""
    import torch

    from gennape.pretrain.model import run_model
    from gennape.pretrain.multifamily import fit_size_term_across_families, out_of_family_head_scores, training_set
    from gennape.pretrain.run_families import RECIPE
    from gennape.pretrain.size_measure import SIZE_MEASURES, pack_size, size_mix

    tr_pack, tr_y, fam_of = training_set(others)
    tr_t = est.target_transform_.transform(tr_y)
    in_sample = run_model(est.model_, tr_pack).head_score
    out_of_family = out_of_family_head_scores(est, others, tr_pack)
    est.capacity_ = (1.0, 0.0, 0.0)  # the forward's score is then the (trusted) head score itself
    used = {}
    for trust in ("constant", "ood"):
        est.head_trust = est.model_.head_trust = trust
        used[trust] = run_model(est.model_, pack).score
    head, spread = used["constant"], float(np.std(in_sample))
    clipped = est.head_mean_ + np.clip(head - est.head_mean_, -spread, spread)
    rows = {"gnn": head}
    for measure in SIZE_MEASURES:
        size, tr_size = pack_size(pack, measure), pack_size(tr_pack, measure)
        rows[f"size: {measure}"] = size
        a, b, _ = fit_size_term_across_families(in_sample, tr_size, tr_t, fam_of)
        rows[f"in-sample fit: {measure}"] = a * head + b * size
        for shrink in HEAD_SHRINKS:
            a, b, _ = fit_size_term_across_families(out_of_family, tr_size, tr_t, fam_of, shrink)
            for trust, h in used.items():
                rows[variant_row(measure, trust, shrink)] = a * h + b * size
            if shrink == 1.0:
                rows[variant_row(measure, clip=True)] = a * clipped + b * size
    measure = RECIPE["size_measure"]
    est.size_measure, est.head_trust = measure, RECIPE["head_trust"]
    est.model_.size_mix = torch.as_tensor(size_mix(measure)).to(est.model_.size_mix)
    est.model_.head_trust = RECIPE["head_trust"]
    est.capacity_ = fit_size_term_across_families(out_of_family, pack_size(tr_pack, measure), tr_t, fam_of,
                                                  RECIPE.get("head_shrink", 1.0))
    rows[recipe_row(RECIPE)] = run_model(est.model_, pack).score
    return rows


def _fold(held: str, seed: int, names, args) -> dict:
    """One (held-out family, seed) fold: every row's Spearman, and k-shot on the first seed."""
    import torch

    from gennape.pretrain.estimator import as_pack
    from gennape.pretrain.metrics import spearman
    from gennape.pretrain.multifamily import pretrain_families
    from gennape.pretrain.run_families import RECIPE
    from gennape.transfer.finetune import DEFAULT_EPOCHS

    torch.set_num_threads(args.threads)
    train, evals = _data(names, args)
    ev, others = evals[held], [train[n] for n in names if n != held]
    scored = _scored(args)
    held_pack, y = as_pack(ev.cgs), ev.accuracy
    # one pack for F and the scored-only families: a network's score does not depend on its batch
    pack = as_pack(ev.cgs + [cg for c in scored.values() for cg in c.cgs]) if scored else held_pack
    t = time.perf_counter()
    torch.manual_seed(seed)
    # --lofo-unlabelled: F's networks to be ranked (never their labels) join the contrastive stage
    est = pretrain_families(others, size_term_fit="none", unlabelled=held_pack if args.lofo_unlabelled else None,
                            **{**_params(args), "seed": seed})
    everything = {row: np.asarray(s, dtype=np.float64) for row, s in fold_rows(est, others, pack).items()}
    scores, start = {row: s[:len(y)] for row, s in everything.items()}, len(y)
    out = {"rows": {row: spearman(s, y) for row, s in scores.items()}, "scores": scores, "scored": {}}
    for name, c in scored.items():
        part = {row: s[start:start + len(c)] for row, s in everything.items()}
        out["scored"][name] = {"rows": {row: spearman(s, c.accuracy) for row, s in part.items()}, "scores": part}
        start += len(c)
    if args.lofo_kshot and seed == _seeds(args)[0] and len(y) > args.samples + 10:
        out["k_shot"] = args.finetuned(est, held_pack, y, args.samples, args.seeds, args.epochs or DEFAULT_EPOCHS,
                                       args.mode, _log)
    out["seconds"] = time.perf_counter() - t
    _log(f"LOFO {held}, seed {seed}: {recipe_row(RECIPE)} {out['rows'][recipe_row(RECIPE)]:.3f} "
         f"({out['seconds']:.0f}s)")
    return out


_DATA: dict = {}


def _data(names, args):
    """Every family's training and scored draws (the shipped run's disjoint
    draw seeds), loaded once per process."""
    from gennape.pretrain.multifamily import load_all_label_sets, load_family_sample
    from gennape.pretrain.run_families import EVAL_SEED, TRAIN_SEED

    if not _DATA:
        for name in names:
            _DATA.setdefault("train", {})[name] = load_all_label_sets(name, args.train_per_family, seed=TRAIN_SEED)
            _DATA.setdefault("eval", {})[name] = load_family_sample(name, args.limit_per_family, seed=EVAL_SEED)
    return _DATA["train"], _DATA["eval"]


def _scored(args) -> dict:
    """``{name: FamilySample}`` of every ``--lofo-labels`` file (named by its
    folder), converted as ``gennape predict`` converts; loaded once per process.
    A file that fails conversion is reported and left out."""
    from gennape.cg.errors import GennapeError
    from gennape.pretrain.multifamily import FamilySample
    from gennape.transfer.labels import read_labels
    from zoo_ranking import convert_all

    if "scored" not in _DATA:
        _DATA["scored"] = {}
        for path in getattr(args, "lofo_labels", None) or []:
            try:
                labels = read_labels(path)
            except GennapeError as err:
                raise SystemExit(f"--lofo-labels: {err}")
            name = labels.source.parent.name
            if name in _DATA["scored"] or name in LOFO_FAMILIES:
                raise SystemExit(f"--lofo-labels {path}: a family named {name!r} is already scored")
            cgs, failed = convert_all(labels.paths)
            for where, cause in failed.items():
                _log(f"--lofo-labels {path}: left out {where}: {cause}")
            keys = [str(p) for p in labels.paths if str(p) in cgs]
            acc = {str(r.path): r.accuracy for r in labels.rows}
            _DATA["scored"][name] = FamilySample(
                name, keys, [cgs[k] for k in keys], np.array([acc[k] for k in keys]),
                np.array([cgs[k].params for k in keys], dtype=np.float64),
                np.array([cgs[k].macs for k in keys], dtype=np.float64), "scored only")
    return _DATA["scored"]


def _params(args) -> dict:
    from gennape.pretrain.run_families import RECIPE

    return {**RECIPE, "epochs": args.lofo_epochs, "head_epochs": args.lofo_head_epochs,
            **getattr(args, "lofo_overrides", {})}


#: Parameters every fold sets itself (seeds), that :func:`fold_rows` varies, or that have their own flag.
_NOT_OVERRIDABLE = ("seed", "size_measure", "head_trust", "capacity_term", "epochs", "head_epochs")


def recipe_overrides(pairs) -> dict:
    """``{name: value}`` from ``--lofo-set NAME=VALUE`` pairs: an estimator
    parameter that the folds train with instead of :data:`RECIPE`'s (VALUE
    read as JSON, else as a string), so an idea is measured by the protocol
    without editing RECIPE."""
    from gennape.pretrain.base import init_params
    from gennape.pretrain.estimator import GennapeEstimator

    valid = sorted(set(init_params(GennapeEstimator)) - set(_NOT_OVERRIDABLE))
    out = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or name not in valid:
            raise ValueError(f"--lofo-set {pair!r}: expected NAME=VALUE with NAME one of {', '.join(valid)}")
        try:
            out[name] = json.loads(text)
        except json.JSONDecodeError:
            out[name] = text
    return out


def _seeds(args) -> list[int]:
    return [int(s) for s in str(args.lofo_seeds).split(",")]


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def column_title(name: str) -> str:
    """A family's column heading: its registered title, or ``NAME (scored only)``
    for a ``--lofo-labels`` family (never named like a protocol family)."""
    from gennape.cg.families import get_family

    return get_family(name).title if name in LOFO_FAMILIES else f"{name} (scored only)"


def scored_family_result(sample, folds) -> dict:
    """A scored-only family's results, from ``folds[f][s]``: fold f's (one per
    held-out family) seed-s model's ``{"rows": {row: Spearman}, "scores": {row:
    [score per network]}}``. Every fold model never saw the family, so its
    column is their mean: ``rows`` over every fold and seed, ``ensemble_rows``
    the mean over the folds of the seed-ensemble's Spearman (the shipped
    checkpoint averages its members as the ensemble table does)."""
    from gennape.pretrain.ensemble import member_mean
    from gennape.pretrain.metrics import spearman

    y, rows = sample.accuracy, list(folds[0][0]["rows"])
    per_seed = [{k: float(np.mean([f[i]["rows"][k] for f in folds])) for k in rows} for i in range(len(folds[0]))]
    res = {"n": len(y), "trained_on": SCORED_ONLY,
           "params": spearman(sample.params, y), "flops": spearman(sample.macs, y),
           "rows": {k: float(np.mean([r[k] for r in per_seed])) for k in rows},
           "rows_std": {k: float(np.std([r[k] for r in per_seed], ddof=1)) if len(per_seed) > 1 else 0.0
                        for k in rows},
           "ensemble_rows": {k: float(np.mean([spearman(member_mean([m["scores"][k] for m in f]), y)
                                               for f in folds])) for k in rows},
           "per_seed": per_seed, "seconds": [], "k_shot": None, "k_shot_mean": None}
    res["best_size"] = max(res["params"], res["flops"])
    return res


def nested_choice(table: dict[str, dict[str, float]], candidates) -> dict[str, tuple[str, float]]:
    """``{family: (row, score)}``: for each family, the candidate row with the
    best mean over the *other* families, and its score on the family."""
    out = {}
    for held in table:
        others = [f for f in table if f != held]
        row = max(candidates, key=lambda r: (np.mean([table[f][r] for f in others]), r))
        out[held] = (row, table[held][row])
    return out


def run_lofo(args, log, finetuned) -> dict:
    """The protocol with ``args``' families, draws, epochs and seeds; prints the tables, returns the results.

    ``finetuned``: ``benchmarks/transfer.py``'s k-shot runner.
    """
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing

    from gennape.pretrain.ensemble import member_mean
    from gennape.pretrain.metrics import spearman

    names = [f.strip() for f in args.families.split(",") if f.strip()] if args.families_given else list(LOFO_FAMILIES)
    if len(names) < 3:  # a fold's size term is fitted on heads retrained without each of its >= 2 families
        raise SystemExit(f"--protocol lofo needs at least 3 families, got {len(names)}: {', '.join(names)}")
    seeds = _seeds(args)
    recipe = {"train_per_family": args.train_per_family, "eval_per_family": args.limit_per_family,
              "target": "within-family quantile (training: mean over each family's label sets)",
              "params": _params(args), "seeds": seeds, "k_shot": args.samples if args.lofo_kshot else None,
              "k_shot_mode": args.mode,
              "unlabelled": "the held-out family's scored networks join the contrastive stage"
                            if args.lofo_unlabelled else None,
              "scored_only": [str(p) for p in getattr(args, "lofo_labels", None) or []]}
    log(f"LOFO recipe: {recipe}")
    args.finetuned = finetuned
    folds = [(held, seed) for held in names for seed in seeds]
    if args.jobs > 1:  # one fold per process; spawn: no forked torch state
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            done = dict(zip(folds, pool.map(_fold, *zip(*folds), [names] * len(folds), [args] * len(folds))))
    else:
        done = {(held, seed): _fold(held, seed, names, args) for held, seed in folds}
    train, evals = _data(names, args)
    out: dict = {"protocol": "lofo", "recipe": recipe, "families": {}}
    for held in names:
        ev, y = evals[held], evals[held].accuracy
        runs = [done[held, seed]["rows"] for seed in seeds]
        res = {"n": len(y), "trained_on": {n: len(train[n]) for n in names if n != held},
               "params": spearman(ev.params, y), "flops": spearman(ev.macs, y),
               "rows": {k: float(np.mean([r[k] for r in runs])) for k in runs[0]},
               "rows_std": {k: float(np.std([r[k] for r in runs], ddof=1)) if len(runs) > 1 else 0.0
                            for k in runs[0]},
               "ensemble_rows": {k: spearman(member_mean([done[held, seed]["scores"][k] for seed in seeds]), y)
                                 for k in runs[0]},
               "per_seed": runs, "seconds": [done[held, seed]["seconds"] for seed in seeds],
               "k_shot": done[held, seeds[0]].get("k_shot")}
        res["best_size"] = max(res["params"], res["flops"])
        res["k_shot_mean"] = res["k_shot"]["spearman"] if res["k_shot"] else None
        out["families"][held] = res
    for name, c in _scored(args).items():
        out["families"][name] = scored_family_result(c, [[done[held, seed]["scored"][name] for seed in seeds]
                                                         for held in names])
    names = list(out["families"])

    kinds = [("rows", f"mean over pretraining seeds {', '.join(map(str, seeds))}, one member each")]
    if len(seeds) > 1:  # what ships: the shipped checkpoint is the mean of members seeded like these folds
        kinds.append(("ensemble_rows", f"the mean score of the {len(seeds)} seeds' fold models, "
                                       f"as the {len(seeds)}-member checkpoint averages its members"))
    for key, how in kinds:
        _report(out, names, key, how, args, headline=key == kinds[-1][0])
    print(json.dumps({name: {k: r[k] for k in ("zero_shot", "k_shot_mean", "params", "flops", "nested_choice",
                                               "shipped_variant", "rows", "rows_std", "ensemble_rows", "n")}
                      for name, r in out["families"].items()}, default=float))
    return out


def _report(out, names, key, how, args, headline: bool) -> None:
    """Print the table of rows ``out["families"][F][key]`` with its shipped
    variant and nested choice; with ``headline``, they become each family's
    ``shipped_variant``, ``nested_choice`` and ``zero_shot``."""
    from gennape.pretrain.run_families import RECIPE

    fams = out["families"]
    table = {n: r[key] for n, r in fams.items()}
    rows = list(next(iter(table.values())))
    candidates = [r for r in rows if r.startswith(CANDIDATE_PREFIXES)]
    shipped = max(candidates, key=lambda r: (np.mean([table[f][r] for f in table]), r))
    nested = nested_choice(table, candidates)
    if headline:
        for name, r in fams.items():
            r["nested_choice"], r["zero_shot"] = nested[name]
            r["shipped_variant"] = r[key][shipped]
    print(f"### Leave one family out: zero-shot Spearman, {how} (train {args.train_per_family} / score "
          f"{args.limit_per_family} networks per family, disjoint seeded draws; "
          f"{args.lofo_epochs} encoder epochs, {args.lofo_head_epochs} head epochs)\n")

    def line(label, values):
        values = list(values)
        print(f"| {label} | " + " | ".join(fmt(v) for v in values) + f" | {fmt(float(np.mean(values)))} |")

    print("| variant | " + " | ".join(column_title(n) for n in names) + " | mean |")
    print("|---|" + "---|" * (len(names) + 1))
    for row in rows:
        line(f"**{row}**" if row == shipped else row, (table[n][row] for n in names))
    if key == "rows" and len(fams[names[0]]["per_seed"]) > 1:
        line(f"{shipped}: std over seeds", (fams[n]["rows_std"][shipped] for n in names))
    line(f"**{NESTED_ROW}**", (nested[n][1] for n in names))
    line("#params", (fams[n]["params"] for n in names))
    line("FLOPs", (fams[n]["flops"] for n in names))
    line("better of #params and FLOPs", (fams[n]["best_size"] for n in names))
    if args.lofo_kshot:
        k_shot = (fams[n]["k_shot_mean"] for n in names)
        line(f"{args.samples}-shot {args.mode} (from the first seed's {recipe_row(RECIPE)})",
             (v if v is not None else float("nan") for v in k_shot))
    print()
    print(f"- shipped variant (best mean over every family): `{shipped}`; RECIPE's is `{recipe_row(RECIPE)}`"
          + ("" if shipped == recipe_row(RECIPE) else " (they differ: update RECIPE)"))
    print("- nested choice (best mean over the other families): "
          + ", ".join(f"{n} `{row}`" for n, (row, _) in nested.items()))
    below = [n for n in names if nested[n][1] < fams[n]["best_size"]]
    print(f"- nested choice below the better of #params and FLOPs on: {', '.join(below) or 'none'}")
    print()


__all__ = ["CANDIDATE_PREFIXES", "LOFO_FAMILIES", "SCORED_ONLY", "column_title", "fold_rows", "nested_choice",
           "recipe_overrides", "recipe_row", "run_lofo", "scored_family_result"]
