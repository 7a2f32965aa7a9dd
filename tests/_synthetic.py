"""Small synthetic CGs for the estimator tests: a stem, stacked 'cells' of
convs / pools with residual adds, a head. Not a benchmark family."""

from __future__ import annotations

import numpy as np

from gennape.cg.graph import CG, GraphBuilder, Node


def _conv(c_in, c_out, k, size, stride=1, groups=1, bn=True):
    out = size // stride
    op = "conv" if groups == 1 else ("depthwise_conv" if groups == c_in else "group_conv")
    numel = c_out * (c_in // groups) * k * k
    return Node(op, (c_in, size, size), (c_out, out, out), kernel=(k, k), stride=(stride, stride), groups=groups,
                weight_shape=(c_out, c_in // groups, k, k), params=numel + (2 * c_out if bn else 0),
                macs=c_out * out * out * (c_in // groups) * k * k)


def toy_cg(cell_ops, stem: int = 16, resolution: int = 32, cells_per_stage: int = 2, stages: int = 3,
           bn: bool = True) -> CG:
    """A network of ``stages`` stages of ``cells_per_stage`` cells; each cell runs
    ``cell_ops`` (``conv3``, ``conv1``, ``pool``) in a chain with a residual add;
    channels double and resolution halves at each new stage."""
    b = GraphBuilder()
    size, c = resolution, stem
    x = b.add(Node("input", out_shape=(3, size, size)))
    x = b.add(_conv(3, c, 3, size, bn=bn), [x])
    x = b.add(Node("relu", (c, size, size), (c, size, size)), [x])
    for stage in range(stages):
        if stage:
            x = b.add(_conv(c, 2 * c, 3, size, stride=2, bn=bn), [x])
            c, size = 2 * c, size // 2
        for _ in range(cells_per_stage):
            shape = (c, size, size)
            h = x
            for op in cell_ops:
                if op == "pool":
                    h = b.add(Node("max_pool", shape, shape, kernel=(3, 3)), [h])
                else:
                    h = b.add(_conv(c, c, 3 if op == "conv3" else 1, size, bn=bn), [h])
                    h = b.add(Node("relu", shape, shape), [h])
            x = b.add(Node("add", shape, shape), [x, h])
    x = b.add(Node("global_avg_pool", (c, size, size), (c, 1, 1)), [x])
    x = b.add(Node("linear", (c,), (10,), weight_shape=(10, c), params=10 * c + 10, macs=10 * c), [x])
    b.add(Node("output", (10,), (10,)), [x])
    return b.build()


def toy_dataset(n: int, seed: int = 0, **kwargs):
    """``n`` random toy CGs and a synthetic 'accuracy' that grows with the
    number of 3x3 convs and shrinks with pools (plus noise)."""
    rng = np.random.default_rng(seed)
    cgs, y = [], []
    for _ in range(n):
        ops = list(rng.choice(["conv3", "conv1", "pool"], size=int(rng.integers(1, 5))))
        cgs.append(toy_cg(ops, **kwargs))
        y.append(0.85 + 0.02 * ops.count("conv3") + 0.005 * ops.count("conv1") - 0.01 * ops.count("pool")
                 + rng.normal(0, 0.003))
    return cgs, np.array(y)
