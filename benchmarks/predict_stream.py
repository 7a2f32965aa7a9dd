"""``gennape predict`` over many files: files/s, per worker count, and whether memory grows.

Copies the bundled example ONNX files into a temporary folder until it holds
``--sizes`` models (hard links, so disk use stays small), then runs the
command's code path (:func:`gennape.transfer.predict.predict_files`, chunked) in a
fresh process per size and worker count (``--workers 1,2``: conversion in that
many processes, :mod:`gennape.transfer.workers`) and reports files/s and peak
resident memory of the process and of its largest worker (sampled every
0.5 s). Memory that does not grow with the number of files is the streaming
property. Files/s depend on free cores: on a shared machine, say how loaded it was.

    python benchmarks/predict_stream.py --checkpoint DIR --sizes 100,1000,3000 --workers 1,2

Measured with ``python benchmarks/predict_stream.py --sizes 300,1500 --workers 1,2``
(the shipped nine-member checkpoint, chunk 64) on a machine of 2 cores shared
with other jobs (load average about 8 throughout, so these are a floor, not
the speed of an idle machine):

    ===== ======= ======= ================ ==============
    files workers files/s peak RSS (MiB)   largest worker
    ===== ======= ======= ================ ==============
      300       1     8.0 424                           --
      300       2    10.3 405                       53 MiB
     1500       1     8.2 426                           --
     1500       2     9.6 412                       53 MiB
    ===== ======= ======= ================ ==============

Conversion is about 70 % of the single-process time (64 example files: 6.3 s
converting, 2.5 s predicting), so on free cores 2 workers can at most about
halve it; memory stays flat in the parent and in each worker.

The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

_CHILD = r"""
import json, os, resource, sys, threading, time
sys.path.insert(0, {root!r})

def descendants_peak_mib(stop, peak):
    # Workers are children of the forkserver, not of this process: walk /proc.
    while not stop.is_set():
        parent = {{}}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                status = open(f"/proc/{{pid}}/status").read()
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            parent[int(pid)] = (int(fields["PPid"]), int(fields.get("VmHWM", "0 kB").split()[0]))
        mine, frontier = set(), {{os.getpid()}}
        while frontier:
            frontier = {{p for p, (pp, _) in parent.items() if pp in frontier}} - mine
            mine |= frontier
        peak[0] = max([peak[0], *(parent[p][1] / 1024 for p in mine)])
        stop.wait(0.5)

import torch
torch.set_num_threads(1)
from gennape.transfer.model import load_estimator
from gennape.transfer.predict import collect_onnx, predict_files
est = load_estimator({ckpt!r})
files = collect_onnx([{folder!r}])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
stop, peak = threading.Event(), [0.0]
sampler = threading.Thread(target=descendants_peak_mib, args=(stop, peak), daemon=True)
sampler.start()
t = time.perf_counter()
run = predict_files(files, est, chunk_size={chunk}, workers={workers})
dt = time.perf_counter() - t
stop.set()
sampler.join()
print(json.dumps({{"files": len(files), "workers": {workers}, "predicted": len(run.predictions),
                  "failed": len(run.failures), "seconds": dt, "files_per_s": len(files) / dt,
                  "ms_per_file": 1000 * dt / len(files), "rss_before_mib": base,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "peak_worker_rss_mib": peak[0]}}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="checkpoint folder (default: the shipped one)")
    parser.add_argument("--sizes", default="100,1000,3000")
    from gennape.transfer.predict import DEFAULT_CHUNK

    parser.add_argument("--chunk", type=int, default=DEFAULT_CHUNK)
    parser.add_argument("--workers", default="1", help="worker counts to compare, e.g. 1,2")
    args = parser.parse_args()

    from gennape.transfer.model import default_checkpoint

    ckpt = str(Path(args.checkpoint).resolve()) if args.checkpoint else str(default_checkpoint())
    examples = sorted((ROOT / "examples" / "onnx").glob("*.onnx"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "models"
        folder.mkdir()
        made = 0
        for size in sorted(int(s) for s in args.sizes.split(",")):
            while made < size:
                src = examples[made % len(examples)]
                dst = folder / f"{made:06d}_{src.name}"
                try:
                    os.link(src, dst)
                except OSError:
                    shutil.copyfile(src, dst)
                made += 1
            for workers in (int(w) for w in args.workers.split(",")):
                code = _CHILD.format(root=str(ROOT), ckpt=ckpt, folder=str(folder), chunk=args.chunk,
                                     workers=workers)
                out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
                row = json.loads(out.stdout.strip().splitlines()[-1])
                rows.append(row)
                print(f"{row['files']:>6} files, {workers} worker(s): {row['seconds']:.1f}s "
                      f"({row['files_per_s']:.1f} files/s), peak RSS {row['peak_rss_mib']:.0f} MiB "
                      f"(after loading {row['rss_before_mib']:.0f} MiB), largest worker "
                      f"{row['peak_worker_rss_mib']:.0f} MiB", flush=True)
    print(json.dumps({"chunk": args.chunk, "cpus": os.cpu_count(), "runs": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
