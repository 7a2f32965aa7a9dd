"""NAS-Bench-201's network written the way its own code writes it (AutoDL's
``TinyNetwork``, ``InferCell``, ``ResNetBasicblock`` and cell operations), as
a second exporter next to :mod:`gennape.cg.families.nets.nb201`.

Every edge is computed, ``none`` included (AutoDL's ``Zero``: ``x.mul(0.)``),
node sums are ``sum(...)`` over the node's edges in arch-string order, and
the classifier input is ``out.view(out.size(0), -1)``. Its export therefore
holds the zeroed branches, unused layers and a computed shape chain that the
project's own module leaves out; the canonical rules must still give the
spec CG (``tests/test_nb201.py``, ``benchmarks/families.py``).
"""

from __future__ import annotations

from torch import nn

from gennape.cg.families.nb201 import CELLS_PER_STAGE, CHANNELS, EDGES, NUM_CLASSES, NB201Spec


class ReLUConvBN(nn.Module):
    """AutoDL's ``ReLUConvBN``: ReLU, conv (no bias), affine BN."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int, padding: int):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, k, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out, affine=True, track_running_stats=True),
        )

    def forward(self, x):
        return self.op(x)


class Zero(nn.Module):
    """AutoDL's ``Zero`` at stride 1, ``C_in == C_out``: ``x.mul(0.)``."""

    def forward(self, x):
        return x.mul(0.0)


class Pooling(nn.Module):
    """AutoDL's ``POOLING`` with ``C_in == C_out`` (no preprocessing conv)."""

    def __init__(self):
        super().__init__()
        self.op = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)

    def forward(self, x):
        return self.op(x)


def make_op(op: str, c: int) -> nn.Module:
    """AutoDL's ``OPS[op](C, C, 1, True, True)``."""
    if op == "none":
        return Zero()
    if op == "skip_connect":
        return nn.Identity()
    if op == "avg_pool_3x3":
        return Pooling()
    if op in ("nor_conv_3x3", "nor_conv_1x1"):
        k = int(op[-3])
        return ReLUConvBN(c, c, k, 1, k // 2)
    raise ValueError(f"no layer for NB-201 op {op!r}")


class InferCell(nn.Module):
    """AutoDL's ``InferCell``: node ``i`` is the sum of its edges' layers.

    Shapes:
        ``(N, c, H, W) -> (N, c, H, W)``
    """

    def __init__(self, spec: NB201Spec, c: int):
        super().__init__()
        self.layers = nn.ModuleList(make_op(op, c) for op in spec.ops)
        self.node_in = [[(k, src) for k, (n, src) in enumerate(EDGES) if n == node] for node in (1, 2, 3)]

    def forward(self, inputs):
        nodes = [inputs]
        for edges in self.node_in:
            nodes.append(sum(self.layers[k](nodes[src]) for k, src in edges))
        return nodes[-1]


class ResNetBasicblock(nn.Module):
    """AutoDL's ``ResNetBasicblock`` at stride 2."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False),
        )

    def forward(self, inputs):
        basicblock = self.conv_b(self.conv_a(inputs))
        residual = self.downsample(inputs)
        return residual + basicblock


class TinyNetwork(nn.Module):
    """AutoDL's ``TinyNetwork`` (C = 16, N = 5), returning the logits only.

    Shapes:
        ``(N, 3, 32, 32) -> (N, 10)``
    """

    def __init__(self, spec: NB201Spec):
        super().__init__()
        c = CHANNELS[0]
        self.stem = nn.Sequential(nn.Conv2d(3, c, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(c))
        cells: list[nn.Module] = []
        c_prev = c
        for stage, c_curr in enumerate(CHANNELS):
            if stage > 0:
                cells.append(ResNetBasicblock(c_prev, c_curr))
            cells.extend(InferCell(spec, c_curr) for _ in range(CELLS_PER_STAGE))
            c_prev = c_curr
        self.cells = nn.ModuleList(cells)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, NUM_CLASSES)

    def forward(self, inputs):
        feature = self.stem(inputs)
        for cell in self.cells:
            feature = cell(feature)
        out = self.global_pooling(self.lastact(feature))
        out = out.view(out.size(0), -1)
        return self.classifier(out)
