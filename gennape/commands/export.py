"""``gennape export --family F --arch ARCH OUT.onnx``: a benchmark network as ONNX."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

HELP = "export a benchmark architecture to ONNX"


class _FamilyNames(Sequence):
    """The registered family names (:func:`gennape.cg.families.family_names`), read
    only when argparse needs them (parsing ``--family`` or printing help), so that
    building gennape's parser imports no family module."""

    def _names(self) -> tuple[str, ...]:
        from gennape.cg.families import family_names

        return family_names()

    def __getitem__(self, i):
        return self._names()[i]

    def __len__(self) -> int:
        return len(self._names())


#: The epilog placeholder :class:`_ArchHelpFormatter` replaces by the registry's ARCH help.
_ARCH_HELP = "FAMILY and its ARCH"


def arch_help() -> str:
    """``ARCH per family:`` and each registered family's ``arch_help`` line."""
    from gennape.cg.families import family_names, get_family

    names = family_names()
    width = max(map(len, names))
    return "FAMILY and its ARCH:\n" + "\n".join(f"  {n:<{width}}  {get_family(n).arch_help}" for n in names)


class _ArchHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Writes the families' ARCH help where the epilog placeholder is, at help time."""

    def add_text(self, text):
        super().add_text(arch_help() if text is _ARCH_HELP else text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = _ArchHelpFormatter
    parser.epilog = _ARCH_HELP
    # An explicit metavar: argparse would otherwise iterate the choices (loading
    # every family) as soon as the argument is added.
    parser.add_argument("--family", required=True, choices=_FamilyNames(), metavar="FAMILY",
                        help="the benchmark family (see below)")
    parser.add_argument("--arch", required=True, metavar="ARCH", help="the architecture (see below)")
    parser.add_argument("out", metavar="OUT.onnx", help="the ONNX file to write")


def run(args: argparse.Namespace) -> int:
    from gennape.cg.errors import GennapeError
    from gennape.cg.families import get_family

    try:
        family = get_family(args.family)
    except ModuleNotFoundError as err:
        raise GennapeError(f"family {args.family!r} is not available ({err})") from None
    try:
        spec = family.parse(args.arch)
    except ValueError as err:
        raise GennapeError(f"invalid {args.family} ARCH: {err}") from None

    from gennape.cg.families.export import export_onnx

    try:
        path = export_onnx(family, spec, args.out)
    except OSError as err:
        raise GennapeError(f"{args.out}: cannot write ({err.strerror})") from None
    module = family.to_module(spec)
    params = sum(p.numel() for p in module.parameters() if p.requires_grad)
    print(f"wrote {path} ({args.family}, {params:,} trainable parameters)")
    return 0
