"""Benchmark families as CGs: exactness, equivalence and speed.

For every registered family (``gennape.cg.families.family_names()``):

* ``params_match_rate``: over ALL labelled records carrying a reference
  ``params`` count, the fraction whose trainable-parameter count
  (``Family.trainable_params``) equals it (exactly; within 0.5% for nb301, whose
  reference is NASLib's rounded millions of a network with non-affine BNs). For
  families with several label sets whose networks differ (TransNAS-Bench-101's
  tasks: the head), every label set is checked (``params_by_option``);
* ``flops_match_rate`` (TransNAS-Bench-101): the fraction whose
  ``Family.benchmark_flops`` is within 1.5% of the file's ``flops`` (the
  tolerance the data README states), and ``flops_max_rel_diff``;
* ``cg_per_s``: spec -> CG throughput of ``family.to_cg`` over every labelled
  spec, in one process and one thread, measured in process CPU time (= time on
  one core; wall time is printed too, it varies with the load of a shared
  machine), and ``build_all_s``: the CPU time of building all of them;
* ``equivalence``: for ``--equiv`` random labelled specs, whether ``to_cg``
  is identical (nodes, attributes, edges) to the CG the ONNX importer builds
  from the exported module (``gennape.cg.families.export``; legacy exporter, BN kept);
  with ``--equiv-params``, for every labelled spec carrying a reference
  ``params`` count instead (NB-201: the 724 NASLib cells);
* ``reference_equivalence``: the same for ``--reference`` random labelled specs
  exported from the network as the benchmark's own code writes it
  (``family.reference_module``: NB-201's AutoDL code with ``none`` as
  ``x.mul(0.)``, DARTS's model code for NB-301).

NB-101 also reports the module-hash agreement over the 30,001 records, and with
``--space`` the time to build the CGs of all 423,624 specs of the space.

    python benchmarks/families.py                   # all families, 50 equivalence specs each
    python benchmarks/families.py --families nb201 nb301 --equiv 0 --reference 200
    python benchmarks/families.py --families nb101 --space

The last line is JSON: ``{family: {"params_match_rate": ..., "cg_per_s": ..., ...}}``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gennape.cg.families import Family, get_family  # noqa: E402

#: Relative tolerance of the params check; exact unless listed.
PARAMS_REL_TOLERANCE = {"nb301": 0.005}


def _timed(fn, items):
    """``(results, cpu seconds, wall seconds)`` of ``fn`` over ``items``."""
    c0, w0 = time.process_time(), time.perf_counter()
    out = [fn(x) for x in items]
    return out, time.process_time() - c0, time.perf_counter() - w0


#: Relative tolerance of the FLOPs check (the data README: "within 1.5%").
FLOPS_REL_TOLERANCE = 0.015


def params_check(name: str, recs, cgs) -> dict:
    """Trainable parameters (``Family.trainable_params``: the CG's params, or for
    NB-201 / TNB-101 micro the count that includes layers the exported graph drops)
    against the file; FLOPs too where the family reproduces the benchmark's counter."""
    fam = get_family(name)
    tol = PARAMS_REL_TOLERANCE.get(name, 0.0)
    checked = matched = 0
    mismatches = []
    flops_checked = flops_matched = 0
    flops_worst = 0.0
    for r, g in zip(recs, cgs):
        ref = r.extra.get("params")
        if ref is None:
            continue
        checked += 1
        params = g.params if type(fam).trainable_params is Family.trainable_params else fam.trainable_params(r.spec)
        ok = params == ref if tol == 0 else abs(params - ref) <= tol * ref
        if ok:
            matched += 1
        elif len(mismatches) < 5:
            mismatches.append({"key": r.key, "params": params, "reference": ref})
        flops = fam.benchmark_flops(r.spec)
        if flops is not None and r.extra.get("flops") is not None:
            rel = abs(flops / 1e6 / r.extra["flops"] - 1)  # the files' flops are millions
            flops_checked += 1
            flops_matched += rel <= FLOPS_REL_TOLERANCE
            flops_worst = max(flops_worst, rel)
    out = {"checked": checked, "matched": matched,
           "params_match_rate": matched / checked if checked else None, "mismatches": mismatches}
    if flops_checked:
        out.update(flops_checked=flops_checked, flops_match_rate=flops_matched / flops_checked,
                   flops_max_rel_diff=flops_worst)
    return out


def equivalence(family, specs, reference: bool = False) -> dict:
    """``Family.equivalence_check`` on ``specs``, timed; an export or import error is reported."""
    c0 = time.perf_counter()
    try:
        out = family.equivalence_check(specs=specs, reference=reference)
    except Exception as err:  # report, do not stop the benchmark
        out = {"checked": 0, "identical": 0, "identical_except_params": 0, "constant_output_skipped": 0,
               "mismatches": [{"error": f"{type(err).__name__}: {err}"[:300]}]}
    return {"specs": len(specs), **out, "seconds": round(time.perf_counter() - c0, 1)}


def bench_family(name: str, args) -> dict:
    family = get_family(name)
    t0 = time.perf_counter()
    recs = family.load_labelled(args.data_dir)
    load_s = time.perf_counter() - t0
    # Duplicate keys (OFA rows differing only in unused blocks) are built once.
    unique = list({r.key: r.spec for r in recs}.values())
    cgs_unique, cpu, wall = _timed(family.to_cg, unique)
    by_key = dict(zip({r.key: None for r in recs}, cgs_unique))
    cgs = [by_key[r.key] for r in recs]
    out = {
        "labelled": len(recs), "distinct_specs": len(unique), "load_s": round(load_s, 2),
        "cg_per_s": round(len(unique) / cpu, 1), "cg_per_s_wall": round(len(unique) / wall, 1),
        "build_all_s": round(cpu, 2), "build_all_wall_s": round(wall, 2),
        "mean_nodes": round(sum(g.num_nodes for g in cgs_unique) / len(cgs_unique), 1),
    }
    out.update(params_check(name, recs, cgs))
    print(f"[{name}] {len(recs)} labelled ({len(unique)} distinct) loaded in {load_s:.1f}s; "
          f"to_cg {out['cg_per_s']:.0f} archs/s (CPU; {out['cg_per_s_wall']:.0f}/s wall), "
          f"all built in {cpu:.1f}s CPU; params match {out['matched']}/{out['checked']}", flush=True)
    for m in out["mismatches"]:
        print(f"[{name}]   params mismatch {m}", flush=True)
    if "flops_checked" in out:
        print(f"[{name}] benchmark FLOPs within {FLOPS_REL_TOLERANCE:.1%}: "
              f"{round(out['flops_match_rate'] * out['flops_checked'])}/{out['flops_checked']} "
              f"(max relative difference {out['flops_max_rel_diff']:.5f})", flush=True)
    # Other label sets whose networks differ (TNB-101 tasks change the head): check them too.
    for key, values in family.label_options.items():
        if key != "task":
            continue  # NB-201's datasets share the CIFAR-10 network and carry no params
        out["params_by_option"] = {values[0]: {k: out[k] for k in ("checked", "matched", "params_match_rate")}}
        for value in values[1:]:  # the first is the default, checked above
            other = family.load_labelled(args.data_dir, **{key: value})
            res = params_check(name, other, [family.to_cg(r.spec) for r in other])
            out["params_by_option"][value] = res
            flops = (f"; FLOPs within {FLOPS_REL_TOLERANCE:.1%} {round(res['flops_match_rate'] * res['flops_checked'])}"
                     f"/{res['flops_checked']}" if "flops_checked" in res else "")
            print(f"[{name}] {key}={value}: params match {res['matched']}/{res['checked']}{flops}", flush=True)

    if name == "nb101":
        from gennape.cg.families.nb101 import build_cg

        hashes_ok = sum(r.spec.hash == r.key for r in recs)
        out["hash_match_rate"] = hashes_ok / len(recs)
        sample = random.Random(args.seed).sample(unique, min(500, len(unique)))
        same = sum(build_cg(s) == build_cg(s, reference=True) for s in sample)
        _, ref_cpu, _ = _timed(lambda s: build_cg(s, reference=True), sample)
        out["fast_builder_equals_graph_builder"] = f"{same}/{len(sample)}"
        out["graph_builder_cg_per_s"] = round(len(sample) / ref_cpu, 1)
        print(f"[nb101] module hash matches {hashes_ok}/{len(recs)}; fast builder == GraphBuilder "
              f"on {same}/{len(sample)}; GraphBuilder path {out['graph_builder_cg_per_s']:.0f} archs/s", flush=True)
        if args.space:
            c0, w0 = time.process_time(), time.perf_counter()
            specs = list(family.iter_specs(args.data_dir))
            parse_cpu = time.process_time() - c0
            _, cpu, wall = _timed(family.to_cg, specs)
            out["space"] = {"specs": len(specs), "parse_cpu_s": round(parse_cpu, 1),
                            "build_cpu_s": round(cpu, 1), "build_wall_s": round(wall, 1),
                            "total_wall_s": round(time.perf_counter() - w0, 1),
                            "cg_per_s": round(len(specs) / cpu, 1)}
            print(f"[nb101] whole space: {len(specs)} specs parsed in {parse_cpu:.0f}s CPU, "
                  f"CGs built in {cpu:.0f}s CPU ({wall:.0f}s wall)", flush=True)

    runs = []
    if args.equiv_params:
        runs.append(("equivalence", [r.spec for r in recs if r.extra.get("params") is not None], False))
    elif args.equiv > 0:
        runs.append(("equivalence", random.Random(args.seed).sample(unique, min(args.equiv, len(unique))), False))
    if args.reference > 0 and family.reference_module(unique[0]) is not None:
        runs.append(("reference_equivalence",
                     random.Random(args.seed + 1).sample(unique, min(args.reference, len(unique))), True))
    for key, sample, reference in runs:
        out[key] = eq = equivalence(family, sample, reference)
        what = "reference network" if reference else "exported module"
        print(f"[{name}] fast CG == ONNX-import CG of the {what}: {eq['identical']}/{eq['checked']} identical, "
              f"{eq['identical_except_params']}/{eq['checked']} identical but for params, "
              f"{eq['constant_output_skipped']} constant-output specs skipped ({eq['seconds']}s)", flush=True)
        for f in eq["mismatches"]:
            print(f"[{name}]   {f}", flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="*", help="default: every registered family")
    parser.add_argument("--equiv", type=int, default=50, help="random specs for the ONNX equivalence check")
    parser.add_argument("--equiv-params", action="store_true",
                        help="equivalence over every labelled spec with a reference params count instead")
    parser.add_argument("--reference", type=int, default=200,
                        help="random specs for the equivalence check of the benchmark's own network code")
    parser.add_argument("--space", action="store_true", help="nb101: also build all 423,624 specs")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from gennape.cg.families import family_names

    names = args.families or list(family_names())
    results = {}
    for name in names:
        results[name] = bench_family(name, args)
    print()
    print(f"{'family':13s} {'labelled':>9s} {'params match':>13s} {'FLOPs match':>12s} {'archs/s (CPU)':>14s} "
          f"{'build all (s)':>14s} {'== ONNX import':>15s}")
    for name, r in results.items():
        eq = r.get("equivalence")
        eq_text = f"{eq['identical']}/{eq['checked']}" if eq else "-"
        rate, flops = r["params_match_rate"], r.get("flops_match_rate")
        print(f"{name:13s} {r['labelled']:9d} {('-' if rate is None else f'{rate:.4f}'):>13s} "
              f"{('-' if flops is None else f'{flops:.4f}'):>12s} "
              f"{r['cg_per_s']:14.0f} {r['build_all_s']:14.1f} {eq_text:>15s}")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
