"""Options that several commands share, each defined once here.

A command calls ``add_checkpoint(parser)`` etc. in its ``add_arguments``;
values are parsed by argparse (``--input-shape`` arrives as a tuple of ints, a
malformed one is a usage error like any other). Imports stay light: building
the parser must not load torch or onnx.
"""

from __future__ import annotations

import argparse
import shlex

from gennape.cg.import_options import UNKNOWN_OPS_CHOICES, InputShapeError, parse_input_shape
from gennape.transfer.predict import DEFAULT_CHUNK

#: What each ``--unknown-ops`` choice does, for the help text.
UNKNOWN_OPS_HELP = {
    "error": "fails the file, listing every unsupported op",
    "other": "maps them to the catch-all op 'other', with a warning",
}


def add_checkpoint(parser: argparse.ArgumentParser, what: str = "estimator checkpoint folder") -> None:
    """``--checkpoint DIR|NAME``; ``None`` means the default checkpoint shipped with gennape."""
    parser.add_argument("--checkpoint", metavar="DIR", default=None,
                        help=f"{what}, or a shipped checkpoint's name: default (every labelled family) or nb101 "
                             "(NB-101 only, the paper's protocol) (default: default)")


def _input_shape(text: str) -> tuple[int, ...]:
    try:
        return parse_input_shape(text)
    except InputShapeError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_input_shape(parser: argparse.ArgumentParser) -> None:
    """``--input-shape 1x3x224x224`` (or ``1,3,224,224``), parsed by
    :func:`gennape.cg.import_options.parse_input_shape`."""
    parser.add_argument("--input-shape", metavar="SHAPE", type=_input_shape, default=None,
                        help="shape of the first input for models with symbolic dimensions: 1x3x224x224 or "
                             "1,3,224,224; without the batch dimension (3x224x224) batch 1 is added")


def add_unknown_ops(parser: argparse.ArgumentParser) -> None:
    """``--unknown-ops {error,other}``: the importer's choices, first one the default."""
    default = UNKNOWN_OPS_CHOICES[0]
    choices = "; ".join(f"{c!r} {UNKNOWN_OPS_HELP[c]}" + (" (default)" if c == default else "")
                        for c in UNKNOWN_OPS_CHOICES)
    parser.add_argument("--unknown-ops", choices=UNKNOWN_OPS_CHOICES, default=default,
                        help=f"ONNX ops with no handler: {choices}")


def add_chunk_size(parser: argparse.ArgumentParser) -> None:
    """``--chunk-size N``: files converted and predicted together."""
    parser.add_argument("--chunk-size", type=_positive_int, default=DEFAULT_CHUNK, metavar="N",
                        help=f"files converted and predicted together (bounds memory; default {DEFAULT_CHUNK})")


def add_workers(parser: argparse.ArgumentParser) -> None:
    """``--workers N``: processes converting ONNX files."""
    parser.add_argument("--workers", type=_positive_int, default=1, metavar="N",
                        help="processes converting ONNX files (default 1: convert in this process); "
                             "results are the same for any N")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def command_line(args: argparse.Namespace) -> str:
    """The command as typed, from the argv :func:`gennape.cli.main` received
    (recorded in checkpoints)."""
    return " ".join(["gennape", *map(shlex.quote, args._argv)])


__all__ = ["add_checkpoint", "add_input_shape", "add_unknown_ops", "add_chunk_size", "add_workers",
           "command_line"]
