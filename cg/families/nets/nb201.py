"""NAS-Bench-201's training network (AutoDL ``TinyNetwork`` with ``InferCell``).

Numerically the network NAS-Bench-201 trained; written so that the legacy ONNX
exporter gives plain ops: sums are chains of binary adds in edge order,
``none`` edges are left out (they add zeros), and values of dead nodes (see
:mod:`gennape.cg.families.nb201`) are computed from constant zero tensors.
"""

from __future__ import annotations

import torch
from torch import nn

from gennape.cg.families.nb201 import CELLS_PER_STAGE, CHANNELS, EDGES, NUM_CLASSES, NB201Spec


class ReLUConvBN(nn.Sequential):
    """ReLU, conv (no bias), affine BN.

    Args:
        c_in, c_out: channels.
        k: kernel size; stride; padding.

    Shapes:
        ``(N, c_in, H, W) -> (N, c_out, H', W')``
    """

    def __init__(self, c_in: int, c_out: int, k: int, stride: int, padding: int):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, k, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out),
        )


def make_edge(op: str, c: int) -> nn.Module:
    """The layer of one cell edge (not ``none``) at ``c`` channels."""
    if op == "skip_connect":
        return nn.Identity()
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    if op == "nor_conv_3x3":
        return ReLUConvBN(c, c, 3, 1, 1)
    if op == "nor_conv_1x1":
        return ReLUConvBN(c, c, 1, 1, 0)
    raise ValueError(f"no layer for NB-201 op {op!r}")


class InferCell(nn.Module):
    """One NAS-Bench-201 cell at ``c`` channels and ``size`` x ``size`` resolution.

    ``forward`` takes ``x`` (a tensor, or None for an exactly-zero input) and a
    flag saying whether ``x`` depends on the network input; returns the same pair.

    Shapes:
        ``(N, c, size, size) -> (N, c, size, size)``; dead values are ``(1, c, size, size)``.
    """

    def __init__(self, spec: NB201Spec, c: int, size: int):
        super().__init__()
        self.spec, self.c, self.size = spec, c, size
        self.layers = nn.ModuleDict()
        for op, (node, src) in zip(spec.ops, EDGES):
            if op != "none":
                self.layers[f"{node}<-{src}"] = make_edge(op, c)

    def forward(self, x, live: bool):
        values = [x]
        lives = [live]
        for node in (1, 2, 3):
            live_terms, const_terms = [], []
            for op, (n, src) in zip(self.spec.ops, EDGES):
                if n != node or op == "none":
                    continue
                layer = self.layers[f"{node}<-{src}"]
                v = values[src]
                if v is None:
                    if op in ("skip_connect", "avg_pool_3x3"):
                        continue  # zero stays zero
                    v = torch.zeros(1, self.c, self.size, self.size)
                (live_terms if lives[src] else const_terms).append(layer(v))
            values.append(_sum(live_terms + const_terms))
            lives.append(bool(live_terms))
        return values[3], lives[3]


def _sum(terms):
    if not terms:
        return None
    acc = terms[0]
    for t in terms[1:]:
        acc = acc + t
    return acc


class ResNetBasicblock(nn.Module):
    """AutoDL's reduction block: two ReLUConvBN 3x3 (first stride 2) plus an
    avg-pool + 1x1-conv shortcut.

    Args:
        c_in, c_out: channels; in_size: input resolution (for an all-zero input).

    Shapes:
        ``(N, c_in, H, W) -> (N, c_out, H/2, W/2)``
    """

    def __init__(self, c_in: int, c_out: int, in_size: int):
        super().__init__()
        self.c_in, self.in_size = c_in, in_size
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False),
        )

    def forward(self, x):
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class TinyNetwork(nn.Module):
    """The NAS-Bench-201 CIFAR-10 network of one cell.

    Args:
        spec: the cell.

    Shapes:
        ``(N, 3, 32, 32) -> (N, 10)`` logits.
    """

    def __init__(self, spec: NB201Spec):
        super().__init__()
        self.spec = spec
        self.stem = nn.Sequential(nn.Conv2d(3, CHANNELS[0], 3, padding=1, bias=False),
                                  nn.BatchNorm2d(CHANNELS[0]))
        cells: list[nn.Module] = []
        size, c_prev = 32, CHANNELS[0]
        for stage, c in enumerate(CHANNELS):
            if stage > 0:
                cells.append(ResNetBasicblock(c_prev, c, size))
                size //= 2
            cells.extend(InferCell(spec, c, size) for _ in range(CELLS_PER_STAGE))
            c_prev = c
        self.cells = nn.ModuleList(cells)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, NUM_CLASSES)
        self.final_size = size

    def forward(self, x):
        batch = x.shape[0]
        h, live = self.stem(x), True
        for cell in self.cells:
            if isinstance(cell, InferCell):
                h, live = cell(h, live)
            else:
                if h is None:  # the previous cell's output is exactly zero
                    h = torch.zeros(1, cell.c_in, cell.in_size, cell.in_size)
                h = cell(h)
        if h is None:
            h = torch.zeros(1, self.classifier.in_features, self.final_size, self.final_size)
        out = self.global_pooling(self.lastact(h))
        logits = self.classifier(out.flatten(1))
        if not live:
            # The output does not depend on the input: one constant row per sample.
            logits = logits.expand(batch, -1)
        return logits

