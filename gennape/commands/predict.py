"""``gennape predict PATH... [--checkpoint DIR] [--output FILE.csv|FILE.json] [--input-shape SHAPE]``

Predicts the accuracy of every ONNX model named (folders are searched
recursively for ``*.onnx``), ranks them, and prints a table (best first) with
fuzzy memberships and an out-of-distribution score and flag; ``--output``
writes the same as CSV or JSON (atomically).

Exit codes: 0 all predicted; 1 some files failed (each reported on stderr as
``path: cause`` and skipped, the others predicted and written); 2 nothing could
be predicted (bad arguments, missing paths, no ``.onnx`` found, unusable
checkpoint, every file failed).
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = 'exit codes: 0 every file predicted; 1 some files failed (each reported on stderr and skipped, the others predicted and written); 2 usage or input error, nothing predicted.'
    parser.add_argument("paths", nargs="+", metavar="PATH", help=".onnx files or folders (searched recursively)")
    parser.add_argument("--checkpoint", metavar="DIR", default=None,
                        help="estimator checkpoint folder (default: the one shipped with gennape)")
    parser.add_argument("--output", "-o", metavar="FILE", default=None,
                        help="also write the results to FILE.csv or FILE.json")
    parser.add_argument("--input-shape", metavar="SHAPE", default=None,
                        help="first input's shape for models with symbolic dimensions: 1,3,224,224 "
                             "(or C,H,W = 3,224,224, batch 1 added)")
    parser.add_argument("--unknown-ops", choices=("error", "other"), default="error",
                        help="ONNX ops with no handler: fail the file (default) or map them to 'other'")
    parser.add_argument("--chunk-size", type=int, default=64, metavar="N",
                        help="files converted and predicted together (bounds memory; default 64)")
    parser.add_argument("--quiet", "-q", action="store_true", help="do not print the table")


def run(args: argparse.Namespace) -> int:
    import sys

    from gennape.cg.errors import GennapeError
    from gennape.transfer.model import load_estimator
    from gennape.transfer.predict import (
        Progress, check_output_path, collect_onnx, format_table, parse_input_shape, predict_files, write_output,
    )

    if args.chunk_size < 1:
        raise GennapeError("--chunk-size must be at least 1")
    if args.output is not None:
        check_output_path(args.output)  # fail before the slow part
    input_shape = parse_input_shape(args.input_shape)
    files = collect_onnx(args.paths)
    if not files:
        raise GennapeError(f"no .onnx files found in {', '.join(args.paths)}")
    estimator = load_estimator(args.checkpoint)
    progress = Progress("gennape predict")
    try:
        result = predict_files(files, estimator, input_shape=input_shape, unknown_ops=args.unknown_ops,
                               chunk_size=args.chunk_size, progress=progress)
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
