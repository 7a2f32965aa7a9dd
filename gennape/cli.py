"""``gennape SUBCOMMAND ...``.

Each subcommand lives in ``gennape/commands/<name>.py`` and defines
``add_arguments(parser)`` and ``run(args) -> int``. Command modules import only
argparse at module level, so building the parser stays cheap; heavy imports
(torch, PyG) happen inside ``run``.

User errors (:class:`gennape.cg.errors.GennapeError`) print as one line on stderr and
exit with code 2, never with a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from gennape.cg.errors import GennapeError

#: subcommand -> one-line help; the module is gennape.commands.<subcommand>.
COMMANDS = {
    "convert": "convert an ONNX model into a computation graph",
    "export": "export a benchmark architecture to ONNX",
    "pretrain": "pretrain the estimator on NAS-Bench-101",
    "predict": "predict accuracy and rank of ONNX models",
    "finetune": "fine-tune a checkpoint on a few labelled networks of a new family",
    "evaluate": "measure rank correlation of predictions against labels",
    "search": "search a family's space for the networks predicted best, under FLOPs/params limits",
    "landscape": "random-walk autocorrelation of true and predicted accuracy in a family's space",
    "map": "2-D map of networks' embeddings over the checkpoint's training embeddings",
}


def _available_commands() -> dict[str, object]:
    modules = {}
    for name in COMMANDS:
        try:
            modules[name] = importlib.import_module(f"gennape.commands.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"gennape.commands.{name}":
                raise
    return modules


def build_parser() -> argparse.ArgumentParser:
    from gennape.cg import __version__

    parser = argparse.ArgumentParser(
        prog="gennape",
        description="Generalized neural-architecture performance estimator.",
    )
    parser.add_argument("--version", action="version", version=f"gennape {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in _available_commands().items():
        p = sub.add_parser(name, help=COMMANDS[name], description=COMMANDS[name])
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except GennapeError as err:
        print(f"gennape {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gennape {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`gennape ... | head`): stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
