"""Benchmark search spaces as real networks: NAS-Bench-101/201/301, OFA-MobileNetV3, TransNAS-Bench-101.

Each family is one module of this package that registers a
:class:`gennape.cg.families.base.Family` under a short name
(``FAMILY = register_family(MyFamily())``); :func:`family_names` lists them
and :func:`family_table` gives their one-line summaries. Nothing else lists
the families: ``gennape export``'s choices and help, and the benchmarks, read
the registry.

``get_family(name)`` returns one; a bad name lists the valid ones. Family
modules load on first use (none imports torch; their ``to_module`` does).
"""

from __future__ import annotations

import importlib
import pkgutil

from gennape.cg.families.base import REGISTRY, Family, LabelledArch, register_family

_discovered = False


def _discover() -> dict[str, Family]:
    """Import every module of this package once, so that each family module registers itself.

    Plugin discovery by ``pkgutil.iter_modules``: a new family is a new module,
    with no list to update. Helper modules (base, cache, cell_builder, ...)
    register nothing; subpackages (``nets``, which imports torch) are skipped.
    """
    global _discovered
    if not _discovered:
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
            if not info.ispkg and not info.name.startswith("_"):
                importlib.import_module(f"{__name__}.{info.name}")
        _discovered = True
    return REGISTRY


def family_names() -> tuple[str, ...]:
    """Names of every registered family, sorted."""
    return tuple(sorted(_discover()))


def family_table() -> str:
    """``name  summary`` lines of every family (for help texts)."""
    families = _discover()
    width = max(len(n) for n in families)
    return "\n".join(f"{n:<{width}}  {families[n].summary}" for n in sorted(families))


def get_family(name: str) -> Family:
    """The family called ``name``; raises ``ValueError`` listing the valid names."""
    if name not in REGISTRY and isinstance(name, str) and name.isidentifier():
        # Fast path: a family's module is usually named after it.
        try:
            importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{name}":
                raise
    if name not in REGISTRY:
        _discover()
    if name not in REGISTRY:
        raise ValueError(f"unknown family {name!r}; valid families: {', '.join(family_names())}")
    return REGISTRY[name]


def __getattr__(attr: str):
    # ``FAMILY_NAMES`` stays importable, computed on first use (PEP 562).
    if attr == "FAMILY_NAMES":
        return family_names()
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


__all__ = ["Family", "LabelledArch", "get_family", "family_names", "family_table", "register_family",
           "FAMILY_NAMES"]
