"""Small ONNX models built with onnx.helper, for the importer's tests."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def model(nodes, inputs=(("x", (1, 3, 8, 8)),), outputs=("y",), inits=None, opset=17,
          ir_version=8) -> onnx.ModelProto:
    """``inits``: name -> shape tuple (float weight, zeros) or numpy array."""
    initializers = []
    for name, value in (inits or {}).items():
        if isinstance(value, tuple):
            value = np.zeros(value, dtype=np.float32)
        initializers.append(numpy_helper.from_array(np.asarray(value), name))
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s) if s is not None else None)
         for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        initializer=initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir_version)


def node(op, inputs, outputs, **attrs):
    return helper.make_node(op, list(inputs), list(outputs), **attrs)


def i64(*values):
    return np.asarray(values, dtype=np.int64)


def f32(*values):
    return np.asarray(values, dtype=np.float32)


def scalar(value):
    return np.asarray(value, dtype=np.float32)
