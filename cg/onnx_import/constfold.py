"""Shapes through computed shape chains: a second, slower shape pass for the
models whose shapes onnx's own inference leaves unknown.

Exporters write a tensor's target shape, pads, scales or repeats as a small
subgraph computed from ``Shape`` / ``Gather`` / ``Concat`` / ``Unsqueeze`` /
arithmetic nodes (torchvision's and timm's attention reshapes, Swin's window
padding, TF-"same" padding, ``F.interpolate(scale_factor=2)``, HRNet's
``Resize`` to a computed size). onnx's data propagation covers only some of
those ops (not ``Mod``, not a ``Slice`` with computed ends, not ``Resize``
scales computed by a ``Concat``), and everything downstream of the first gap
stays unknown. :func:`resolve_shapes` walks the graph once in topological
order instead: it evaluates every static (input-value-independent) tensor
with numpy (:data:`EVAL`; integer values of up to :data:`SMALL_NUMEL`
elements, floats of up to :data:`MAX_FLOAT_OPERAND`, never weights, never
external data) and calls onnx's per-node shape inference with those values
for each node whose output shape is still unknown. One walk covers any
number of such chains; the importer runs it only when the ordinary inference
left a shape it needs unknown, so the common path pays nothing for it.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper

from gennape.cg.onnx_import.context import SMALL_NUMEL, constant_value, tensor_value
from gennape.cg.onnx_import.load import _first_line

#: Ops whose output depends only on their input's shape, never its values.
SHAPE_ONLY_OPS = frozenset({"Shape", "Size"})


def is_static(node: onnx.NodeProto, static: set[str]) -> bool:
    """Whether ``node``'s outputs do not depend on the network input's values,
    given the ``static`` tensors so far (visited in topological order)."""
    return node.op_type in SHAPE_ONLY_OPS or all(t in static for t in node.input if t)

#: Float tensors of at most this many elements may have their values read in
#: the shape pass: a Resize's scales hold one value per dimension.
MAX_FLOAT_OPERAND = 8

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


_BINARY = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Pow": np.power, "Equal": np.equal,
           "Less": np.less, "LessOrEqual": np.less_equal, "Greater": np.greater,
           "GreaterOrEqual": np.greater_equal, "And": np.logical_and, "Or": np.logical_or}
for _name, _fn in _BINARY.items():
    EVAL[_name] = (lambda f: lambda node, a, b, *_: f(a, b))(_fn)


@_op("Max", "Min", "Sum")
def _variadic(node, *xs):
    fn = {"Max": np.maximum, "Min": np.minimum, "Sum": np.add}[node.op_type]
    out = xs[0]
    for x in xs[1:]:
        out = fn(out, x)
    return out


@_op("Clip")
def _clip(node, x, lo=None, hi=None):
    # TF-"same" padding: max(needed, 0) is exported as a Clip of a float scalar.
    lo = _attr(node, "min") if lo is None else lo
    hi = _attr(node, "max") if hi is None else hi
    return np.clip(x, lo, hi) if lo is not None or hi is not None else x


@_op("Mod")
def _mod(node, a, b, *_):
    # fmod=0 (the default, integers only): the remainder takes the divisor's sign, as np.mod.
    return np.fmod(a, b) if _attr(node, "fmod", 0) else np.mod(a, b)


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


_UNARY = {"Floor": np.floor, "Ceil": np.ceil, "Neg": np.negative, "Abs": np.abs, "Sqrt": np.sqrt,
          "Reciprocal": np.reciprocal, "Round": np.round, "Sign": np.sign, "Not": np.logical_not}
for _name, _fn in _UNARY.items():
    EVAL[_name] = (lambda f: lambda node, x, *_: f(x))(_fn)


@_op("ReduceProd", "ReduceSum", "ReduceMax", "ReduceMin")
def _reduce(node, x, axes=None, *_):
    axes = _attr(node, "axes") if axes is None else axes
    if axes is None or len(axes) == 0:
        if _attr(node, "noop_with_empty_axes", 0):
            return x
        axes = range(x.ndim)
    fn = {"ReduceProd": np.prod, "ReduceSum": np.sum, "ReduceMax": np.max, "ReduceMin": np.min}[node.op_type]
    return fn(x, axis=tuple(int(a) for a in axes), keepdims=bool(_attr(node, "keepdims", 1)))


@_op("Tile")
def _tile(node, x, repeats, *_):
    return None if x.size * int(np.prod(repeats)) > SMALL_NUMEL else np.tile(x, [int(r) for r in repeats])


def evaluate(node: onnx.NodeProto, values: dict, shapes):
    """numpy value of a static node's first output from its inputs' ``values``
    (and, for Shape / Size, the input's shape), or None when unknown or not
    small (see :func:`small_value`)."""
    op = node.op_type
    try:
        if op == "Constant":
            return small_value(constant_value(node, MAX_FLOAT_OPERAND))
        if op in SHAPE_ONLY_OPS:
            shape = shapes.get(node.input[0])
            if shape is None or None in shape:
                return None
            if op == "Size":
                return np.asarray(math.prod(shape), dtype=np.int64)
            start, end = _attr(node, "start", 0), _attr(node, "end", None)
            return np.asarray(shape[start:end], dtype=np.int64)
        fn = EVAL.get(op)
        if fn is None:
            return None
        args = [values.get(t) if t else None for t in node.input]
        if any(a is None for t, a in zip(node.input, args) if t):
            return None
        with np.errstate(all="ignore"):  # a hostile Mod by 0 must not print a warning
            return small_value(fn(node, *args))
    except Exception:  # an odd constant: its value stays unknown
        return None


def small_value(value):
    """``value`` as an array if it is a value the shape pass keeps (integers up
    to SMALL_NUMEL elements, floats up to MAX_FLOAT_OPERAND), else None."""
    if value is None:
        return None
    value = np.asarray(value)
    limit = SMALL_NUMEL if value.dtype.kind in "biu" else MAX_FLOAT_OPERAND
    return value if value.size <= max(limit, 1) else None


#: Ops whose output has their first input's shape (used when onnx has no
#: inference for the op's version, e.g. GroupNormalization-21 in older onnx).
SAME_SHAPE = frozenset({
    "BatchNormalization", "InstanceNormalization", "LayerNormalization", "GroupNormalization", "LRN",
    "Relu", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "LeakyRelu", "PRelu", "HardSigmoid", "HardSwish",
    "Gelu", "Clip", "Erf", "Identity", "Dropout", "Cast",
})

DEFAULT_DOMAINS = ("", "ai.onnx")

#: Input slots holding a shape, sizes, pads, repeats or axes: values the
#: output shape depends on.
SHAPE_OPERANDS = {
    "Reshape": (1,), "Expand": (1,), "Tile": (1,), "Upsample": (1,), "ConstantOfShape": (0,),
    "Pad": (1, 2, 3), "Resize": (1, 2, 3), "Slice": (1, 2, 3, 4), "Range": (0, 1, 2),
    "Squeeze": (1,), "Unsqueeze": (1,), "Split": (1,), "TopK": (1,), "OneHot": (1,),
}


def resolve_shapes(model: onnx.ModelProto, shapes) -> dict[str, str]:
    """Fill ``shapes`` (a :class:`gennape.cg.onnx_import.load.ShapeTable` of
    ``model``, already shape-inferred) with every tensor shape one topological
    walk can resolve, see the module docstring.

    Returns, for each tensor whose shape stays unknown, the cause: the first
    node on its path whose output shape could not be inferred, and why.
    """
    walk = _ShapeWalk(model, shapes)
    walk.nodes(model.graph.node)
    return walk.causes


class _ShapeWalk:
    def __init__(self, model: onnx.ModelProto, shapes):
        graph = model.graph
        self.shapes = shapes
        self.opsets = {o.domain or "": o.version for o in model.opset_import}
        self.elem_types = {vi.name: vi.type.tensor_type.elem_type
                           for part in (graph.input, graph.value_info, graph.output) for vi in part}
        self.static = {init.name for init in graph.initializer}
        self.values: dict[str, np.ndarray | None] = {}  # None: not a small value
        self._producer: dict[str, onnx.NodeProto] = {}
        for init in graph.initializer:
            self.elem_types[init.name] = init.data_type
            self.values[init.name] = small_value(tensor_value(init, MAX_FLOAT_OPERAND))
        self.causes: dict[str, str] = {}
        self._schemas: dict[tuple[str, str], onnx.defs.OpSchema | None] = {}

    def nodes(self, nodes) -> None:
        shapes, static, producer = self.shapes, self.static, self._producer
        for node in nodes:
            outs = [o for o in node.output if o]
            if is_static(node, static):
                static.update(outs)
                producer.update((o, node) for o in outs[:1])
            if any(not _known(shapes.get(o)) for o in outs):
                if node.op_type == "If":
                    self.if_(node)
                else:
                    self.infer(node)

    def value(self, tensor: str):
        """The small value of a static tensor, evaluated on first use (most
        static tensors, e.g. the scalars of activation arithmetic, are never
        asked for)."""
        values, producer = self.values, self._producer
        stack = [tensor]  # iterative: a hostile file may hold a chain of 10^5 static nodes
        while stack:
            t = stack[-1]
            if t in values:
                stack.pop()
                continue
            node = producer.get(t)
            pending = [i for i in node.input if i and i not in values] if node is not None else []
            if pending:
                stack.extend(pending)
                continue
            values[t] = evaluate(node, values, self.shapes) if node is not None else None
            stack.pop()
        return values[tensor]

    def if_(self, node) -> None:
        """An If on a static condition (torch traces some size checks as
        one): the branch taken is walked, its outputs become the If's."""
        label = f"If node {node.name or node.output[0]!r}"
        cond = self.value(node.input[0])
        if cond is None or cond.size != 1:
            kind = "is not a constant" if node.input[0] not in self.static else "could not be evaluated"
            return self._unknown(node, f"{label}: its condition {kind} (control flow)")
        branch = _attr(node, "then_branch" if bool(cond.reshape(-1)[0]) else "else_branch")
        self.nodes(branch.node)
        for inner, out in zip(branch.output, node.output):
            if _known(self.shapes.get(inner.name)):
                self.shapes[out] = self.shapes.get(inner.name)
                self.elem_types[out] = self.elem_types.get(inner.name, inner.type.tensor_type.elem_type)
            else:
                self.causes[out] = self.causes.get(inner.name, f"{label}: the branch's output shape is unknown")
            if out in self.static:
                self._producer[out] = helper.make_node("Identity", [inner.name], [out])

    def infer(self, node) -> None:
        """Output shapes of one node by onnx's per-node inference, given its
        inputs' shapes and the values of its static inputs; records the cause
        for each output left unknown."""
        shapes = self.shapes
        label = f"{node.op_type} node {node.name or node.output[0]!r}"
        unknown_in = next((t for t in node.input if t and not _known(shapes.get(t))), None)
        if unknown_in is not None:
            return self._unknown(node, self.causes.get(unknown_in, f"the shape of its input {unknown_in!r} is unknown"))
        cause = self._infer_with_onnx(node, label)
        if cause is None:
            return
        if node.op_type in SAME_SHAPE and node.domain in DEFAULT_DOMAINS and node.input:
            shapes[node.output[0]] = shapes.get(node.input[0])
            return
        if node.op_type == "Concat" and node.domain in DEFAULT_DOMAINS and (shape := _concat_shape(node, shapes)):
            shapes[node.output[0]] = shape  # torch writes axis=-1 below opset 11, whose schema allows no negative axis
            return
        slots = SHAPE_OPERANDS.get(node.op_type, ())
        missing = [t for k, t in enumerate(node.input) if k in slots and t and self.values.get(t) is None]
        if missing:
            kind = "is not a constant" if missing[0] not in self.static else "could not be evaluated"
            cause = f"{label}: operand {missing[0]!r} {kind} ({cause.removeprefix(label + ': ')})"
        self._unknown(node, cause)

    def _unknown(self, node, cause: str) -> None:
        for o in node.output:
            if o and not _known(self.shapes.get(o)):
                self.causes[o] = cause

    def _schema(self, node):
        domain = node.domain if node.domain not in DEFAULT_DOMAINS else ""
        key = (node.op_type, domain)
        if key not in self._schemas:
            try:
                self._schemas[key] = onnx.defs.get_schema(node.op_type, self.opsets.get(domain, 1), domain)
            except onnx.defs.SchemaError:
                self._schemas[key] = None
        return self._schemas[key]

    def _infer_with_onnx(self, node, label: str) -> str | None:
        """None once the node's output shapes are set, else why not."""
        if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
            return f"{label} has a subgraph (control flow)"
        schema = self._schema(node)
        if schema is None:
            return f"{label}: an op onnx has no shape inference for"
        shapes, elem_types = self.shapes, self.elem_types
        types = {t: helper.make_tensor_type_proto(elem_types.get(t) or onnx.TensorProto.FLOAT, shapes.get(t))
                 for t in node.input if t}
        data = {t: numpy_helper.from_array(v, t) for t in node.input
                if t in self.static and (v := self.value(t)) is not None}
        try:
            out_types = onnx.shape_inference.infer_node_outputs(schema, node, types, data)
        except Exception as err:  # InferenceError and its kin: the op's own check
            return f"{label}: {_first_line(err)}"
        done = True
        for o in node.output:
            t = out_types.get(o)
            if not o or t is None:
                continue
            elem_types[o] = t.tensor_type.elem_type
            dims = t.tensor_type.shape.dim if t.tensor_type.HasField("shape") else None
            shape = None if dims is None else tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)
            if _known(shape):
                shapes[o] = shape
            else:
                done = False
        return None if done else f"{label}: its output shape depends on values the importer cannot evaluate"


def _concat_shape(node, shapes) -> tuple[int, ...] | None:
    """A Concat's output shape from its inputs' (any axis, negative ones too), or None if they do not fit."""
    ins = [shapes.get(t) for t in node.input if t]
    rank = len(ins[0]) if ins else 0
    axis = _attr(node, "axis", 0)
    if not ins or not -rank <= axis < rank or any(len(s) != rank for s in ins):
        return None
    axis %= rank
    if any(s[:axis] + s[axis + 1:] != ins[0][:axis] + ins[0][axis + 1:] for s in ins):
        return None
    return ins[0][:axis] + (sum(s[axis] for s in ins),) + ins[0][axis + 1:]


def _known(shape) -> bool:
    return shape is not None and None not in shape
