"""``gennape map PATH... [--checkpoint DIR] [--samples N] [--color group|cluster] --out map.png``

Projects the embeddings of the given networks to 2-D (PCA) over the
checkpoint's training embeddings, coloured by group (one per PATH) or by
fuzzy cluster, out-of-distribution networks ringed (needs the ``plot``
extra). A PATH is an ``.onnx`` file, a folder (searched recursively) or a
family name (nb101, nb201, nb301, ofa_mbv3, tnb101_micro, tnb101_macro:
``--samples`` random networks of its space, no data needed).

Exit codes: 0 written; 1 written, some files failed (reported); 2 bad input.
"""

from __future__ import annotations

import argparse

from gennape.commands._options import add_checkpoint, add_input_shape

HELP = "2-D map of networks' embeddings over the checkpoint's training embeddings"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = "exit codes: 0 written; 1 written, but some files failed (reported and skipped); 2 usage error."
    parser.add_argument("paths", nargs="+", metavar="PATH", help=".onnx files, folders or family names")
    add_checkpoint(parser)
    parser.add_argument("--samples", type=int, default=200, metavar="N",
                        help="random networks drawn for each family name (default 200)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="seed of those draws (default 0)")
    parser.add_argument("--color", choices=("group", "cluster"), default="group",
                        help="colour by PATH (default) or by fuzzy cluster")
    add_input_shape(parser)
    parser.add_argument("--out", required=True, metavar="MAP.png", help="picture to write (.png, .pdf, .svg)")


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    import numpy as np

    from gennape.cg.errors import GennapeError
    from gennape.transfer.model import load_estimator
    from gennape.transfer.plot import _pyplot
    from gennape.transfer.predict import FailedModel, collect_onnx, convert_file
    from gennape.transfer.search.space import SPACE_NAMES, get_space
    from gennape.transfer.search.embedding_map import build_map, plot_map

    if args.samples < 1:
        raise GennapeError(f"--samples must be at least 1, got {args.samples}")
    out = Path(args.out)
    if not out.parent.is_dir():
        raise GennapeError(f"{out}: folder {out.parent} does not exist")
    _pyplot()
    input_shape = args.input_shape
    groups, failures = [], []
    for path in args.paths:
        if path in SPACE_NAMES and not Path(path).exists():
            space = get_space(path)
            rng = np.random.default_rng(args.seed)
            specs = {}
            for _ in range(50 * args.samples):
                if len(specs) >= args.samples:
                    break
                spec = space.decode(space.sample(rng))
                specs.setdefault(space.key(spec), spec)
            groups.append((path, [space.family.to_cg(s) for s in specs.values()]))
            continue
        cgs = []
        for f in collect_onnx([path]):
            result = convert_file(f, input_shape)
            (failures if isinstance(result, FailedModel) else cgs).append(result)
        if cgs:
            groups.append((Path(path).name or path, cgs))
        elif not any(isinstance(x, FailedModel) for x in failures):
            raise GennapeError(f"{path}: no .onnx files found")
    for failure in failures:
        print(f"gennape map: {failure.path}: {failure.error}", file=sys.stderr)
    if not groups:
        raise GennapeError("none of the networks could be converted")
    m = build_map(load_estimator(args.checkpoint), groups)
    plot_map(m, out, color=args.color)
    print(f"mapped {len(m.labels)} network(s) in {len(groups)} group(s), {int(m.ood.sum())} out of distribution "
          f"-> {out}")
    return 1 if failures else 0
