"""What a handler sees: tensor shapes, which tensors are parameters, small
constant values, attributes, and the calls that add IR nodes.

Tensors fall into two kinds. *Static* tensors do not depend on the network
input's values: initializers, Constant / ConstantOfShape outputs, Shape / Size
outputs and anything computed from static tensors alone (constant
shape-computation subgraphs). They never become CG nodes. *Activations* are
everything else; every activation maps to the IR node that produces it.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np
import onnx
from onnx import helper, numpy_helper

from gennape.cg.errors import ConversionError
from gennape.cg.onnx_import.ir import IRGraph, IRNode

#: Ops that pass a small constant's value through unchanged (for Clip bounds etc.).
VALUE_PASSTHROUGH = frozenset({"Identity", "Cast", "Squeeze", "Unsqueeze", "Reshape"})

#: Integer constants up to this many elements may have their values read
#: (shapes, axes, pads), and scalars of any type (clip bounds); weights never.
SMALL_NUMEL = 1024


class HandlerUnsupported(Exception):
    """Raised by a handler for an op variant it cannot express (e.g. a Clip with
    bounds other than (0, 6) / (0, inf)); the node is reported as unsupported."""


class MissingShape(ConversionError):
    """A tensor's shape is unknown after shape inference (the importer then
    tries evaluating constant subgraphs before giving up with this error)."""


class Context:
    def __init__(self, source: str, opset: int, shapes, initializers: dict[str, onnx.TensorProto],
                 static: set[str]):
        self.source = source
        self.opset = opset
        self.shapes = shapes
        self.initializers = initializers
        self.static = static
        #: static tensor -> the node computing it (for :meth:`const`)
        self.static_producer: dict[str, onnx.NodeProto] = {}
        self.const_values: dict[str, Any] = {}
        self.ir = IRGraph()
        self.value: dict[str, int] = {}  # activation tensor -> IR node id
        self._counted: set[str] = set()
        #: Why strict shape inference failed, if it did (explains missing shapes).
        self.inference_error: str | None = None
        #: tensor -> why its shape stays unknown (from constfold.resolve_shapes)
        self.shape_causes: dict[str, str] = {}
        #: activations with a zero-size dimension (an empty slice): they carry no
        #: data, so their producers leave no node and consumers do not read them
        self.empty: set[str] = set()

    # ------------------------------------------------------------- tensors
    def shape(self, tensor: str) -> tuple[int, ...]:
        """Full shape (batch dimension included) of a tensor, or ConversionError."""
        shape = self.shapes.get(tensor)
        if shape is None or None in shape:
            cause = self.shape_causes.get(tensor) or self.inference_error
            # The inputs are static by now (load.fix_input_shapes asks for
            # --input-shape when they are not), so the cause is in the graph.
            raise MissingShape(self.source, f"the shape of tensor {tensor!r} could not be inferred"
                                            + (f": {cause}" if cause else ""))
        return shape

    def feat(self, tensor: str) -> tuple[int, ...]:
        """Shape of an activation without its batch dimension; a dimension
        <= 0 (an empty weight, a window larger than its input) is refused."""
        shape = tuple(self.shape(tensor)[1:])
        if any(d <= 0 for d in shape):
            raise ConversionError(self.source, f"tensor {tensor!r} has shape {'x'.join(map(str, shape))}: "
                                               "dimensions must be positive")
        return shape

    def numel(self, tensor: str) -> int:
        return math.prod(self.shape(tensor))

    def const(self, tensor: str):
        """Value of a small static tensor as a numpy array, or None if unknown.

        Computed on demand: initializers and Constant nodes, passed through
        Identity / Cast / Squeeze / Unsqueeze / Reshape."""
        if not tensor:
            return None
        if tensor in self.const_values:
            return self.const_values[tensor]
        value = None
        init = self.initializers.get(tensor)
        node = self.static_producer.get(tensor)
        if init is not None:
            value = tensor_value(init)
        elif node is not None:
            if node.op_type == "Constant":
                value = constant_value(node)
            elif node.op_type in VALUE_PASSTHROUGH and node.input:
                value = self.const(node.input[0])
                shape = self.shapes.get(tensor)
                if value is not None and shape is not None and None not in shape and math.prod(shape) == value.size:
                    value = value.reshape(shape)
        self.const_values[tensor] = value
        return value

    def params(self, tensors: Iterable[str]) -> int:
        """Parameter count of ``tensors``: static, non-scalar tensors, each
        counted once however many nodes read it.

        A Constant node's value is not a parameter: exporters write trainable
        tensors as initializers (or, in weightless files, ConstantOfShape
        outputs) and fixed values, such as a non-affine batch norm's ones and
        zeros, as Constant nodes."""
        total = 0
        for t in tensors:
            if not t or t not in self.static or t in self._counted or self._is_fixed_constant(t):
                continue
            n = self.numel(t)
            if n > 1:
                self._counted.add(t)
                total += n
        return total

    def source_params(self, tensors: Iterable[str]) -> int:
        """Parameter count of the tensors that ``tensors`` are computed from:
        a static tensor made by static nodes (a relative-position table
        gathered by constant indices, SAM's and MViTv2's) counts the
        initializers it is made of, not its own, larger, element count."""
        sources, stack, seen = [], [t for t in tensors if t], set()
        while stack:
            t = stack.pop()
            if t in seen or t not in self.static:
                continue
            seen.add(t)
            node = self.static_producer.get(t)
            if node is None or node.op_type == "Constant":
                sources.append(t)
            else:
                stack.extend(i for i in node.input if i)
        return self.params(sources)

    def _is_fixed_constant(self, tensor: str) -> bool:
        """Whether ``tensor`` is a Constant node's value (possibly passed through
        Identity / Cast / Squeeze / Unsqueeze / Reshape)."""
        node = self.static_producer.get(tensor)
        while node is not None and node.op_type in VALUE_PASSTHROUGH and node.input:
            node = self.static_producer.get(node.input[0])
        return node is not None and node.op_type == "Constant"

    def acts(self, node: onnx.NodeProto) -> list[str]:
        """The node's activation inputs in slot order (empty tensors left out)."""
        return [t for t in node.input if t and t not in self.static and t not in self.empty]

    def is_empty(self, tensor: str) -> bool:
        """Whether an activation's known shape has a zero-size dimension (batch excluded)."""
        shape = self.shapes.get(tensor)
        return shape is not None and None not in shape and any(d == 0 for d in shape[1:])

    def statics(self, node: onnx.NodeProto) -> list[str]:
        return [t for t in node.input if t and t in self.static]

    @staticmethod
    def attr(node: onnx.NodeProto, name: str, default=None):
        for a in node.attribute:
            if a.name == name:
                return helper.get_attribute_value(a)
        return default

    # ------------------------------------------------------------ emitting
    def emit(self, node: onnx.NodeProto | None, op: str, inputs: Iterable[str],
             out: str | None = None, in_shape: tuple | None = None,
             out_shape: tuple | None = None, **attrs) -> int:
        """Add an IR node reading the activations ``inputs`` and producing
        ``out`` (default: the node's first output)."""
        inputs = list(inputs)
        if out is None and node is not None:
            out = node.output[0]
        if in_shape is None:
            in_shape = self.feat(inputs[0]) if inputs else ()
        if out_shape is None:
            out_shape = self.feat(out) if out else ()
        for t in inputs:
            if t not in self.value:
                # e.g. a Dropout mask or MaxPool indices: outputs no handler models
                raise HandlerUnsupported(f"reads {t!r}, a secondary output the importer does not model")
        geometry = {"in_shape": in_shape, "out_shape": out_shape, **{
            k: attrs[k] for k in ("kernel", "stride", "dilation", "weight_shape") if k in attrs}}
        for key, dims in geometry.items():
            if any(int(d) <= 0 for d in dims):  # e.g. a weight of shape (64, 64, 3, 0)
                raise ConversionError(self.source, f"{op} node {(node.name if node else '') or out!r}: "
                                                   f"{key} {tuple(int(d) for d in dims)} must be positive")
        ir = IRNode(
            op=op,
            inputs=[self.value[t] for t in inputs],
            in_shape=tuple(int(d) for d in in_shape),
            out_shape=tuple(int(d) for d in out_shape),
            name=node.name if node is not None else "",
            **attrs,
        )
        idx = self.ir.add(ir)
        if out:
            self.value[out] = idx
        return idx

    def emit_unary(self, node: onnx.NodeProto, op: str, **attrs) -> int:
        """An op on one activation; other static inputs count as parameters."""
        acts = self.acts(node)
        params = self.params(self.statics(node))
        return self.emit(node, op, acts[:1], params=params, **attrs)

    def alias(self, out: str, tensor: str) -> None:
        """``out`` is the same value as ``tensor`` (Identity, Dropout, Cast)."""
        if tensor not in self.value:
            raise HandlerUnsupported(f"reads {tensor!r}, a secondary output the importer does not model")
        self.value[out] = self.value[tensor]

    def unsupported(self, why: str) -> None:
        raise HandlerUnsupported(why)


def to_pair(values, default: int = 1) -> tuple[int, int]:
    """A 2-D (h, w) pair from an ONNX ints attribute; 1-D ops get (k, 1)."""
    if values is None or len(values) == 0:
        return (default, default)
    values = [int(v) for v in values]
    if len(values) == 1:
        return (values[0], 1)
    return (values[0], values[1])


def tensor_value(t: onnx.TensorProto, float_numel: int = 1):
    """Numpy value of a small integer / boolean tensor, or of a float tensor of
    at most ``float_numel`` elements, stored in the file, else None: float
    weights are never read."""
    if t.data_location == onnx.TensorProto.EXTERNAL:
        return None
    numel = math.prod(t.dims)
    if numel > float_numel and (t.data_type not in _INTEGER_TYPES or numel > SMALL_NUMEL):
        return None
    try:
        return numpy_helper.to_array(t)
    except Exception:  # malformed constant: treat the value as unknown
        return None


_INTEGER_TYPES = frozenset({
    onnx.TensorProto.INT64, onnx.TensorProto.INT32, onnx.TensorProto.INT16, onnx.TensorProto.INT8,
    onnx.TensorProto.UINT64, onnx.TensorProto.UINT32, onnx.TensorProto.UINT16, onnx.TensorProto.UINT8,
    onnx.TensorProto.BOOL,
})


def constant_value(node: onnx.NodeProto, float_numel: int = 1):
    """Value of a Constant node if small (as for :func:`tensor_value`), else None."""
    for a in node.attribute:
        if a.name == "value":
            return tensor_value(a.t, float_numel)
        if a.name in ("value_float", "value_int"):
            return np.asarray(helper.get_attribute_value(a))
        if a.name in ("value_floats", "value_ints"):
            v = helper.get_attribute_value(a)
            return np.asarray(v) if len(v) <= SMALL_NUMEL else None
    return None
