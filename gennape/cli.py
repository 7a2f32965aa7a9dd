"""``gennape SUBCOMMAND ...``.

Each subcommand lives in ``gennape/commands/<name>.py`` and defines ``HELP``
(its one-line description), ``add_arguments(parser)`` and ``run(args) -> int``;
options several commands share come from :mod:`gennape.commands._options`.
Command modules import only argparse and those light options at module
level, so building the parser stays cheap; heavy imports (torch, PyG) happen
inside ``run``.

User errors (:class:`gennape.cg.errors.GennapeError`) print as one line on stderr and
exit with code 2, never with a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from gennape.cg.errors import GennapeError

#: The subcommands, in the order ``gennape --help`` lists them; the module of
#: each is gennape.commands.<name>.
COMMANDS = ("convert", "export", "pretrain", "predict", "finetune", "distill", "evaluate", "search", "landscape",
            "map")


def command_module(name: str):
    """``gennape.commands.<name>``, checked to define ``HELP``, ``add_arguments``
    and ``run``. A listed command whose module is missing or incomplete is an
    error of the installation, never silently left out of ``--help``."""
    try:
        module = importlib.import_module(f"gennape.commands.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"gennape.commands.{name}":
            raise
        raise ImportError(f"gennape command {name!r} is listed in gennape.cli.COMMANDS "
                          f"but gennape/commands/{name}.py is missing") from None
    missing = [attr for attr in ("HELP", "add_arguments", "run") if not hasattr(module, attr)]
    if missing:
        raise ImportError(f"gennape/commands/{name}.py lacks {', '.join(missing)}")
    return module


def build_parser() -> argparse.ArgumentParser:
    from gennape.cg import __version__

    parser = argparse.ArgumentParser(
        prog="gennape",
        description="Generalized neural-architecture performance estimator.",
    )
    parser.add_argument("--version", action="version", version=f"gennape {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = command_module(name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args._argv = argv  # what was typed, for the command a checkpoint records
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
