"""Evaluating small constant subgraphs (shape / pads / axes computations) with
numpy, for models whose shapes onnx's inference cannot propagate on its own.

Example: torch's legacy exporter writes ``F.pad`` at opset >= 11 with a pads
vector computed by ConstantOfShape / Concat / Reshape / Slice / Transpose /
Cast; onnx shape inference cannot see through it and stops. The importer then
evaluates such subgraphs here (integer values up to :data:`SMALL_NUMEL`
elements and scalars only, never weights), replaces them by Constant nodes and infers shapes again.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper

from gennape.cg.onnx_import.context import SMALL_NUMEL, constant_value, tensor_value

EVAL: dict[str, Callable] = {}


def _op(*names):
    def wrap(fn):
        for n in names:
            EVAL[n] = fn
        return fn
    return wrap


def _attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


@_op("Identity")
def _identity(node, x, *_):
    return x


@_op("Cast")
def _cast(node, x, *_):
    return x.astype(helper.tensor_dtype_to_np_dtype(_attr(node, "to")))


@_op("Unsqueeze")
def _unsqueeze(node, x, axes=None, *_):
    axes = _attr(node, "axes") if axes is None else axes
    for a in sorted(int(v) % (x.ndim + len(axes)) for v in axes):
        x = np.expand_dims(x, a)
    return x


@_op("Squeeze")
def _squeeze(node, x, axes=None, *_):
    axes = _attr(node, "axes") if axes is None else axes
    return np.squeeze(x, axis=tuple(int(a) for a in axes)) if axes is not None else np.squeeze(x)


@_op("Concat")
def _concat(node, *xs):
    return np.concatenate([np.atleast_1d(x) for x in xs], axis=_attr(node, "axis", 0))


@_op("Reshape")
def _reshape(node, x, shape, *_):
    shape = [int(s) if s != 0 else x.shape[i] for i, s in enumerate(shape)]
    return x.reshape(shape)


@_op("Transpose")
def _transpose(node, x, *_):
    return np.transpose(x, _attr(node, "perm"))


@_op("Slice")
def _slice(node, x, starts=None, ends=None, axes=None, steps=None):
    starts = _attr(node, "starts") if starts is None else starts
    ends = _attr(node, "ends") if ends is None else ends
    axes = (_attr(node, "axes") or list(range(len(starts)))) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    index = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        index[int(a)] = slice(int(s), int(e), int(st))
    return x[tuple(index)]


@_op("Gather")
def _gather(node, x, idx, *_):
    return np.take(x, idx, axis=_attr(node, "axis", 0))


@_op("ConstantOfShape")
def _constant_of_shape(node, shape, *_):
    value = _attr(node, "value")
    fill = numpy_helper.to_array(value).reshape(-1)[0] if value is not None else np.float32(0)
    if int(np.prod(shape)) > SMALL_NUMEL:
        return None
    return np.full([int(s) for s in shape], fill)


_BINARY = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Equal": np.equal,
           "Max": np.maximum, "Min": np.minimum}
for _name, _fn in _BINARY.items():
    EVAL[_name] = (lambda f: lambda node, a, b, *_: f(a, b))(_fn)


@_op("Div")
def _div(node, a, b, *_):
    return a // b if np.issubdtype(a.dtype, np.integer) else a / b


@_op("Expand")
def _expand(node, x, shape):
    return None if int(np.prod(np.broadcast_shapes(x.shape, tuple(shape)))) > SMALL_NUMEL else \
        np.broadcast_to(x, np.broadcast_shapes(x.shape, tuple(shape)))


@_op("Where")
def _where(node, c, a, b):
    return np.where(c, a, b)


@_op("Range")
def _range(node, start, limit, delta):
    # Count first: a tiny file may ask for Range(0, 1e9), gigabytes if evaluated.
    count = math.ceil((float(limit) - float(start)) / float(delta)) if float(delta) else SMALL_NUMEL + 1
    return None if count > SMALL_NUMEL else np.arange(start, limit, delta)


@_op("Floor", "Ceil", "Neg", "Abs")
def _unary(node, x, *_):
    return {"Floor": np.floor, "Ceil": np.ceil, "Neg": np.negative, "Abs": np.abs}[node.op_type](x)


def fold_frontier(model: onnx.ModelProto, static: set[str], shapes) -> bool:
    """Evaluate the static subgraph's small integer / scalar values and put
    Constant nodes where an evaluated tensor meets a node whose value stays
    unknown (a network op, or e.g. an Expand of a weight), so that shape
    inference sees the values. Returns True if anything changed."""
    graph = model.graph
    values: dict[str, np.ndarray] = {}
    for init in graph.initializer:
        v = tensor_value(init)
        if v is not None:
            values[init.name] = v
    for node in graph.node:
        out = node.output[0] if node.output else ""
        if out in static:
            value = _evaluate(node, values, shapes)
            if value is None or np.asarray(value).size > SMALL_NUMEL:
                continue
            if node.op_type == "ConstantOfShape" and np.asarray(value).dtype.kind == "f":
                # In weightless files a float ConstantOfShape stands for a weight:
                # left unevaluated, so it (and what passes it on) stays a
                # parameter instead of turning into a Constant node.
                continue
            values[out] = np.asarray(value)
    boundary = {t for node in graph.node if not (node.output and node.output[0] in values)
                for t in node.input if t in values}
    replaced = False
    new_nodes = []
    for node in graph.node:
        out = node.output[0] if node.output else ""
        if out in boundary and node.op_type != "Constant" and len(node.output) == 1:
            new_nodes.append(helper.make_node("Constant", [], [out], value=numpy_helper.from_array(values[out], out)))
            replaced = True
        else:
            new_nodes.append(node)
    if replaced:
        del graph.node[:]
        graph.node.extend(new_nodes)
    return replaced


def _evaluate(node, values, shapes):
    op = node.op_type
    try:
        if op == "Constant":
            return constant_value(node)
        if op in ("Shape", "Size"):
            shape = shapes.get(node.input[0])
            if shape is None or None in shape:
                return None
            if op == "Size":
                return np.asarray(int(np.prod(shape)), dtype=np.int64)
            start, end = _attr(node, "start", 0), _attr(node, "end", None)
            return np.asarray(shape[start:end], dtype=np.int64)
        fn = EVAL.get(op)
        if fn is None:
            return None
        args = [values.get(t) if t else None for t in node.input]
        if any(a is None for t, a in zip(node.input, args) if t):
            return None
        return fn(node, *args)
    except Exception:  # an odd constant: leave it to shape inference
        return None


#: Ops whose output has their first input's shape.
SAME_SHAPE = frozenset({
    "BatchNormalization", "InstanceNormalization", "LayerNormalization", "GroupNormalization", "LRN",
    "Relu", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "LeakyRelu", "PRelu", "HardSigmoid", "HardSwish",
    "Gelu", "Clip", "Erf", "Identity", "Dropout", "Cast",
})


def fill_same_shape(model: onnx.ModelProto, shapes: dict) -> bool:
    """Declare the output shape of shape-preserving ops that inference left
    unknown; returns True if any was added."""
    added = False
    known = {vi.name for vi in model.graph.value_info}
    for node in model.graph.node:
        if node.op_type not in SAME_SHAPE or not node.output or not node.input:
            continue
        out, src = node.output[0], shapes.get(node.input[0])
        if out in known or src is None or None in src:
            continue
        current = shapes.get(out)
        if current is not None and None not in current:
            continue
        info = helper.make_tensor_value_info(out, onnx.TensorProto.FLOAT, list(src))
        declared = next((o for o in model.graph.output if o.name == out), None)
        if declared is not None:  # a graph output's own declaration wins over value_info
            declared.type.CopyFrom(info.type)
        else:
            model.graph.value_info.append(info)
        shapes[out] = src
        added = True
    return added
