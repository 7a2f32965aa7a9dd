"""NAS-Bench-301's network written the way DARTS's own ``model.py`` and
``operations.py`` write it, as a second exporter next to
:mod:`gennape.cg.families.nets.nb301` (same layers and BN settings; see
:mod:`gennape.cg.families.nb301`).

What differs from the project's module is how the code is written: the
``OPS`` table of constructors (with DARTS's ``Zero``: ``x.mul(0.)``, strided
``x[:, :, ::2, ::2].mul(0.)``, and ``Identity``), ``Cell._compile`` with the
genotype's op names, indices and concat list, ``drop_prob`` arguments, and the
classifier input ``out.view(out.size(0), -1)``. The canonical rules must still
give the spec CG (``tests/test_nb301.py``, ``benchmarks/families.py``).
"""

from __future__ import annotations

import torch
from torch import nn

from gennape.cg.families.nb301 import (
    INIT_CHANNELS, LAYERS, NUM_CLASSES, STEM_MULTIPLIER, STEPS, NB301Spec, reduction_layers,
)
from gennape.cg.families.nets.nb301 import DilConv, FactorizedReduce, ReLUConvBN, SepConv


class Identity(nn.Module):
    """DARTS's ``Identity``."""

    def forward(self, x):
        return x


class Zero(nn.Module):
    """DARTS's ``Zero``: the ``none`` op."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, ::self.stride, ::self.stride].mul(0.0)


def _pool(pool: nn.Module, c: int) -> nn.Module:
    # NASLib's NB-301 network follows every pooling op with a non-affine BN.
    return nn.Sequential(pool, nn.BatchNorm2d(c, affine=False))


#: DARTS's ``OPS``: name -> constructor(C, stride).
OPS = {
    "none": lambda c, stride: Zero(stride),
    "avg_pool_3x3": lambda c, stride: _pool(nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False), c),
    "max_pool_3x3": lambda c, stride: _pool(nn.MaxPool2d(3, stride=stride, padding=1), c),
    "skip_connect": lambda c, stride: Identity() if stride == 1 else FactorizedReduce(c, c, affine=False),
    "sep_conv_3x3": lambda c, stride: SepConv(c, 3, stride),
    "sep_conv_5x5": lambda c, stride: SepConv(c, 5, stride),
    "dil_conv_3x3": lambda c, stride: DilConv(c, 3, stride),
    "dil_conv_5x5": lambda c, stride: DilConv(c, 5, stride),
}


class Cell(nn.Module):
    """DARTS's evaluation ``Cell``.

    Shapes:
        ``s0: (N, c_prev_prev, H0, W0), s1: (N, c_prev, H, W) -> (N, 4c, H', W')``
    """

    def __init__(self, genotype: list[tuple[str, int]], c_prev_prev: int, c_prev: int, c: int,
                 reduction: bool, reduction_prev: bool):
        super().__init__()
        if reduction_prev:
            self.preprocess0 = FactorizedReduce(c_prev_prev, c, affine=True)
        else:
            self.preprocess0 = ReLUConvBN(c_prev_prev, c)
        self.preprocess1 = ReLUConvBN(c_prev, c)
        op_names, indices = zip(*genotype)
        self._compile(c, op_names, indices, list(range(2, 2 + STEPS)), reduction)

    def _compile(self, c, op_names, indices, concat, reduction):
        self._steps = len(op_names) // 2
        self._concat = concat
        self.multiplier = len(concat)
        self._ops = nn.ModuleList()
        for name, index in zip(op_names, indices):
            stride = 2 if reduction and index < 2 else 1
            self._ops += [OPS[name](c, stride)]
        self._indices = indices

    def forward(self, s0, s1, drop_prob):
        s0 = self.preprocess0(s0)
        s1 = self.preprocess1(s1)
        states = [s0, s1]
        for i in range(self._steps):
            h1 = self._ops[2 * i](states[self._indices[2 * i]])
            h2 = self._ops[2 * i + 1](states[self._indices[2 * i + 1]])
            states += [h1 + h2]  # drop path acts in training only
        return torch.cat([states[i] for i in self._concat], dim=1)


class NetworkCIFAR(nn.Module):
    """DARTS's ``NetworkCIFAR`` (C = 32, 8 cells, no auxiliary head), logits only.

    Shapes:
        ``(N, 3, 32, 32) -> (N, 10)``
    """

    def __init__(self, spec: NB301Spec):
        super().__init__()
        self.drop_path_prob = 0.0
        c_curr = STEM_MULTIPLIER * INIT_CHANNELS
        self.stem = nn.Sequential(nn.Conv2d(3, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_prev_prev, c_prev, c_curr = c_curr, c_curr, INIT_CHANNELS
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(LAYERS):
            reduction = i in reduction_layers()
            if reduction:
                c_curr *= 2
            cell = Cell(spec.ops(reduction), c_prev_prev, c_prev, c_curr, reduction, reduction_prev)
            reduction_prev = reduction
            self.cells += [cell]
            c_prev_prev, c_prev = c_prev, cell.multiplier * c_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, NUM_CLASSES)

    def forward(self, input):
        s0 = s1 = self.stem(input)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
        out = self.global_pooling(s1)
        return self.classifier(out.view(out.size(0), -1))
