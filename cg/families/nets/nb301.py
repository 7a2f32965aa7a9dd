"""DARTS ``NetworkCIFAR`` as NAS-Bench-301 trained it (BN settings of NASLib's
``NasBench301SearchSpace``; see :mod:`gennape.cg.families.nb301`).

Inference network only: no auxiliary head, no drop path (both act only in
training). Node sums are ``h1 + h2`` in genotype order, as in DARTS.
"""

from __future__ import annotations

import torch
from torch import nn

from gennape.cg.families.nb301 import (
    INIT_CHANNELS, LAYERS, NUM_CLASSES, STEM_MULTIPLIER, STEPS, NB301Spec, reduction_layers,
)


class ReLUConvBN(nn.Sequential):
    """ReLU, 1x1 conv (no bias), affine BN. Shapes: ``(N, c_in, H, W) -> (N, c_out, H, W)``."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(nn.ReLU(inplace=False), nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))


class FactorizedReduce(nn.Module):
    """Halve the resolution with two offset stride-2 1x1 convs, concatenated, then BN.

    Shapes:
        ``(N, c_in, H, W) -> (N, c_out, H/2, W/2)``
    """

    def __init__(self, c_in: int, c_out: int, affine: bool):
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x):
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


class SepConv(nn.Sequential):
    """Two (ReLU, depthwise kxk, pointwise 1x1, non-affine BN); the first carries the stride."""

    def __init__(self, c: int, k: int, stride: int):
        p = k // 2
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, k, stride=stride, padding=p, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c, affine=False),
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, k, stride=1, padding=p, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c, affine=False),
        )


class DilConv(nn.Sequential):
    """ReLU, depthwise kxk with dilation 2, pointwise 1x1, non-affine BN."""

    def __init__(self, c: int, k: int, stride: int):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, k, stride=stride, padding=k - 1, dilation=2, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c, affine=False),
        )


def make_op(name: str, c: int, stride: int) -> nn.Module:
    """The layer of one DARTS cell edge."""
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c, affine=False)
    if name == "max_pool_3x3":
        return nn.Sequential(nn.MaxPool2d(3, stride=stride, padding=1), nn.BatchNorm2d(c, affine=False))
    if name == "avg_pool_3x3":
        return nn.Sequential(nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False),
                             nn.BatchNorm2d(c, affine=False))
    k = int(name[-1])
    if name.startswith("sep_conv"):
        return SepConv(c, k, stride)
    if name.startswith("dil_conv"):
        return DilConv(c, k, stride)
    raise ValueError(f"no layer for DARTS op {name!r}")


class Cell(nn.Module):
    """A DARTS cell (normal or reduction).

    Shapes:
        ``s0: (N, c_prev_prev, H0, W0), s1: (N, c_prev, H, W) -> (N, 4c, H', W')``
        with ``H' = H/2`` in a reduction cell.
    """

    def __init__(self, spec: NB301Spec, c_prev_prev: int, c_prev: int, c: int,
                 reduction: bool, reduction_prev: bool):
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = (FactorizedReduce(c_prev_prev, c, affine=True) if reduction_prev
                            else ReLUConvBN(c_prev_prev, c))
        self.preprocess1 = ReLUConvBN(c_prev, c)
        edges = spec.ops(reduction)
        self.indices = [i for _, i in edges]
        self._ops = nn.ModuleList(
            make_op(name, c, 2 if reduction and i < 2 else 1) for name, i in edges
        )
        self.multiplier = STEPS

    def forward(self, s0, s1):
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for k in range(STEPS):
            h1 = self._ops[2 * k](states[self.indices[2 * k]])
            h2 = self._ops[2 * k + 1](states[self.indices[2 * k + 1]])
            states.append(h1 + h2)
        return torch.cat(states[2:], dim=1)


class NetworkCIFAR(nn.Module):
    """The NB-301 CIFAR-10 network of one genotype (C = 32, 8 cells).

    Args:
        spec: the genotype.

    Shapes:
        ``(N, 3, 32, 32) -> (N, 10)`` logits.
    """

    def __init__(self, spec: NB301Spec):
        super().__init__()
        c_curr = STEM_MULTIPLIER * INIT_CHANNELS
        self.stem = nn.Sequential(nn.Conv2d(3, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_prev_prev, c_prev, c_curr = c_curr, c_curr, INIT_CHANNELS
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(LAYERS):
            reduction = i in reduction_layers()
            if reduction:
                c_curr *= 2
            cell = Cell(spec, c_prev_prev, c_prev, c_curr, reduction, reduction_prev)
            reduction_prev = reduction
            self.cells.append(cell)
            c_prev_prev, c_prev = c_prev, cell.multiplier * c_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, NUM_CLASSES)

    def forward(self, x):
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(self.global_pooling(s1).flatten(1))
