"""TransNAS-Bench-101's networks for the tasks with a linear head (NASLib ``tnb101``).

``MacroNet`` (the encoder: stem, then ``MicroCell``s or ``ResNetBasicblock``s) and
``FFDecoder`` (global average pool, linear), numerically the benchmark's network
and written so that the legacy ONNX exporter gives plain ops:

* a micro cell's node is a chain of binary adds in edge order (TNB sums
  ``torch.stack(terms).sum(0)``), its zero edges are left out (TNB adds
  ``x.mul(0.)`` or ``new_zeros``), and values of dead nodes are computed from
  constant zero tensors, as for NB-201 (:mod:`gennape.cg.families.nets.nb201`);
* the skip op of a reduction edge is DARTS' ``FactorizedReduce``
  (:class:`gennape.cg.families.nets.nb301.FactorizedReduce`, affine). TNB's own
  pads the input by one row and column before taking ``[1:, 1:]``; a stride-2
  1x1 conv never reads that padding when the size is even, which every size
  here is (64, 32, 16), so both compute the same values.

The basic block's shortcut BN is built as TNB builds it,
``nn.BatchNorm2d(planes, affine, track_running_stats)``, which passes True as
``eps`` and ``momentum``: ``eps = momentum = 1.0``.
"""

from __future__ import annotations

import torch
from torch import nn

from gennape.cg.families import tnb101_common as tnb
from gennape.cg.families.nets.nb201 import ReLUConvBN
from gennape.cg.families.nets.nb301 import FactorizedReduce
from gennape.cg.families.tnb101_macro import BLOCKS_PER_MODULE, TNB101MacroSpec
from gennape.cg.families.tnb101_macro import module_layout as macro_layout
from gennape.cg.families.tnb101_micro import (
    CONV1X1, CONV3X3, EDGES, SKIP, ZERO, TNB101MicroSpec, module_layout as micro_layout,
)


def stem() -> nn.Sequential:
    """``MacroNet.stem``: ``(N, 3, H, W) -> (N, 64, H/4, W/4)``."""
    c = tnb.BASE_CHANNELS
    return nn.Sequential(nn.Conv2d(3, c // 2, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c // 2),
                         ReLUConvBN(c // 2, c, 3, 2, 1))


def make_edge(op: int, c_in: int, c_out: int, stride: int) -> nn.Module:
    """The layer of one micro-cell edge (not zero)."""
    if op == SKIP:
        return nn.Identity() if stride == 1 and c_in == c_out else FactorizedReduce(c_in, c_out, affine=True)
    if op in (CONV1X1, CONV3X3):
        k = 3 if op == CONV3X3 else 1
        return ReLUConvBN(c_in, c_out, k, stride, k // 2)
    raise ValueError(f"no layer for TNB-101 micro op {op!r}")


class MicroCell(nn.Module):
    """One micro cell: node ``j`` sums an op on every earlier node; the output is node 3.

    ``forward`` takes ``x`` and whether it depends on the network input; returns
    the output (None when exactly zero) and the same flag for it.

    Args:
        spec: the cell.
        c_in, c_out: channels; stride: of the node-0 edges; out_size: output resolution.

    Shapes:
        ``(N, c_in, H, W) -> (N, c_out, H/stride, W/stride)``; dead values are ``(1, c_out, ...)``.
    """

    def __init__(self, spec: TNB101MicroSpec, c_in: int, c_out: int, stride: int, out_size: int):
        super().__init__()
        self.ops, self.c_in, self.c_out, self.out_size = spec.ops, c_in, c_out, out_size
        self.in_size = out_size * stride
        self.layers = nn.ModuleDict()
        for op, (node, src) in zip(spec.ops, EDGES):
            if op != ZERO:
                self.layers[f"{node}<-{src}"] = (make_edge(op, c_in, c_out, stride) if src == 0
                                                 else make_edge(op, c_out, c_out, 1))

    def forward(self, x, live: bool):
        values, lives = [x], [live]
        for node in (1, 2, 3):
            live_terms, const_terms = [], []
            for op, (n, src) in zip(self.ops, EDGES):
                if n != node or op == ZERO:
                    continue
                v = values[src]
                if v is None:  # only nodes 1, 2: stride-1 edges, where skip is the identity
                    if op == SKIP:
                        continue  # zero stays zero
                    v = torch.zeros(1, self.c_out, self.out_size, self.out_size)
                (live_terms if lives[src] else const_terms).append(self.layers[f"{node}<-{src}"](v))
            terms = live_terms + const_terms
            acc = terms[0] if terms else None
            for t in terms[1:]:
                acc = acc + t
            values.append(acc)
            lives.append(bool(live_terms))
        return values[3], lives[3]


class BasicBlock(nn.Module):
    """TNB's ``ResNetBasicblock``: ``shortcut(x) + conv_b(conv_a(x))``.

    Args:
        c_in, c_out: channels; stride: of ``conv_a`` and the shortcut.

    Shapes:
        ``(N, c_in, H, W) -> (N, c_out, H/stride, W/stride)``
    """

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(c_out, eps=1.0, momentum=1.0))

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        return residual + self.conv_b(self.conv_a(x))


class TNB101Network(nn.Module):
    """Stem, cells or blocks, global average pool, linear head.

    Args:
        cells: the encoder's cells (:class:`MicroCell`) or blocks (:class:`BasicBlock`).
        channels, size: the encoder's output channels and resolution.
        outputs: the head's outputs (100 / 63 / 9 for class_object / class_scene / room_layout).

    Shapes:
        ``(N, 3, 256, 256) -> (N, outputs)``
    """

    def __init__(self, cells: list[nn.Module], channels: int, size: int, outputs: int):
        super().__init__()
        self.stem = stem()
        self.cells = nn.ModuleList(cells)
        self.channels, self.size = channels, size
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, outputs)

    def forward(self, x):
        batch = x.shape[0]
        h, live = self.stem(x), True
        for cell in self.cells:
            if isinstance(cell, MicroCell):
                if h is None:  # the previous cell's output is exactly zero
                    h = torch.zeros(1, cell.c_in, cell.in_size, cell.in_size)
                h, live = cell(h, live)
            else:
                h = cell(h)
        if h is None:
            h = torch.zeros(1, self.channels, self.size, self.size)
        logits = self.classifier(self.global_pooling(h).flatten(1))
        if not live:
            # The output does not depend on the input: one constant row per sample.
            logits = logits.expand(batch, -1)
        return logits


def micro_network(spec: TNB101MicroSpec) -> TNB101Network:
    """The micro cell's network (``MacroNet('64-41414-a_bc_def')`` + the task's head)."""
    size = tnb.INPUT_SHAPE[1] // 4
    cells = []
    for c_in, c_out, stride in micro_layout():
        size //= stride
        cells.append(MicroCell(spec, c_in, c_out, stride, size))
    return TNB101Network(cells, cells[-1].c_out, size, tnb.HEAD_OUTPUTS[spec.task])


def macro_network(spec: TNB101MacroSpec) -> TNB101Network:
    """The skeleton's network (``MacroNet('64-<codes>-basic')`` + the task's head)."""
    size = tnb.INPUT_SHAPE[1] // 4
    blocks: list[nn.Module] = []
    c_out = tnb.BASE_CHANNELS
    for c_in, c_out, stride in macro_layout(spec.codes):
        size //= stride
        blocks.append(BasicBlock(c_in, c_out, stride))
        blocks.extend(BasicBlock(c_out, c_out, 1) for _ in range(BLOCKS_PER_MODULE - 1))
    return TNB101Network(blocks, c_out, size, tnb.HEAD_OUTPUTS[spec.task])
