"""Weightless ONNX copies: every float initializer becomes a ConstantOfShape node.

The copy keeps the architecture (and stays runnable, with constant weights) at
a few kilobytes, like the model-zoo "light" models the onnx package ships.
gennape reads only shapes, so a weightless copy gives the same CG as the
original; that makes it the way to share or bundle architectures.
"""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper, numpy_helper

#: Initializers at most this large are kept as they are (shape vectors, axes, scalars).
KEEP_NUMEL = 64


def strip_weights(model: onnx.ModelProto, fill: float = 0.01) -> onnx.ModelProto:
    """Return a copy of ``model`` whose float initializers are ConstantOfShape nodes.

    Args:
        model: the model to copy; left unchanged.
        fill: the value every weight takes in the copy.
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    kept, nodes = [], []
    for init in graph.initializer:
        numel = 1
        for d in init.dims:
            numel *= d
        if init.data_type not in (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE) or numel <= KEEP_NUMEL:
            kept.append(init)
            continue
        shape_name = f"{init.name}__SHAPE"
        kept.append(numpy_helper.from_array(_int64(list(init.dims)), shape_name))
        value = helper.make_tensor("value", init.data_type, [1], [fill])
        nodes.append(helper.make_node("ConstantOfShape", [shape_name], [init.name], value=value))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    # Graph inputs that named stripped initializers (IR < 4 style) stay valid:
    # a ConstantOfShape output may not also be a graph input, so drop them.
    produced = {o for n in nodes for o in n.output}
    inputs = [i for i in graph.input if i.name not in produced]
    del graph.input[:]
    graph.input.extend(inputs)
    existing = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + existing)
    return out


def _int64(values):
    import numpy as np

    return np.asarray(values, dtype=np.int64)
