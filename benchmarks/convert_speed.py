"""Conversion speed: median milliseconds per model for the onnx package's nine
weightless model-zoo models, file read + shape inference + conversion included.

    python benchmarks/convert_speed.py [--repeats 15]

Prints a table, then (last line) JSON ``{"resnet50_ms": ..., ...}`` (median
wall-clock ms) plus ``"<model>_cpu_ms"`` (median CPU time of the process, the
fairer figure when other jobs share the machine).
Targets (CPU time, on the project's 2-core machine): ResNet-50 <= 20 ms,
DenseNet-121 <= 80 ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import onnx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from gennape.cg.onnx_import import from_onnx  # noqa: E402

MODELS = ("bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50",
          "shufflenet", "squeezenet", "vgg19", "zfnet512")
TARGETS_CPU_MS = {"resnet50": 20.0, "densenet121": 80.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed runs per model (after 2 warm-up runs)")
    args = parser.parse_args()
    light = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
    results = {}
    print(f"{'model':<14} {'onnx nodes':>10} {'CG nodes':>9} {'median ms':>10} {'min ms':>8} {'cpu ms':>8}")
    for name in MODELS:
        path = light / f"light_{name}.onnx"
        onnx_nodes = len(onnx.load(path).graph.node)
        for _ in range(2):
            cg = from_onnx(path)
        times, cpu = [], []
        for _ in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            cg = from_onnx(path)
            times.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
        med, cpu_med = statistics.median(times), statistics.median(cpu)
        results[f"{name}_ms"] = round(med, 2)
        results[f"{name}_cpu_ms"] = round(cpu_med, 2)
        target = f"  (target <= {TARGETS_CPU_MS[name]:.0f} cpu ms)" if name in TARGETS_CPU_MS else ""
        print(f"{name:<14} {onnx_nodes:>10} {cg.num_nodes:>9} {med:>10.1f} {min(times):>8.1f} {cpu_med:>8.1f}{target}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
