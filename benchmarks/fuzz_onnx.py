"""Fuzzing the ONNX importer: every input must end in a valid CG or a
one-line ConversionError within a deadline (the harness of
tests/test_hostile_onnx.py, ``tests/_hostile.py``).

Two engines, the same harness:

* ``atheris`` (coverage-guided libFuzzer, when ``import atheris`` works; it is
  not a dependency: ``pip install atheris``), seeded with the onnx package's
  small light models; runs in a child process for ``--seconds``.
* ``mutate`` (always available): a seeded random-mutation loop over the same
  seeds; half the cases mutate bytes (bit flips, splices, truncations,
  duplicated or deleted spans, chunks copied between models), half mutate the
  parsed graph (extreme dims and attributes, other op types, rewired or
  duplicated or deleted nodes, symbolic or absurd input shapes, odd opsets).

    python benchmarks/fuzz_onnx.py [--engine auto|atheris|mutate] [--seconds 60] [--seed 0]

Prints the cases tried, failures (each with its cause; the failing inputs are
saved under --crash-dir) and outcome counts; the last line is JSON.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the shared harness, tests/_hostile.py

SEEDS = ("bvlc_alexnet", "zfnet512", "vgg19", "squeezenet", "inception_v1")
#: Per-case deadline (s): generous, a hang is what it must catch.
DEADLINE_S = 10.0


def seed_inputs() -> dict[str, bytes]:
    import onnx

    light = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
    return {name: (light / f"light_{name}.onnx").read_bytes() for name in SEEDS}


class Tally:
    """Counts outcomes; keeps one example input per distinct failure."""

    def __init__(self, crash_dir: Path | None):
        self.cases = 0
        self.outcomes: collections.Counter = collections.Counter()
        self.failures: dict[str, int] = {}
        self.crash_dir = crash_dir
        self.slowest_s = 0.0

    def run(self, data: bytes, **kwargs) -> None:
        from _hostile import HostileFailure, convert_hostile

        self.cases += 1
        start = time.perf_counter()
        try:
            kind, _ = convert_hostile(data, deadline_s=DEADLINE_S, **kwargs)
            self.outcomes[kind] += 1
        except HostileFailure as failure:
            cause = str(failure).splitlines()[0][:200]
            self.outcomes["FAILURE"] += 1
            if cause not in self.failures and self.crash_dir is not None:
                self.crash_dir.mkdir(parents=True, exist_ok=True)
                (self.crash_dir / f"failure-{len(self.failures)}.onnx").write_bytes(data)
            self.failures[cause] = self.failures.get(cause, 0) + 1
        self.slowest_s = max(self.slowest_s, time.perf_counter() - start)

    def to_dict(self) -> dict:
        return {"cases": self.cases, "failures": self.outcomes["FAILURE"], "cg": self.outcomes["cg"],
                "conversion_errors": self.outcomes["error"], "distinct_failures": self.failures,
                "slowest_case_s": round(self.slowest_s, 3)}


# ------------------------------------------------------------- mutate engine
def mutate(rng: random.Random, data: bytes, others: list[bytes]) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not b:
            break
        op = rng.randrange(6)
        at = rng.randrange(len(b))
        if op == 0:  # bit flips
            b[at] ^= 1 << rng.randrange(8)
        elif op == 1:  # random bytes spliced in
            b[at:at + rng.randint(1, 8)] = rng.randbytes(rng.randint(1, 8))
        elif op == 2:  # truncation
            del b[at:]
        elif op == 3:  # a span deleted
            del b[at:at + rng.randint(1, 64)]
        elif op == 4:  # a span duplicated
            b[at:at] = b[at:at + rng.randint(1, 64)]
        else:  # a chunk of another model
            other = rng.choice(others)
            start = rng.randrange(len(other))
            b[at:at + rng.randint(0, 64)] = other[start:start + rng.randint(1, 256)]
    # Interesting varints: protobuf lengths and dims pushed to extremes.
    if b and rng.random() < 0.2:
        at = rng.randrange(len(b))
        b[at:at + 1] = rng.choice([b"\xff\xff\xff\xff\x0f", b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", b"\x00"])
    return bytes(b)


#: Values that break arithmetic: zero, negative, huge, int64 extremes.
EXTREMES = (0, -1, 1, 2, 7, 10**6, 10**12, 2**31 - 1, 2**31, 2**62, 2**63 - 1, -(2**63))


def mutate_proto(rng: random.Random, data: bytes) -> bytes:
    """Structure-aware mutation: parse, change the graph, serialise (reaches
    the op handlers far more often than byte noise does)."""
    import onnx

    from gennape.cg.onnx_import import supported_ops

    m = onnx.ModelProto()
    m.ParseFromString(data)
    g = m.graph
    ops = list(supported_ops())
    tensors = [t for n in g.node for t in n.output] + [i.name for i in g.input] + ["", "ghost"]
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(8)
        if op == 0 and g.initializer:  # an initializer's dims
            t = rng.choice(g.initializer)
            if t.dims:
                t.dims[rng.randrange(len(t.dims))] = rng.choice(EXTREMES)
        elif op == 1 and g.node:  # an int / ints attribute
            n = rng.choice(g.node)
            ints = [a for a in n.attribute if a.type in (onnx.AttributeProto.INT, onnx.AttributeProto.INTS)]
            if ints:
                a = rng.choice(ints)
                if a.type == onnx.AttributeProto.INT:
                    a.i = rng.choice(EXTREMES)
                elif a.ints:
                    a.ints[rng.randrange(len(a.ints))] = rng.choice(EXTREMES)
        elif op == 2 and g.node:  # another op type
            rng.choice(g.node).op_type = rng.choice(ops)
        elif op == 3 and g.node:  # rewired input (cycles, dangling, empty)
            n = rng.choice(g.node)
            if n.input:
                n.input[rng.randrange(len(n.input))] = rng.choice(tensors)
        elif op == 4 and g.node:  # a node removed
            del g.node[rng.randrange(len(g.node))]
        elif op == 5 and g.node:  # a node duplicated (tensors produced twice)
            g.node.append(rng.choice(g.node))
        elif op == 6 and g.input:  # the input shape
            dims = g.input[0].type.tensor_type.shape.dim
            if dims:
                d = dims[rng.randrange(len(dims))]
                if rng.random() < 0.3:
                    d.dim_param = "N"
                else:
                    d.dim_value = rng.choice(EXTREMES[:8])
        elif op == 7:  # the opset
            for o in m.opset_import:
                o.version = rng.choice((1, 6, 7, 9, 11, 13, 17, 21, 22, 99))
    return m.SerializeToString()


def run_mutate(seconds: float, max_cases: int, seed: int, crash_dir: Path | None) -> Tally:
    rng = random.Random(seed)
    seeds = list(seed_inputs().values())
    tally = Tally(crash_dir)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and tally.cases < max_cases:
        if rng.random() < 0.5:
            data = mutate_proto(rng, rng.choice(seeds))
        else:
            data = mutate(rng, rng.choice(seeds), seeds)
        tally.run(data, unknown_ops=rng.choice(("error", "other")))
    return tally


# ------------------------------------------------------------ atheris engine
def atheris_child(stats_path: Path, crash_dir: Path, argv: list[str]) -> None:
    """Runs inside the child process: libFuzzer calls ``one_input`` until its
    ``-max_total_time`` / ``-runs`` ends, then exits the process; the tally
    is written to ``stats_path`` as it goes."""
    import atheris

    with atheris.instrument_imports(include=["cg"]):
        import gennape.cg.onnx_import  # noqa: F401  (instrumented for coverage feedback)

    tally = Tally(crash_dir)
    last_write = [0.0]

    def one_input(data: bytes) -> None:
        before = tally.outcomes["FAILURE"]
        tally.run(data, unknown_ops="other" if data[:1] == b"\x01" else "error")
        now = time.monotonic()
        if tally.outcomes["FAILURE"] != before or now - last_write[0] > 1.0:
            stats_path.write_text(json.dumps(tally.to_dict()))
            last_write[0] = now

    atheris.Setup(argv, one_input)
    atheris.Fuzz()


def run_atheris(seconds: float, max_cases: int, crash_dir: Path | None) -> Tally:
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        for name, data in seed_inputs().items():
            (corpus / name).write_bytes(data)
        stats = Path(tmp) / "stats.json"
        crashes = crash_dir or Path(tmp) / "crashes"
        crashes.mkdir(parents=True, exist_ok=True)
        argv = [f"-max_total_time={int(seconds)}", f"-runs={max_cases}", "-timeout=30", "-rss_limit_mb=4096",
                f"-artifact_prefix={crashes}/", str(corpus)]
        proc = subprocess.run([sys.executable, __file__, "--_atheris-child", str(stats), str(crashes), *argv],
                              capture_output=True, text=True, timeout=seconds + 120)
        if not stats.is_file():
            raise SystemExit(f"atheris child produced no statistics (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
        result = json.loads(stats.read_text())
    tally = Tally(None)
    tally.cases = result["cases"]
    tally.outcomes.update({"FAILURE": result["failures"], "cg": result["cg"], "error": result["conversion_errors"]})
    tally.failures = result["distinct_failures"]
    tally.slowest_s = result["slowest_case_s"]
    return tally


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--_atheris-child":
        atheris_child(Path(sys.argv[2]), Path(sys.argv[3]), [sys.argv[0], *sys.argv[4:]])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("auto", "atheris", "mutate"), default="auto")
    parser.add_argument("--seconds", type=float, default=60.0, help="time budget")
    parser.add_argument("--max-cases", type=int, default=10**9, help="stop after this many cases")
    parser.add_argument("--seed", type=int, default=0, help="seed of the mutate engine")
    parser.add_argument("--crash-dir", type=Path, default=None, help="save failing inputs here")
    args = parser.parse_args()

    engine = args.engine
    if engine == "auto":
        try:
            import atheris  # noqa: F401

            engine = "atheris"
        except ImportError:
            engine = "mutate"
    start = time.perf_counter()
    if engine == "atheris":
        tally = run_atheris(args.seconds, args.max_cases, args.crash_dir)
    else:
        tally = run_mutate(args.seconds, args.max_cases, args.seed, args.crash_dir)
    elapsed = time.perf_counter() - start
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
               resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    result = {"engine": engine, **tally.to_dict(), "seconds": round(elapsed, 1),
              "cases_per_s": round(tally.cases / max(elapsed, 1e-9), 1), "peak_rss_mib": round(peak, 1)}
    print(f"engine {engine}: {tally.cases} cases in {elapsed:.0f} s, {tally.outcomes['FAILURE']} failure(s); "
          f"{tally.outcomes['cg']} valid CGs, {tally.outcomes['error']} one-line ConversionErrors; "
          f"slowest case {tally.slowest_s:.2f} s; peak RSS {peak:.0f} MiB")
    for cause, count in sorted(tally.failures.items(), key=lambda kv: -kv[1]):
        print(f"  {count:6d} x {cause}")
    print(json.dumps(result))
    return 1 if tally.outcomes["FAILURE"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
