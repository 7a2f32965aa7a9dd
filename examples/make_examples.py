"""Regenerate the bundled example ONNX files (weightless copies of benchmark networks).

    python examples/make_examples.py            # writes examples/onnx/*.onnx

Each file is a real benchmark network exported by :mod:`gennape.cg.families.export`
with its weights replaced by ``ConstantOfShape`` nodes
(:func:`gennape.cg.weightless.strip_weights`), so it is a few kilobytes yet gives the
same computation graph as the trained network. No accuracies are bundled: the
architectures span good and bad cells of NAS-Bench-201 (so a ranking is
visible), a DARTS cell (NAS-Bench-301) and two Once-for-All MobileNetV3
subnets at ImageNet resolution.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))  # run from a checkout without installing

#: file stem -> (family, ARCH string as `gennape export` takes it)
EXAMPLES: dict[str, tuple[str, str]] = {
    # NAS-Bench-201 (CIFAR-10, 32x32): all 3x3 convs, the space's best region.
    "nb201_conv3x3": ("nb201", "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"),
    # a mixed cell, mid-to-good
    "nb201_mixed": ("nb201", "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"),
    # 1x1 convs only: trainable but weaker
    "nb201_conv1x1": ("nb201", "|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|nor_conv_1x1~0|nor_conv_1x1~1|nor_conv_1x1~2|"),
    # no convolution inside the cells: among the worst that still train
    "nb201_pools": ("nb201", "|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|"),
    "nb201_skips": ("nb201", "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|"),
    # DARTS-V2 (Liu et al. 2019) in the NB-301 compact encoding:
    # (input node, op index into max_pool, avg_pool, skip, sep3, sep5, dil3, dil5)
    "darts_v2": ("nb301", "[[(0, 3), (1, 3), (0, 3), (1, 3), (1, 3), (0, 2), (0, 2), (2, 5)], "
                          "[(0, 0), (1, 0), (2, 2), (1, 0), (0, 0), (2, 2), (2, 2), (1, 0)]]"),
    # Once-for-All MobileNetV3 w1.0 (ImageNet): the largest and the smallest subnet.
    "ofa_mbv3_max": ("ofa_mbv3", json.dumps({"ks": [7] * 20, "e": [6] * 20, "d": [4] * 5, "r": 224})),
    "ofa_mbv3_min": ("ofa_mbv3", json.dumps({"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": 160})),
}


def make(out_dir: Path = ROOT / "onnx") -> list[Path]:
    """Write every example into ``out_dir``; returns the paths."""
    import onnx

    from gennape.cg.families import get_family
    from gennape.cg.families.export import export_bytes
    from gennape.cg.weightless import strip_weights

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, (family_name, arch) in EXAMPLES.items():
        family = get_family(family_name)
        spec = family.parse(arch)
        model = strip_weights(onnx.load_from_string(export_bytes(family, spec)))
        model.doc_string = f"gennape example: {family_name} {spec.to_arch()} (weightless)"
        path = out_dir / f"{stem}.onnx"
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(model.SerializeToString())
        tmp.replace(path)
        written.append(path)
        print(f"{path.relative_to(ROOT.parent)}  {path.stat().st_size / 1024:.0f} KiB  {family_name}")
    return written


if __name__ == "__main__":
    make()
