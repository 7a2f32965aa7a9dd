"""Benchmark search spaces as real networks: NAS-Bench-101/201/301 and OFA-MobileNetV3.

Each family is a :class:`gennape.cg.families.base.Family` registered under a short name:

=============  ==============================================================
``nb101``      NAS-Bench-101 cells (matrix + ops), CIFAR-10, 32x32
``nb201``      NAS-Bench-201 cells (arch strings), CIFAR-10, 32x32
``nb301``      DARTS genotypes as trained by NAS-Bench-301, CIFAR-10, 32x32
``ofa_mbv3``   Once-for-All MobileNetV3 w1.0 subnets (ks/e/d/r), ImageNet
=============  ==============================================================

``get_family(name)`` returns one; a bad name lists the valid ones.
"""

from __future__ import annotations

import importlib

from gennape.cg.families.base import Family, LabelledArch

#: family name -> module defining ``FAMILY``; modules load on first use.
_MODULES = {
    "nb101": "gennape.cg.families.nb101",
    "nb201": "gennape.cg.families.nb201",
    "nb301": "gennape.cg.families.nb301",
    "ofa_mbv3": "gennape.cg.families.ofa_mbv3",
}

FAMILY_NAMES: tuple[str, ...] = tuple(_MODULES)


def get_family(name: str) -> Family:
    """The family called ``name``; raises ``ValueError`` listing the valid names."""
    if name not in _MODULES:
        raise ValueError(f"unknown family {name!r}; valid families: {', '.join(FAMILY_NAMES)}")
    return importlib.import_module(_MODULES[name]).FAMILY


__all__ = ["Family", "LabelledArch", "get_family", "FAMILY_NAMES"]
