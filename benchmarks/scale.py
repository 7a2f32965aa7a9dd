"""Scale: a generated 20,000-node ONNX model converts and predicts, and
``gennape predict`` over 10,000 files streams (memory does not grow with the
number of files).

    python benchmarks/scale.py [--checkpoint DIR] [--nodes 20000] [--files 1000,10000]

1. Writes a weightless residual network of about ``--nodes`` CG nodes (conv /
   relu / add blocks, weights as ConstantOfShape), then in a fresh process
   converts it (wall time, peak RSS) and predicts it (wall time, peak RSS).
2. Writes 10,000 small, distinct, weightless conv nets into a temporary
   folder, and for each size in ``--files`` runs ``gennape predict FOLDER
   --output out.csv`` in a fresh process, reporting wall time, time per file
   and the process's peak RSS. Streaming means the peak RSS at 10,000 files
   stays close to the one at 1,000.

Without ``--checkpoint`` the shipped checkpoint is used when present; else a
throwaway estimator with the default architecture is fitted on a few hundred
generated networks (timing and memory depend on the architecture, not on
what the weights learned). The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# --------------------------------------------------------- model generators
def _weight(nodes, inits, name: str, dims: list[int]) -> None:
    """A weightless weight: an int64 shape initializer and a ConstantOfShape."""
    from onnx import TensorProto, helper, numpy_helper

    inits.append(numpy_helper.from_array(np.asarray(dims, dtype=np.int64), f"{name}_shape"))
    value = helper.make_tensor("value", TensorProto.FLOAT, [1], [0.01])
    nodes.append(helper.make_node("ConstantOfShape", [f"{name}_shape"], [name], value=value))


def _model(nodes, inits, in_shape, out_name: str, name: str):
    from onnx import TensorProto, helper

    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
                              [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, None)], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def deep_model(cg_nodes: int, channels: int = 8, size: int = 8):
    """A residual chain with about ``cg_nodes`` CG nodes: blocks of
    conv-relu-conv-add-relu (5 CG nodes each) after a stem conv."""
    from onnx import helper

    nodes, inits = [], []
    _weight(nodes, inits, "w_stem", [channels, 3, 3, 3])
    nodes.append(helper.make_node("Conv", ["x", "w_stem"], ["h0"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]))
    x = "h0"
    for b in range(-(-(cg_nodes - 3) // 5)):  # ceil: at least cg_nodes
        for k in (1, 2):
            _weight(nodes, inits, f"w{b}_{k}", [channels, channels, 3, 3])
        nodes += [
            helper.make_node("Conv", [x, f"w{b}_1"], [f"c{b}a"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", [f"c{b}a"], [f"r{b}a"]),
            helper.make_node("Conv", [f"r{b}a", f"w{b}_2"], [f"c{b}b"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
            helper.make_node("Add", [x, f"c{b}b"], [f"s{b}"]),
            helper.make_node("Relu", [f"s{b}"], [f"h{b + 1}"]),
        ]
        x = f"h{b + 1}"
    return _model(nodes, inits, (1, 3, size, size), x, f"deep{cg_nodes}")


def small_model(index: int):
    """Network ``index`` of a family of small distinct conv nets (depth,
    widths, kernels and pooling drawn from a generator seeded by ``index``)."""
    from onnx import helper

    rng = np.random.default_rng(index)
    nodes, inits = [], []
    c_in, x = 3, "x"
    for layer in range(int(rng.integers(2, 7))):
        c_out, k = int(rng.choice([8, 16, 24, 32])), int(rng.choice([1, 3, 5]))
        _weight(nodes, inits, f"w{layer}", [c_out, c_in, k, k])
        nodes.append(helper.make_node("Conv", [x, f"w{layer}"], [f"c{layer}"], kernel_shape=[k, k],
                                      pads=[k // 2] * 4))
        nodes.append(helper.make_node(str(rng.choice(["Relu", "Sigmoid", "HardSwish"])), [f"c{layer}"], [f"a{layer}"]))
        x, c_in = f"a{layer}", c_out
        if rng.random() < 0.4:
            nodes.append(helper.make_node("MaxPool", [x], [f"p{layer}"], kernel_shape=[2, 2], strides=[2, 2]))
            x = f"p{layer}"
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["g"]))
    nodes.append(helper.make_node("Flatten", ["g"], ["f"]))
    _weight(nodes, inits, "fc", [10, c_in])
    nodes.append(helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1))
    return _model(nodes, inits, (1, 3, 32, 32), "y", f"small{index}")


# ------------------------------------------------------------ measurements
def run_measured(args: list[str], timeout: float) -> dict:
    """Run a command: exit code, wall time, stdout and stderr."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise SystemExit(f"timed out after {timeout} s: {' '.join(args[:4])} ...")
    wall = time.perf_counter() - start
    return {"returncode": proc.returncode, "wall_s": wall, "stdout": out, "stderr": err}


#: Runs the command given as argv in a child and prints that child's peak RSS
#: (KiB) last: RUSAGE_CHILDREN is a maximum over all children, so each
#: measured command gets a wrapper process of its own.
_WRAPPER = r"""
import os, subprocess, sys, resource
code = subprocess.call(sys.argv[1:])
print("PEAK_RSS_KIB", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def measured(args: list[str], timeout: float) -> dict:
    r = run_measured([sys.executable, "-c", _WRAPPER, *args], timeout)
    peak = [line for line in r["stderr"].splitlines() if line.startswith("PEAK_RSS_KIB")]
    r["peak_rss_mib"] = int(peak[-1].split()[1]) / 1024 if peak else float("nan")
    r["stderr"] = "\n".join(line for line in r["stderr"].splitlines() if not line.startswith("PEAK_RSS_KIB"))
    if r["returncode"] not in (0, 1):
        raise SystemExit(f"{' '.join(args[:4])} ... failed ({r['returncode']}):\n{r['stderr'][-2000:]}")
    return r


_DEEP_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
from gennape.cg.onnx_import import from_onnx  # onnx + numpy only: torch comes after, for prediction
t = time.perf_counter()
cg = from_onnx({path!r})
convert_s = time.perf_counter() - t
convert_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
import torch
torch.set_num_threads(1)
from gennape.transfer.model import load_estimator
est = load_estimator({ckpt!r})
t = time.perf_counter()
out = est.predict_details([cg])
predict_s = time.perf_counter() - t
print(json.dumps({{"cg_nodes": cg.num_nodes, "cg_edges": cg.num_edges, "convert_s": convert_s,
                  "convert_peak_rss_mib": convert_rss, "predict_s": predict_s,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "predicted_accuracy": float(out["accuracy"][0])}}))
"""


def throwaway_checkpoint(folder: Path) -> Path:
    """The default estimator architecture, fitted briefly on generated networks."""
    import torch

    from gennape.cg.onnx_import import from_onnx
    from gennape.pretrain.estimator import GennapeEstimator

    torch.set_num_threads(1)
    cgs = [from_onnx(small_model(100_000 + i)) for i in range(200)]
    y = np.asarray([0.8 + 0.1 * np.tanh(np.log10(max(cg.params, 1)) - 4) for cg in cgs])
    est = GennapeEstimator(epochs=1, head_epochs=10, seed=0).fit(cgs, y)
    return est.save(folder / "checkpoint")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="checkpoint folder (default: shipped, else a throwaway one)")
    parser.add_argument("--nodes", type=int, default=20_000, help="CG nodes of the generated deep model")
    parser.add_argument("--files", default="1000,10000", help="file counts for the streaming measurement")
    from gennape.transfer.predict import DEFAULT_CHUNK

    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK, help="gennape predict --chunk-size")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.files.split(",") if s.strip())  # --files "" skips part 2
    result: dict = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        from gennape.transfer.model import default_checkpoint

        if args.checkpoint:
            ckpt, origin = Path(args.checkpoint).resolve(), "given"
        elif (default_checkpoint() / "config.json").is_file():
            ckpt, origin = default_checkpoint(), "shipped"
        else:
            t = time.perf_counter()
            ckpt, origin = throwaway_checkpoint(tmp), "throwaway"
            print(f"checkpoint: fitted a throwaway estimator (default architecture) in {time.perf_counter() - t:.0f} s")
        result["checkpoint"] = origin

        # 1. one huge model
        import onnx

        deep = tmp / "deep.onnx"
        onnx.save(deep_model(args.nodes), deep)
        r = measured([sys.executable, "-c", _DEEP_CHILD.format(root=str(ROOT), path=str(deep), ckpt=str(ckpt))],
                     timeout=1800)
        big = json.loads(r["stdout"].strip().splitlines()[-1])
        big["file_kib"] = deep.stat().st_size / 1024
        result["deep_model"] = big
        print(f"deep model: {big['cg_nodes']:,} CG nodes ({big['file_kib']:.0f} KiB file): convert "
              f"{big['convert_s']:.2f} s (peak RSS {big['convert_peak_rss_mib']:.0f} MiB), predict "
              f"{big['predict_s']:.2f} s (peak RSS {big['peak_rss_mib']:.0f} MiB)")
        r = measured([sys.executable, "-m", "gennape", "predict", str(deep), "--checkpoint", str(ckpt), "--quiet"],
                     timeout=1800)
        result["deep_model"]["cli_wall_s"] = r["wall_s"]
        result["deep_model"]["cli_peak_rss_mib"] = r["peak_rss_mib"]
        print(f"  gennape predict on it: {r['wall_s']:.1f} s wall, peak RSS {r['peak_rss_mib']:.0f} MiB")

        # 2. streaming over many files
        if not sizes:
            print(json.dumps(result))
            return 0
        pool = tmp / "pool"
        pool.mkdir()
        t = time.perf_counter()
        for i in range(sizes[-1]):
            (pool / f"net{i:05d}.onnx").write_bytes(small_model(i).SerializeToString())
        print(f"wrote {sizes[-1]:,} small ONNX files in {time.perf_counter() - t:.0f} s "
              f"({sum(p.stat().st_size for p in pool.iterdir()) / 2**20:.1f} MiB)")
        rows = []
        for n in sizes:
            folder = tmp / f"n{n}"
            folder.mkdir()
            for i in range(n):
                os.link(pool / f"net{i:05d}.onnx", folder / f"net{i:05d}.onnx")
            out = tmp / f"out{n}.csv"
            r = measured([sys.executable, "-m", "gennape", "predict", str(folder), "--checkpoint", str(ckpt),
                          "--output", str(out), "--quiet", "--chunk-size", str(args.chunk_size)], timeout=3600)
            lines = out.read_text().count("\n") - 1
            row = {"files": n, "rows_written": lines, "wall_s": r["wall_s"], "ms_per_file": 1000 * r["wall_s"] / n,
                   "peak_rss_mib": r["peak_rss_mib"], "exit_code": r["returncode"]}
            rows.append(row)
            print(f"gennape predict over {n:>6,} files: {r['wall_s']:7.1f} s ({row['ms_per_file']:.1f} ms/file), "
                  f"peak RSS {r['peak_rss_mib']:.0f} MiB, {lines:,} rows, exit {r['returncode']}")
        result["predict_stream"] = rows
        if len(rows) > 1:
            first, last = rows[0], rows[-1]
            result["rss_growth_ratio"] = last["peak_rss_mib"] / first["peak_rss_mib"]
            # Start-up (imports, checkpoint) cancels out: the cost of each further file.
            result["marginal_ms_per_file"] = 1000 * (last["wall_s"] - first["wall_s"]) / (last["files"] - first["files"])
            print(f"peak RSS at {last['files']:,} files / at {first['files']:,} files: "
                  f"{result['rss_growth_ratio']:.3f}; {result['marginal_ms_per_file']:.1f} ms per further file")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
