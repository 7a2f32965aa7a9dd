"""``gennape predict PATH... [--checkpoint DIR] [--output FILE.csv|FILE.json] [--input-shape SHAPE] [--workers N]``

Predicts the accuracy of every ONNX model named (folders are searched
recursively for ``*.onnx``), ranks them, and prints a table (best first) with
the uncertainty of each accuracy (an ensemble's spread over its members; ``-``
for a single estimator), fuzzy memberships and an out-of-distribution score
and flag, and the scale the accuracies are on (the checkpoint's label, e.g.
NAS-Bench-101's CIFAR-10 validation accuracy, or "your labels (LABELS.csv)"
after ``gennape finetune``); ``--output``
writes the same as CSV or JSON (atomically). ``--workers N`` converts the
files in N processes (:mod:`gennape.transfer.workers`); the output is the same.
``--fast`` predicts with the checkpoint's distilled student (``gennape distill``)
instead of the ensemble: one small GNN, no memberships, the ensemble's spread
as predicted by the student.

Exit codes: 0 all predicted; 1 some files failed (each reported on stderr as
``path: cause`` and skipped, the others predicted and written); 2 nothing could
be predicted (bad arguments, missing paths, no ``.onnx`` found, unusable
checkpoint, every file failed).
"""

from __future__ import annotations

import argparse

from gennape.commands._options import (
    add_checkpoint, add_chunk_size, add_input_shape, add_unknown_ops, add_workers,
)

HELP = "predict accuracy and rank of ONNX models"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = 'exit codes: 0 every file predicted; 1 some files failed (each reported on stderr and skipped, the others predicted and written); 2 usage or input error, nothing predicted.'
    parser.add_argument("paths", nargs="+", metavar="PATH", help=".onnx files or folders (searched recursively)")
    add_checkpoint(parser)
    parser.add_argument("--output", "-o", metavar="FILE", default=None,
                        help="also write the results to FILE.csv or FILE.json")
    add_input_shape(parser)
    add_unknown_ops(parser)
    add_chunk_size(parser)
    add_workers(parser)
    parser.add_argument("--fast", action="store_true",
                        help="predict with the checkpoint's distilled student (gennape distill): one small GNN "
                             "instead of the ensemble, ~20x faster, ranks as measured in docs/results.md")
    parser.add_argument("--quiet", "-q", action="store_true", help="do not print the table")


def run(args: argparse.Namespace) -> int:
    import sys

    from gennape.cg.errors import GennapeError
    from gennape.transfer.distill import choose_predictor
    from gennape.transfer.model import load_estimator
    from gennape.transfer.predict import (
        Progress, check_output_path, collect_onnx, format_table, predict_files, write_output,
    )

    if args.output is not None:
        check_output_path(args.output)  # fail before the slow part
    files = collect_onnx(args.paths)
    if not files:
        raise GennapeError(f"no .onnx files found in {', '.join(args.paths)}")
    estimator = choose_predictor(args.checkpoint, "student")[0] if args.fast else load_estimator(args.checkpoint)
    progress = Progress("gennape predict")
    try:
        result = predict_files(files, estimator, input_shape=args.input_shape, unknown_ops=args.unknown_ops,
                               chunk_size=args.chunk_size, workers=args.workers, progress=progress)
    finally:
        progress.close()
    result.checkpoint = str(args.checkpoint or "default")
    for failure in result.failures:
        print(f"gennape predict: {failure.path}: {failure.error}", file=sys.stderr)
    if args.output is not None:
        write_output(result, args.output)  # failures are listed there too
    if not result.predictions:
        raise GennapeError(f"none of the {len(files)} file(s) could be predicted")
    if not args.quiet:
        print(format_table(result))
    if result.failures:
        print(f"gennape predict: {len(result.failures)} of {len(files)} file(s) failed", file=sys.stderr)
        return 1
    return 0
