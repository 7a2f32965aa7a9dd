"""``gennape convert MODEL.onnx``: the computation graph of an ONNX model."""

from __future__ import annotations

import argparse

from gennape.commands._options import add_input_shape, add_unknown_ops

HELP = "convert an ONNX model into a computation graph"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", help="the ONNX file (weights are never read)")
    parser.add_argument("--json", metavar="OUT.json", help="write the CG as JSON ('-' for stdout)")
    parser.add_argument("--draw", metavar="OUT.svg|OUT.png",
                        help="render the CG (repeated blocks drawn once; PNG needs matplotlib), and write "
                             "the whole graph as Graphviz DOT next to it (OUT.dot)")
    add_input_shape(parser)
    add_unknown_ops(parser)
    parser.add_argument("--list-ops", action="store_true", help="list the supported ONNX op types and exit")


def run(args: argparse.Namespace) -> int:
    import sys
    import warnings

    from gennape.cg.errors import GennapeError

    if args.list_ops:
        from gennape.cg.onnx_import import supported_ops

        for op, doc in supported_ops().items():
            print(f"{op:24s} {doc}")
        return 0
    if not args.model:
        raise GennapeError("a model file is required (or --list-ops)")

    from gennape.cg.atomic import write_text_atomic
    from gennape.cg.onnx_import import from_onnx

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cg = from_onnx(args.model, input_shape=args.input_shape, unknown_ops=args.unknown_ops)
    for w in caught:
        print(f"gennape convert: warning: {w.message}", file=sys.stderr)

    to_stdout = args.json == "-"
    out = sys.stderr if to_stdout else sys.stdout
    print(summary_text(cg), file=out)
    if args.json:
        text = cg.to_json(indent=1)
        if to_stdout:
            sys.stdout.write(text + "\n")
        else:
            from pathlib import Path

            try:
                write_text_atomic(Path(args.json), text)
            except OSError as err:
                raise GennapeError(f"{args.json}: cannot write ({err.strerror})") from None
            print(f"wrote {args.json}", file=out)
    if args.draw:
        from gennape.cg.draw import draw

        dot = draw(cg, args.draw)
        print(f"wrote {args.draw} and {dot}", file=out)
    return 0


def summary_text(cg) -> str:
    """A few lines a person can read: size, totals and op counts."""
    s = cg.summary()
    shape = "x".join(map(str, s["input_shape"])) or "?"
    ops = ", ".join(f"{op} {n}" for op, n in sorted(s["ops"].items(), key=lambda kv: (-kv[1], kv[0])))
    return "\n".join([
        f"{cg.name or 'model'}: input {shape}",
        f"  nodes {s['num_nodes']}, edges {s['num_edges']}",
        f"  params {s['params']:,} ({s['params'] / 1e6:.2f} M)",
        f"  MACs {s['macs']:,} ({s['macs'] / 1e9:.3f} G)",
        f"  ops: {ops}",
    ])
