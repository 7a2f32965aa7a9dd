"""The conversion driver: ONNX model -> IR (via the op handlers) ->
canonical IR (via :mod:`gennape.cg.onnx_import.canonical`) -> :class:`gennape.cg.graph.CG`."""

from __future__ import annotations

import math
import warnings

import onnx

from gennape.cg.errors import ConversionError, UnsupportedOpsError
from gennape.cg.graph import CG, GraphBuilder, Node
from gennape.cg.import_options import UNKNOWN_OPS_CHOICES
from gennape.cg.ops import WEIGHTED_OPS, weighted_macs
from gennape.cg.onnx_import import canonical, constfold, load
from gennape.cg.onnx_import.context import Context, HandlerUnsupported, MissingShape
from gennape.cg.onnx_import.registry import all_handlers

DEFAULT_DOMAINS = constfold.DEFAULT_DOMAINS


def from_onnx(model, input_shape=None, unknown_ops: str = "error") -> CG:
    """Build the canonical CG of an ONNX model.

    Args:
        model: a path, the file's bytes or an ``onnx.ModelProto`` (not modified).
            Weight data is never read and external-data files are never opened.
        input_shape: optional shape of the first input, batch included
            (``(1, 3, 224, 224)`` or ``"1x3x224x224"``), replacing symbolic or
            unknown dimensions before shape inference.
        unknown_ops: ``"error"`` raises :class:`UnsupportedOpsError` listing
            every unsupported op; ``"other"`` maps them to ``other`` nodes and
            warns once.

    Raises:
        ConversionError: the input is not a usable ONNX model (one line).
        UnsupportedOpsError: unsupported ops with ``unknown_ops="error"``.
        ValueError: an invalid ``unknown_ops`` or ``input_shape`` value.
    """
    if unknown_ops not in UNKNOWN_OPS_CHOICES:
        raise ValueError(f"unknown_ops={unknown_ops!r}; valid choices: {', '.join(UNKNOWN_OPS_CHOICES)}")
    proto, source = load.read_model(model)
    graph = proto.graph
    order = load.topological_order(graph, source)
    if order != sorted(order):
        nodes = [graph.node[k] for k in order]
        copies = [onnx.NodeProto() for _ in nodes]
        for c, n in zip(copies, nodes):
            c.CopyFrom(n)
        del graph.node[:]
        graph.node.extend(copies)
    load.fix_input_shapes(proto, source, input_shape)
    opset = next((o.version for o in proto.opset_import if o.domain in DEFAULT_DOMAINS), 1)
    name = graph.name or ""
    if isinstance(model, str) or hasattr(model, "__fspath__"):
        from pathlib import Path

        name = Path(model).stem
    inferred, inference_error = load.infer_shapes(proto, source)
    shapes = load.shape_table(inferred)
    try:
        return _convert(inferred.graph, source, opset, shapes, unknown_ops, name, inference_error)
    except MissingShape:
        # A shape hidden behind a computed shape chain (a Reshape's target
        # built from Shape / Gather / Concat, a Pad's pads, a Resize's
        # scales), or an op onnx cannot infer: one walk that evaluates the
        # chains and infers node by node (constfold.resolve_shapes). Needed
        # by few models, so the common path pays nothing for it.
        causes = constfold.resolve_shapes(inferred, shapes)
        return _convert(inferred.graph, source, opset, shapes, unknown_ops, name, inference_error, causes)


def _convert(graph: onnx.GraphProto, source: str, opset: int, shapes: dict, unknown_ops: str, name: str,
             inference_error: str | None = None, shape_causes: dict[str, str] | None = None) -> CG:
    initializers = {init.name: init for init in graph.initializer}
    ctx = Context(source, opset, shapes, initializers, set(initializers))
    ctx.inference_error = inference_error
    ctx.shape_causes = shape_causes or {}
    inputs = load.network_inputs(graph)
    if not inputs:
        raise ConversionError(source, "the graph has no network input (every input is an initializer)")
    for inp in inputs:
        ctx.emit(None, "input", [], out=inp.name, in_shape=(), out_shape=ctx.feat(inp.name))
        ctx.ir.nodes[-1].name = inp.name

    unsupported: list[tuple[str, str]] = []
    static = ctx.static
    handlers = all_handlers()
    for node in graph.node:
        if constfold.is_static(node, static):
            _fold_static(node, ctx)
            continue
        outputs = [o for o in node.output if o]
        if outputs and all(ctx.is_empty(o) for o in outputs):
            ctx.empty.update(outputs)  # e.g. x[:, :0]: no data, no node
            continue
        known = node.domain in DEFAULT_DOMAINS
        handler = handlers.get(node.op_type) if known else None
        try:
            if handler is None:
                raise HandlerUnsupported(node.op_type)
            handler(node, ctx)
        except HandlerUnsupported:
            label = node.op_type if known else f"{node.domain}::{node.op_type}"
            unsupported.append((label, node.name))
            _emit_other(node, ctx)
            continue
        except (IndexError, KeyError, TypeError, ValueError, AttributeError) as err:
            # A node missing inputs or attributes the op requires: bad input.
            raise ConversionError(
                source, f"malformed {node.op_type} node {node.name or node.output[0]!r} ({type(err).__name__}: {err})"
            ) from None
        missing = [o for o in node.output[:1] if o and o not in ctx.value]
        if missing:  # a handler bug, never a user error
            raise AssertionError(f"handler for {node.op_type} did not map output {missing[0]!r}")

    for out in graph.output:
        if out.name in ctx.value:
            producer = ctx.ir.nodes[ctx.value[out.name]]
            shape = ctx.shapes.get(out.name)
            # An unsupported op's output may have no inferred shape.
            shape = ctx.feat(out.name) if producer.op != "other" or (shape and None not in shape) else producer.out_shape
            ctx.emit(None, "output", [out.name], out=None, in_shape=shape, out_shape=shape)
        else:  # a constant output: an output node with no producer
            ctx.emit(None, "output", [], out=None, in_shape=ctx.feat(out.name), out_shape=ctx.feat(out.name))
        ctx.ir.nodes[-1].name = out.name

    unsupported += canonical.canonicalise(ctx.ir)
    if unsupported:
        if unknown_ops == "error":
            raise UnsupportedOpsError(source, unsupported)
        kinds = sorted({op for op, _ in unsupported})
        warnings.warn(
            f"{source}: {len(unsupported)} node(s) of unsupported op type(s) {', '.join(kinds)} "
            "mapped to 'other'",
            stacklevel=3,
        )

    return _build(ctx, name)


def _fold_static(node: onnx.NodeProto, ctx: Context) -> None:
    """Static node: its outputs are parameters / shape values, never CG nodes."""
    for o in node.output:
        if o:
            ctx.static.add(o)
            ctx.static_producer[o] = node
    if node.op_type == "ConstantOfShape" and node.input and ctx.shapes.get(node.output[0]) is None:
        # Shape inference may give up on a ConstantOfShape; its shape vector is small.
        shape = ctx.const(node.input[0])
        if shape is not None:
            ctx.shapes[node.output[0]] = tuple(int(d) for d in shape.reshape(-1))


def _emit_other(node: onnx.NodeProto, ctx: Context) -> None:
    acts = [t for t in ctx.acts(node) if t in ctx.value]  # unmodelled secondary outputs are dropped
    out = next((o for o in node.output if o), None)
    in_shape = ctx.feat(acts[0]) if acts and ctx.shapes.get(acts[0]) else ()
    shape = ctx.shapes.get(out) if out else None
    out_shape = tuple(shape[1:]) if shape and None not in shape else ()
    idx = ctx.emit(node, "other", acts, out=out, in_shape=in_shape, out_shape=out_shape,
                   params=ctx.params(ctx.statics(node)))
    for o in node.output:
        if o:
            ctx.value[o] = idx


def _build(ctx: Context, name: str) -> CG:
    builder = GraphBuilder(name=name)
    new_id: dict[int, int] = {}
    for i, n in ctx.ir.alive():
        new_id[i] = builder.add(
            Node(
                op=n.op,
                in_shape=n.in_shape,
                out_shape=n.out_shape,
                kernel=n.kernel,
                stride=n.stride,
                dilation=n.dilation,
                groups=n.groups,
                weight_shape=n.weight_shape,
                params=n.params,
                macs=_macs(n),
                name=n.name,
            ),
            [new_id[s] for s in n.inputs],
        )
    return builder.build()


def _macs(n) -> int:
    """conv: Cout*Hout*Wout*(Cin/g)*kh*kw; linear: in*out per position;
    matmul: the product's multiply-adds; a handler's own count where it gives one
    (conv_transpose, rnn); others 0."""
    if "macs" in n.info:
        return int(n.info["macs"])
    if n.op in WEIGHTED_OPS:
        return weighted_macs(n.out_shape, n.weight_shape)
    if n.op == "matmul":
        return math.prod(n.out_shape) * int(n.info.get("k", 1))
    return 0
