"""``gennape export --family F --arch ARCH OUT.onnx``: a benchmark network as ONNX."""

from __future__ import annotations

import argparse

HELP = "export a benchmark architecture to ONNX"

#: Family names, listed here so that building the parser imports nothing heavy
#: (``gennape.cg.families.FAMILY_NAMES`` holds the same names).
FAMILIES = ("nb101", "nb201", "nb301", "ofa_mbv3")

ARCH_HELP = """ARCH per family:
  nb101     '{"matrix": [[0,1,...],...], "ops": ["input", ..., "output"]}'
  nb201     '|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|'
  nb301     the compact DARTS genotype of the shared file, e.g. '[[[0, 3], [1, 3], ...], [[0, 0], ...]]'
  ofa_mbv3  '{"ks": [...20], "e": [...20], "d": [...5], "r": 224}'"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = ARCH_HELP
    parser.add_argument("--family", required=True, choices=FAMILIES, help="the benchmark family")
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
