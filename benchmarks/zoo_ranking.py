"""Zero-shot ranking of real ImageNet classifiers: torchvision's and timm's models
against their published ImageNet-1K top-1.

A family no gennape checkpoint trains on, exported by other people's code
(``benchmarks/zoo_coverage.py export --corpus torchvision``, weightless ONNX
files and ``labels.csv``: each model's top-1 from torchvision's own weights
metadata; ``--corpus torchvision_eval``: the same models exported at the
input size each accuracy was measured at; ``--corpus timm_eval``: timm's
convolutional classifiers with ImageNet-1k-only default weights, at the size
timm's results table measured each at). For each ``--checkpoint`` (a
folder or a shipped checkpoint's name, :func:`gennape.transfer.model.load_estimator`;
repeatable; default the shipped ``default``) every labelled file is converted and predicted by
:func:`gennape.transfer.evaluate.evaluate_labels`, the code ``gennape evaluate
--labels`` runs (conversion as ``gennape predict`` converts; ranked by the
unclipped score), and it prints Spearman and Kendall tau-b with the published
top-1. On the same networks it prints the baselines, from the same CGs:

* ``#params``: the CG's parameter count (``CG.params``);
* ``FLOPs``: the CG's MACs (``CG.macs``);
* ``size``: the mean of ``log(1 + weights)`` and ``log(1 + MACs)``, the
  ``weights_macs`` size measure (:func:`gennape.pretrain.size_measure.pack_size`;
  the default checkpoint's own, ``macs``, ranks as FLOPs do).

Files that fail conversion or prediction are listed with their cause and
counted (``failed``), not hidden; the metrics are over the rest.

``--kshot K`` also measures what K labels of the family buy: for each of
``--kshot-seeds`` draws of K labelled networks (``choose_samples``, the draws
of ``benchmarks/transfer.py``), the checkpoint is fine-tuned on them as
``gennape finetune`` does by default (:func:`gennape.transfer.finetune.finetune_estimator`,
``select``) and ranks the other networks; on the same networks it prints
``#params``, FLOPs and ``size fit``: the least-squares fit of the accuracy on
``log(1 + #params)``, ``log(1 + MACs)`` and a constant on the same K labels
(what the labels buy without gennape).

    python benchmarks/zoo_ranking.py                                   # shipped default
    python benchmarks/zoo_ranking.py --checkpoint default --checkpoint DIR
    python benchmarks/zoo_ranking.py --corpus torchvision_eval         # at the published input sizes
    python benchmarks/zoo_ranking.py --corpus timm_eval                # timm's convolutional classifiers
    python benchmarks/zoo_ranking.py --labels FOLDER/labels.csv        # any LABELS.csv
    python benchmarks/zoo_ranking.py --corpus timm_eval --kshot 50      # and with 50 labels, 5 draws

The last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

DEFAULT_CACHE = Path("~/.cache/gennape/zoo").expanduser()
#: zoo_coverage corpora with published accuracies: torchvision at 224x224
#: (inception_v3 299) and each at the input size its accuracy was measured at;
#: timm's convolutional classifiers at theirs.
CORPORA = ("torchvision", "torchvision_eval", "timm_eval")
#: Baselines, by name: what each ranks the networks by.
BASELINES = ("params", "flops", "size")


def baseline_scores(cgs: list) -> dict[str, list[float]]:
    """``{baseline: [score per CG]}`` for :data:`BASELINES` (larger = predicted better)."""
    from gennape.pretrain.packed import GraphPack
    from gennape.pretrain.size_measure import pack_size

    return {
        "params": [float(c.params) for c in cgs],
        "flops": [float(c.macs) for c in cgs],
        "size": [float(s) for s in pack_size(GraphPack.from_items(cgs), "weights_macs")],
    }


def correlations(pred, true) -> dict:
    """``n``, ``spearman`` and ``kendall`` (tau-b) of ``pred`` against ``true``."""
    from gennape.pretrain.metrics import kendall, spearman

    return {"n": len(pred), "spearman": spearman(pred, true), "kendall": kendall(pred, true)}


def size_fit(params, macs, y, used) -> np.ndarray:
    """``[n]``: accuracy predicted by least squares on ``log(1 + params)``,
    ``log(1 + macs)`` and a constant, fitted on the rows ``used``."""
    design = np.stack([np.log1p(params), np.log1p(macs), np.ones(len(params))], axis=1)
    coef, *_ = np.linalg.lstsq(design[used], np.asarray(y, dtype=np.float64)[used], rcond=None)
    return design @ coef


def kshot_draws(n: int, samples: int, seeds: int):
    """``(seed, used, rest)`` of each draw: ``choose_samples(n, samples, seed)``
    for seed 0, 1, ... (``benchmarks/transfer.py``'s draws) and the rows it leaves out."""
    from gennape.transfer.finetune import choose_samples

    for seed in range(seeds):
        used = choose_samples(n, samples, seed)
        yield seed, used, np.setdiff1d(np.arange(n), used)


def kshot_baselines(params, macs, y, samples: int, seeds: int) -> dict[str, list[float]]:
    """``{baseline: [Spearman per draw]}`` on the networks each draw
    (:func:`kshot_draws`) leaves out: ``params``, ``flops`` and ``size fit``
    (:func:`size_fit` on the drawn rows)."""
    from gennape.pretrain.metrics import spearman

    params, macs, y = (np.asarray(a, dtype=np.float64) for a in (params, macs, y))
    out = {"params": [], "flops": [], "size fit": []}
    for _, used, rest in kshot_draws(len(y), samples, seeds):
        for name, score in (("params", params), ("flops", macs), ("size fit", size_fit(params, macs, y, used))):
            out[name].append(spearman(score[rest], y[rest]))
    return out


def kshot_select(est, cgs: list, y, samples: int, seeds: int) -> list[float]:
    """Spearman per draw (as :func:`kshot_baselines` draws) of ``est``
    fine-tuned on the drawn networks as ``gennape finetune`` does by default,
    on the networks left out."""
    from gennape.pretrain.metrics import spearman
    from gennape.transfer.finetune import FinetuneConfig, finetune_estimator

    y = np.asarray(y, dtype=np.float64)
    out = []
    for seed, used, rest in kshot_draws(len(y), samples, seeds):
        tuned = finetune_estimator(est, [cgs[i] for i in used], y[used], FinetuneConfig(seed=seed))
        out.append(spearman(tuned.predict([cgs[i] for i in rest]), y[rest]))
    return out


def convert_all(paths: list[Path]) -> tuple[dict[str, object], dict[str, str]]:
    """``({path: CG}, {path: cause})``: every file converted as ``gennape predict`` converts it."""
    from gennape.transfer.predict import FailedModel, convert_file

    cgs, failures = {}, {}
    for path in paths:
        result = convert_file(path)
        if isinstance(result, FailedModel):
            failures[str(path)] = result.error
        else:
            cgs[str(path)] = result
    return cgs, failures


def write_rows(path: str | Path, true_of: dict, size_of: dict, scores: dict[str, dict[str, float]]) -> None:
    """One CSV row per labelled network (blank where a file failed)."""
    import csv
    import io

    from gennape.cg.atomic import write_text_atomic

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["onnx", "accuracy", *BASELINES, *scores])
    for name, acc in true_of.items():
        sizes = size_of.get(name, {})
        writer.writerow([name, acc, *(sizes.get(b, "") for b in BASELINES),
                         *(s.get(name, "") for s in scores.values())])
    write_text_atomic(Path(path), buf.getvalue())


def _fmt(row: dict) -> str:
    def f(x):
        return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"

    return f"{f(row['spearman'])} | {f(row['kendall'])} | {row['n']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", action="append", metavar="DIR|NAME",
                        help="checkpoint folder or shipped name (repeatable; default: default)")
    parser.add_argument("--corpus", choices=CORPORA, default="torchvision",
                        help="zoo_coverage corpus whose labels.csv to rank (default %(default)s)")
    parser.add_argument("--labels", default=None, metavar="LABELS.csv",
                        help="any LABELS.csv instead (default: CACHE/CORPUS/labels.csv)")
    parser.add_argument("--cache", default=str(DEFAULT_CACHE), help="zoo_coverage cache (default %(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--output", default=None, metavar="FILE.csv",
                        help="also write one row per network: published accuracy, baselines, each checkpoint's predicted accuracy")
    parser.add_argument("--kshot", type=int, default=0, metavar="K",
                        help="also fine-tune each checkpoint on K labelled networks and rank the rest (default: off)")
    parser.add_argument("--kshot-seeds", type=int, default=5, help="draws of K networks (default %(default)s)")
    args = parser.parse_args()

    import torch

    from gennape.cg.errors import GennapeError
    from gennape.transfer.evaluate import evaluate_labels
    from gennape.transfer.labels import read_labels
    from gennape.transfer.model import load_estimator

    torch.set_num_threads(args.threads)
    labels_path = Path(args.labels) if args.labels else Path(args.cache).expanduser() / args.corpus / "labels.csv"
    try:
        labels = read_labels(labels_path)
    except GennapeError as err:
        sys.exit(f"zoo_ranking: {err} (run `benchmarks/zoo_coverage.py export --corpus {args.corpus}` first)")
    true_of = {str(r.path): r.accuracy for r in labels.rows}
    print(f"{len(labels)} labelled networks ({labels_path}, {labels.scale})")
    if args.kshot and not 2 <= args.kshot <= len(labels) - 3:
        sys.exit(f"zoo_ranking: --kshot {args.kshot}: {labels_path} has {len(labels)} labelled networks; "
                 f"K must be 2 to {len(labels) - 3} so that some are left to rank")

    cgs, convert_failures = convert_all(labels.paths)
    sizes = baseline_scores(list(cgs.values()))
    size_of = {name: {b: sizes[b][i] for b in BASELINES} for i, name in enumerate(cgs)}

    results = {"labels": str(labels_path), "labelled": len(labels), "checkpoints": {}}
    scores: dict[str, dict[str, float]] = {}
    estimators = {}
    print("\n| ranked by | Spearman | Kendall tau-b | n |\n|---|---|---|---|")
    for checkpoint in args.checkpoint or ["default"]:
        estimators[str(checkpoint)] = est = load_estimator(checkpoint)
        ev = evaluate_labels(labels, est)
        # Baselines on exactly the networks this checkpoint was scored on.
        paths = [p for p in ev.paths if p in size_of]
        true = np.array([true_of[p] for p in paths])
        row = {"n": ev.metrics["n"], "spearman": ev.metrics["spearman"], "kendall": ev.metrics["kendall"],
               "failed": len(ev.failures), "failures": {f.path: f.error for f in ev.failures},
               "baselines": {b: correlations(np.array([size_of[p][b] for p in paths]), true) for b in BASELINES}}
        results["checkpoints"][str(checkpoint)] = row
        scores[str(checkpoint)] = dict(zip(ev.paths, ev.pred.tolist()))
        print(f"| {checkpoint} | {_fmt(row)} |")
        for b in BASELINES:
            print(f"| {b} (same networks) | {_fmt(row['baselines'][b])} |")
    print()
    if args.kshot:
        print_kshot(args, results, estimators, cgs, true_of, scores)
    for path, cause in sorted({**convert_failures,
                               **{p: c for r in results["checkpoints"].values() for p, c in r["failures"].items()}
                               }.items()):
        print(f"failed: {path}: {cause}")
    print(f"{len(convert_failures)} of {len(labels)} labelled files failed conversion")
    results["convert_failed"] = len(convert_failures)
    if args.output:
        write_rows(args.output, true_of, size_of, scores)
        print(f"per-network rows -> {args.output}")
    print(json.dumps(results))


def print_kshot(args, results: dict, estimators: dict, cgs: dict, true_of: dict, scores: dict) -> None:
    """The ``--kshot`` table (module docstring), into ``results[checkpoint]["kshot"]``."""
    def cell(values):
        return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}" if len(values) > 1 else f"{values[0]:.3f}"

    print(f"\n| {args.kshot} labels, {args.kshot_seeds} draws: Spearman on the rest (mean ± std) | "
          "fine-tuned (select) | #params | FLOPs | size fit on the labels | n rest |\n|---|---|---|---|---|---|")
    for checkpoint, row in results["checkpoints"].items():
        paths = list(scores[checkpoint])  # the networks this checkpoint predicted
        y = np.array([true_of[p] for p in paths])
        graphs = [cgs[p] for p in paths]
        base = kshot_baselines([g.params for g in graphs], [g.macs for g in graphs], y, args.kshot, args.kshot_seeds)
        tuned = kshot_select(estimators[checkpoint], graphs, y, args.kshot, args.kshot_seeds)
        row["kshot"] = {"samples": args.kshot, "select": tuned, **base}
        print(f"| {checkpoint} | {cell(tuned)} | {cell(base['params'])} | {cell(base['flops'])} | "
              f"{cell(base['size fit'])} | {len(y) - args.kshot} |")
    print()


if __name__ == "__main__":
    main()
