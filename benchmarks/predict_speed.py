"""Prediction speed and ranking quality: the checkpoint (teacher) against its distilled student.

Speed: ``--n`` random NB-201 cells (seed 0) are built once (``family.to_cg``,
timed apart), then each predictor predicts them from the CGs, in process, on
one thread, as ``gennape search``'s evaluator does (pack with
``GraphPack.from_items``, then ``predict_details`` under ``inference_mode``);
best of ``--repeats``. CGs/s counts packing and prediction; "+ CG" adds the
CG build, i.e. from the spec.

Quality: on ``--samples`` labelled networks (seeded draw) of each of NB-201
(CIFAR-10), NB-301 and OFA-MobileNetV3 (``$GENNAPE_DATA``), the Spearman of
the student's score against the teacher's and of each against the true
accuracy; also the student-vs-teacher Spearman on the networks the
distillation did not draw ("unseen": distillation uses no labels, but saw
these graphs), and how often the OOD flags agree; then the same on the bundled
examples and the onnx package's model-zoo light models. ``--search-queries`` times ``run_search`` (regularized
NB-201, seed 0, batch 32; regularized evolution, which soon proposes networks
it has met, and random search, which rarely does) with the student, and with
the teacher when ``--search-teacher`` is given; CPU seconds are the process's
own (``time.process_time``), the fair figure on a shared machine.

    OMP_NUM_THREADS=1 nice python benchmarks/predict_speed.py --n 2000 --samples 1000 --search-queries 10000

Markdown to stdout; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

FAMILIES = ("nb201", "nb301", "ofa_mbv3")


def _predict_seconds(predictor, cgs, repeats: int) -> dict:
    import torch

    from gennape.pretrain.packed import GraphPack

    best_pack, best_predict = float("inf"), float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        pack = GraphPack.from_items(cgs)
        t1 = time.perf_counter()
        with torch.inference_mode():
            predictor.predict_details(pack)
        t2 = time.perf_counter()
        best_pack, best_predict = min(best_pack, t1 - t), min(best_predict, t2 - t1)
    return {"pack_s": best_pack, "predict_s": best_predict}


def _distilled_keys(student, family) -> set[str]:
    """Keys of the networks the distillation drew of ``family`` (redrawn from its seed)."""
    from gennape.transfer.distill import random_family_specs

    info = student.distill_info_
    n = info.get("families", {}).get(family)
    if not n:
        return set()
    return {s.to_arch() for s in random_family_specs(family, n, info.get("seed", student.seed))}


def quality(teacher, student, family: str, samples: int) -> dict:
    import torch

    from gennape.cg.families import get_family
    from gennape.cg.families.cache import labelled_cgs
    from gennape.pretrain.metrics import spearman
    from gennape.pretrain.packed import GraphPack

    recs, cgs = labelled_cgs(get_family(family))
    idx = np.sort(np.random.default_rng(0).choice(len(recs), min(samples, len(recs)), replace=False))
    pack = GraphPack.from_items([cgs[i] for i in idx])
    truth = np.array([recs[i].accuracy for i in idx])
    with torch.inference_mode():
        t_out, s_out = teacher.predict_details(pack), student.predict_details(pack)
    t_score, s_score = t_out["score"], s_out["score"]
    seen = _distilled_keys(student, family)
    unseen = np.array([recs[i].spec.to_arch() not in seen for i in idx])
    return {"n": len(idx), "student_vs_teacher": spearman(s_score, t_score),
            "ood_flag_agreement": float(np.mean(t_out["ood"] == s_out["ood"])),
            "student_vs_truth": spearman(s_score, truth), "teacher_vs_truth": spearman(t_score, truth),
            "n_unseen": int(unseen.sum()),
            "student_vs_teacher_unseen": spearman(s_score[unseen], t_score[unseen]) if unseen.sum() > 2 else None}


def zoo_agreement(teacher, student) -> dict:
    """Student vs teacher on networks unlike any family: the bundled examples
    and the onnx package's nine weightless model-zoo models."""
    import onnx
    import torch

    from gennape.cg import from_onnx
    from gennape.pretrain.metrics import spearman

    root = Path(__file__).resolve().parent.parent
    files = sorted((root / "examples" / "onnx").glob("*.onnx"))
    files += sorted((Path(onnx.__file__).parent / "backend" / "test" / "data" / "light").glob("light_*.onnx"))
    cgs = [from_onnx(f) for f in files]
    with torch.inference_mode():
        t, s = teacher.predict_details(cgs), student.predict_details(cgs)
    return {"n": len(files), "score_spearman": spearman(s["score"], t["score"]),
            "max_abs_score_diff": float(np.max(np.abs(s["score"] - t["score"]))),
            "ood_flag_agreement": float(np.mean(t["ood"] == s["ood"])),
            "ood_score_spearman": spearman(s["ood_score"], t["ood_score"])}


def search_seconds(predictor, queries: int, strategy: str = "evolution") -> dict:
    from gennape.transfer.search import Evaluator, get_space, run_search

    space = get_space("nb201")
    evaluator = Evaluator(space, predictor)
    t = time.process_time()
    result = run_search(space, evaluator, strategy, queries, seed=0, batch_size=32)
    cpu = time.process_time() - t
    return {"strategy": strategy, "queries": queries, "seconds": result.seconds, "cpu_seconds": cpu, "predicted": result.stats.predicted,
            "cache_hits": result.stats.cache_hits,
            "seconds_by_step": {k: round(v, 3) for k, v in result.stats.seconds.items()},
            "best": result.ranked[0].spec.to_arch()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="teacher checkpoint folder with a student/ (default: the shipped one)")
    parser.add_argument("--n", type=int, default=2000, help="NB-201 cells timed")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=1000, help="labelled networks per family for quality")
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--search-queries", type=int, default=0, help="time a search of this many queries")
    parser.add_argument("--search-strategies", default="evolution,random",
                        help="strategies timed (random: nearly every query a new network)")
    parser.add_argument("--search-teacher", action="store_true", help="time the search with the teacher too")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from gennape.cg.families import get_family
    from gennape.transfer.distill import load_student, student_problem
    from gennape.transfer.model import load_estimator

    teacher = load_estimator(args.checkpoint)
    student = load_student(args.checkpoint)
    if student is None:
        print(f"predict_speed: {student_problem(args.checkpoint)}", file=sys.stderr)
        return 2
    nb201 = get_family("nb201")
    specs = nb201.random_specs(args.n, seed=0)
    t = time.perf_counter()
    cgs = [nb201.to_cg(s) for s in specs]
    cg_s = time.perf_counter() - t
    speed = {}
    print(f"## Speed: {args.n} NB-201 cells, one thread, from CGs (CG build {1e3 * cg_s / args.n:.3f} ms/CG)\n")
    print("| predictor | pack ms/CG | predict ms/CG | CGs/s | CGs/s + CG build |")
    print("|---|---|---|---|---|")
    for name, predictor in (("teacher", teacher), ("student", student)):
        s = _predict_seconds(predictor, cgs, args.repeats)
        total = s["pack_s"] + s["predict_s"]
        speed[name] = {**s, "cgs_per_s": args.n / total, "cgs_per_s_with_cg": args.n / (total + cg_s)}
        print(f"| {name} | {1e3 * s['pack_s'] / args.n:.3f} | {1e3 * s['predict_s'] / args.n:.3f} | "
              f"{speed[name]['cgs_per_s']:.0f} | {speed[name]['cgs_per_s_with_cg']:.0f} |", flush=True)

    rows = {}
    families = [f for f in args.families.split(",") if f]
    if families:
        print(f"\n## Ranking quality (Spearman), {args.samples} labelled networks per family\n")
        print("| family | n | student vs teacher | (unseen: n, rho) | student vs truth | teacher vs truth | OOD flags agree |")
        print("|---|---|---|---|---|---|---|")
    for family in families:
        q = rows[family] = quality(teacher, student, family, args.samples)
        unseen = "-" if q["student_vs_teacher_unseen"] is None else f"{q['student_vs_teacher_unseen']:.4f}"
        print(f"| {family} | {q['n']} | {q['student_vs_teacher']:.4f} | {q['n_unseen']}, {unseen} | "
              f"{q['student_vs_truth']:.4f} | {q['teacher_vs_truth']:.4f} | {100 * q['ood_flag_agreement']:.1f} % |",
              flush=True)
    zoo = zoo_agreement(teacher, student)
    print(f"\nexamples + model zoo ({zoo['n']} ONNX files): score Spearman {zoo['score_spearman']:.4f} "
          f"(largest difference {zoo['max_abs_score_diff']:.3f}), OOD score Spearman {zoo['ood_score_spearman']:.4f}, "
          f"OOD flags agree {100 * zoo['ood_flag_agreement']:.0f} %")

    search = {}
    if args.search_queries:
        print(f"\n## NB-201 evolution search, {args.search_queries} queries, one thread\n")
        print("| strategy | predictor | wall s | CPU s | predicted | cache hits | s by step |")
        print("|---|---|---|---|---|---|---|")
        for strategy in args.search_strategies.split(","):
            for name, predictor in (("student", student), ("teacher", teacher)):
                if name == "teacher" and not args.search_teacher:
                    continue
                r = search[f"{strategy}/{name}"] = search_seconds(predictor, args.search_queries, strategy)
                print(f"| {strategy} | {name} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} | {r['predicted']} | "
                      f"{r['cache_hits']} | {r['seconds_by_step']} |", flush=True)
    print(json.dumps({"n": args.n, "cg_build_s": cg_s, "speed": speed, "quality": rows, "zoo": zoo, "search": search,
                      "student": {k: student.distill_info_.get(k) for k in ("n_graphs", "epochs", "families",
                                                                            "val_score_spearman")}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
