"""Data movement: reshapes, transposes, pads, slices, resampling, no-ops."""

from __future__ import annotations

import numpy as np

from gennape.cg.errors import ConversionError
from gennape.cg.onnx_import.registry import register


@register("Identity", "Dropout", "Cast")
def passthrough(node, ctx):
    """Identity, Dropout, Cast -> vanish (Dropout's mask output is ignored)."""
    ctx.alias(node.output[0], node.input[0])


@register("Reshape", "Flatten", "Squeeze", "Unsqueeze")
def reshape(node, ctx):
    """Reshape, Flatten, Squeeze, Unsqueeze (axes as attribute or, from opset
    13, input) -> vanish in front of a linear layer or when they change no
    shape; otherwise a chain of data-movement ops becomes one reshape. The shape
    operand may come from a constant shape subgraph, which vanishes."""
    before, after = ctx.numel(node.input[0]), ctx.numel(node.output[0])
    if before != after:
        raise ConversionError(
            ctx.source,
            f"{node.op_type} {node.name or node.output[0]!r} turns {before} elements into {after}",
        )
    ctx.emit(node, "move", node.input[:1], info={"kind": node.op_type, "full": _full_shapes(node, ctx)})


def _full_shapes(node, ctx) -> tuple:
    """The full (batch included) input and output shapes of a data-movement node,
    from which the ``data_movement`` rule tells whether a chain keeps the element order."""
    return tuple(ctx.shape(node.input[0])), tuple(ctx.shape(node.output[0]))


@register("Transpose", "DepthToSpace", "SpaceToDepth")
def permute(node, ctx):
    """Transpose, DepthToSpace, SpaceToDepth -> reshape (a chain with the
    surrounding reshapes becomes one node, e.g. a channel shuffle); an identity
    Transpose vanishes."""
    perm = ctx.attr(node, "perm")
    if node.op_type == "Transpose" and perm is not None and list(perm) == sorted(perm):
        ctx.alias(node.output[0], node.input[0])
        return
    info = {"kind": node.op_type}
    if node.op_type == "Transpose":
        full = _full_shapes(node, ctx)
        info.update(perm=tuple(perm) if perm else tuple(reversed(range(len(full[0])))), full=full)
    ctx.emit(node, "move", node.input[:1], info=info)


@register("Expand", "Tile")
def broadcast(node, ctx):
    """Expand, Tile of an activation -> data movement (a copy to a larger shape:
    part of a chain that becomes one reshape); one that changes no shape vanishes."""
    if ctx.feat(node.input[0]) == ctx.feat(node.output[0]):
        ctx.alias(node.output[0], node.input[0])
        return
    ctx.emit(node, "move", node.input[:1], info={"kind": node.op_type, "permutes": True})


@register("Col2Im")
def col2im(node, ctx):
    """Col2Im (opset 18, ``F.fold``: the columns of an unfold scattered back into
    an image, summed where blocks overlap; VOLO's outlook attention) -> data
    movement (part of a chain that becomes one reshape)."""
    ctx.emit(node, "move", node.input[:1], info={"kind": node.op_type, "permutes": True})


@register("ScatterND")
def scatter_nd(node, ctx):
    """ScatterND (``x[:, :, 1:, 1:] = y``, MViTv2's relative positions added to
    the attention scores behind a class token) -> concat of the tensor and the
    updates, the tensor assembled from its kept part and the new one. An
    update that overwrites every element in order is the updates themselves
    (the dynamo exporter drops such an assignment, MViTv2 without a class
    token). One side constant (updates written into a fixed canvas, or fixed
    values into the tensor) is data movement of the other."""
    data, indices, updates = node.input[:3]
    if data in ctx.static or updates in ctx.static:
        moved = updates if data in ctx.static else data
        ctx.emit(node, "move", [moved], info={"kind": "ScatterND", "permutes": True})
        return
    overwrites = ctx.attr(node, "reduction", b"none") == b"none"  # opset 16's add / mul / max / min combine both
    if overwrites and ctx.numel(updates) == ctx.numel(data) and _in_order(ctx.const(indices), ctx.shape(data)):
        if ctx.shape(updates) == ctx.shape(data):
            ctx.alias(node.output[0], updates)
        else:
            ctx.emit(node, "move", [updates], info={"kind": "Reshape"})
        return
    ctx.emit(node, "concat", [data, updates], info={"axis": "ScatterND"})


def _in_order(indices, shape) -> bool:
    """Whether ScatterND's ``indices`` (``[..., k]``; None: not known) list every
    position of the first ``k`` axes of ``shape`` in row-major order (unknown
    ones count as in order, as for Gather)."""
    if indices is None:
        return True
    indices = np.asarray(indices)
    lead = tuple(shape[:indices.shape[-1]])
    flat = np.ravel_multi_index(tuple(indices.reshape(-1, len(lead)).T % np.array(lead)[:, None]), lead)
    return bool(np.array_equal(flat, np.arange(int(np.prod(lead)))))


@register("Pad")
def pad(node, ctx):
    """Pad (pads as attribute before opset 11, input from 11) -> merged into its
    consumers, whose in_shape is the padded shape."""
    ctx.emit(node, "pad", node.input[:1])


@register("Slice", "Split", "Gather")
def slice_(node, ctx):
    """Slice, Split (one slice node per output), Gather of constant indices
    from an activation -> slice. A Slice that keeps the whole shape (and does
    not reverse) vanishes: the legacy exporter keeps such no-op slices, the
    dynamo exporter drops them (Swin's ``x[:, :H, :W]``). A Gather with as
    many output as input elements is data movement: a reshape, unless its
    indices are known and not ``0 .. n-1`` in order (then a permuting move).
    The dynamo exporter writes ``as_strided`` views so (ConvNeXt's and Swin's
    pooled features), with indices in order but in the external-data file,
    which the importer never reads."""
    if node.op_type == "Gather" and node.input[0] in ctx.static:
        ctx.unsupported("Gather from a constant table (embedding)")
    if node.op_type == "Slice" and ctx.shape(node.output[0]) == ctx.shape(node.input[0]) and not _reverses(node, ctx):
        ctx.alias(node.output[0], node.input[0])  # takes everything: x[:, :H, :W] after a pad of zero
        return
    if node.op_type == "Gather" and ctx.numel(node.output[0]) == ctx.numel(node.input[0]):
        shuffles = _shuffles(node, ctx)
        ctx.emit(node, "move", node.input[:1], info={"kind": "Gather" if shuffles else "Reshape",
                                                     "permutes": shuffles, "full": _full_shapes(node, ctx)})
        return
    for out in node.output:
        if out:
            ctx.emit(node, "slice", node.input[:1], out=out)


@register("GatherND")
def gather_nd(node, ctx):
    """GatherND of constant indices from an activation (``x[:, :, perm]`` from
    the dynamo exporter; its adaptive pools over windows of unequal size gather
    every window) -> data movement (a reshape, unless the indices are known and
    not in order), or a slice when it keeps fewer elements. Indices of shape
    ``[oh, kh, ow, kw, 2]`` are recorded as ``windows`` for the
    ``adaptive_avg_pool`` rule. From a constant table (an embedding) or with
    computed indices: unsupported."""
    data, indices = node.input[:2]
    if data in ctx.static:
        ctx.unsupported("GatherND from a constant table (embedding)")
    if indices not in ctx.static:
        ctx.unsupported("GatherND with computed indices")
    if ctx.numel(node.output[0]) < ctx.numel(data):
        ctx.emit(node, "slice", [data])
        return
    info = {"kind": "GatherND", "permutes": not _in_order(ctx.const(indices), ctx.shape(data))}
    shape = ctx.shape(indices)  # known where the values lie in an external-data file
    if len(shape) == 5 and shape[-1] == 2 and not ctx.attr(node, "batch_dims", 0):
        info["windows"] = tuple(shape[:-1])
    ctx.emit(node, "move", [data], info=info)


def _reverses(node, ctx) -> bool:
    """Whether a Slice has a negative step (``x.flip``-like: it reorders)."""
    steps = ctx.const(node.input[4]) if len(node.input) > 4 and node.input[4] else None
    return steps is not None and bool((np.asarray(steps) < 0).any())


def _shuffles(node, ctx) -> bool:
    """Whether a Gather's indices are known and not ``0, 1, ..., n - 1`` for
    its axis of length ``n`` (in any shape; negative ones count from the end)."""
    indices = ctx.const(node.input[1])
    if indices is None:
        return False
    n = ctx.shape(node.input[0])[ctx.attr(node, "axis", 0)]
    flat = np.asarray(indices).reshape(-1)
    return not (flat.size == n and bool(np.array_equal(flat % n, np.arange(n))))


@register("Resize", "Upsample")
def resize(node, ctx):
    """Resize (opset 10+), Upsample (before 10) -> resize; scales / sizes come
    from the inferred output shape."""
    ctx.emit(node, "resize", node.input[:1])
