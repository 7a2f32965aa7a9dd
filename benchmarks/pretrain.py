"""Pretraining cost and in-domain quality on NAS-Bench-101.

Runs the same code as ``gennape pretrain`` (``gennape.pretrain.run.pretrain_nb101``)
and prints wall time per epoch and in total, peak memory (getrusage), and the
NB-101 test Spearman / Kendall tau. The last line is JSON.

    python benchmarks/pretrain.py                      # full 30k labelled set, 5 epochs
    python benchmarks/pretrain.py --limit 3000 --epochs 3   # a quick subset (extrapolate)

Timings depend on the machine's load: on a shared 2-core machine they are
pessimistic.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="NB-101 file (default: the shared 30k labelled JSON)")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--head-epochs", type=int, default=150)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", help="keep the checkpoint here (default: a temporary folder)")
    args = parser.parse_args()

    import torch

    from gennape.cg.data import data_file
    from gennape.pretrain.run import pretrain_nb101

    torch.set_num_threads(args.threads)
    data = args.data or data_file("nb101", "nb101_30k_labelled.json.gz")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out) if args.out else Path(tmp) / "ckpt"
        m = pretrain_nb101(data, out, limit=args.limit, epochs=args.epochs, head_epochs=args.head_epochs,
                           device=args.device, command="benchmarks/pretrain.py " + " ".join(sys.argv[1:]),
                           log=lambda line: print(line, flush=True))
        size = sum(f.stat().st_size for f in out.iterdir() if f.is_file())
    epochs = m["epoch_seconds"]
    result = {
        "architectures": m["n_train"] + m["val"]["n"] + m["test"]["n"],
        "epochs": len(epochs),
        "epoch_seconds_mean": sum(epochs) / max(len(epochs), 1),
        "data_seconds": m["data_seconds"],
        "fit_seconds": m["fit_seconds"],
        "total_seconds": m["total_seconds"],
        "peak_rss_mib": m["peak_rss_mib"],
        "checkpoint_bytes": size,
        "threads": args.threads,
        "test_spearman": m["test"]["spearman"],
        "test_kendall": m["test"]["kendall"],
        "val_spearman": m["val"]["spearman"],
    }
    print(f"per epoch {result['epoch_seconds_mean']:.1f}s, total {result['total_seconds']:.1f}s, "
          f"peak RSS {result['peak_rss_mib']:.0f} MiB, checkpoint {size / 2**20:.2f} MiB")
    print(f"NB-101 test Spearman {result['test_spearman']:.4f}, Kendall {result['test_kendall']:.4f}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
