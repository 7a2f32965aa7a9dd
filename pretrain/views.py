"""Graph-level views of NB-101 architectures for contrastive pairs.

A view is the same NB-101 cell in a network of another *macro* shape: another
stem width, number of stacks, cells per stack or input resolution. These are
exactly the ways NB-201 (16-channel stem, 5 cells per stack), DARTS and
ImageNet networks differ from NB-101 (128 channels, 3 x 3 cells, 32x32) while
the cell -- what decides accuracy within a family -- stays the same; pulling
views together teaches the encoder to look at the cell.

``gennape.cg.families.nb101`` builds the benchmark network only (``to_cg(spec)``);
until it accepts ``to_cg(spec, stem_channels=..., num_stacks=...,
cells_per_stack=..., input_size=...)`` this module builds the variant with the
family's own cell writer, so the cells are node-for-node the family's.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from gennape.cg.graph import CG


@dataclass(frozen=True)
class MacroShape:
    """The macro skeleton of an NB-101-style network."""

    stem_channels: int = 128
    num_stacks: int = 3
    cells_per_stack: int = 3
    input_size: int = 32


#: The views used by default: NB-201's skeleton, a shallow-wide one and an
#: ImageNet-resolution one (the benchmark's own shape is the anchor view).
DEFAULT_VIEWS: tuple[MacroShape, ...] = (
    MacroShape(stem_channels=16, num_stacks=3, cells_per_stack=5, input_size=32),
    MacroShape(stem_channels=64, num_stacks=3, cells_per_stack=1, input_size=64),
)


def nb101_view_cg(spec, shape: MacroShape) -> CG:
    """The CG of NB-101 cell ``spec`` in a network of macro shape ``shape``."""
    from gennape.cg.families import nb101

    kwargs = dict(stem_channels=shape.stem_channels, num_stacks=shape.num_stacks,
                  cells_per_stack=shape.cells_per_stack, input_size=shape.input_size)
    if set(kwargs) <= set(inspect.signature(nb101.FAMILY.to_cg).parameters):
        return nb101.FAMILY.to_cg(spec, **kwargs)
    return _build(nb101, spec, shape)


def _build(nb101, spec, shape: MacroShape) -> CG:
    # Mirrors nb101.build_cg with the macro constants as arguments.
    b = nb101._FastBuilder()
    w = nb101._CGWriter(b)
    size = shape.input_size
    x = b.add(nb101._simple("input", (), (3, size, size)))
    x = w.conv_bn_relu(x, 3, shape.stem_channels, 3, size)
    channels = shape.stem_channels
    for stack in range(shape.num_stacks):
        cin = channels
        if stack > 0:
            x = b.add(nb101._simple("max_pool", (cin, size, size), (cin, size // 2, size // 2), (2, 2), (2, 2)), (x,))
            size //= 2
            channels *= 2
        for _ in range(shape.cells_per_stack):
            x = w.cell(spec, x, cin, channels, size)
            cin = channels
    x = b.add(nb101._simple("global_avg_pool", (channels, size, size), (channels, 1, 1)), (x,))
    x = b.add(nb101._linear(channels, nb101.NUM_CLASSES), (x,))
    b.add(nb101._simple("output", (nb101.NUM_CLASSES,), (nb101.NUM_CLASSES,)), (x,))
    return b.build()


def pack_views(specs, shapes=DEFAULT_VIEWS, progress=None) -> list:
    """One :class:`gennape.pretrain.packed.GraphPack` per macro shape, aligned with ``specs``."""
    from gennape.pretrain.packed import GraphPack

    return [GraphPack.from_items((nb101_view_cg(s, shape) for s in specs), progress=progress) for shape in shapes]


__all__ = ["MacroShape", "DEFAULT_VIEWS", "nb101_view_cg", "pack_views"]
