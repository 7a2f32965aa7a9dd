"""Pooling."""

from __future__ import annotations

from gennape.cg.onnx_import.context import to_pair
from gennape.cg.onnx_import.registry import register


def _window_pool(node, ctx, op: str, global_op: str):
    x = node.input[0]
    in_shape = ctx.feat(x)
    kernel = to_pair(ctx.attr(node, "kernel_shape"))
    pads = ctx.attr(node, "pads") or []
    auto_pad = ctx.attr(node, "auto_pad", b"NOTSET")
    spatial = tuple(in_shape[1:3]) if len(in_shape) >= 3 else (in_shape[1], 1) if len(in_shape) == 2 else ()
    out = ctx.feat(node.output[0])
    covers_all = (
        kernel == spatial and not any(pads) and auto_pad in (b"NOTSET", b"VALID", "NOTSET", "VALID")
        and all(d == 1 for d in out[1:])
    )
    if covers_all:
        # One window over the whole map is a global pool (same function).
        ctx.emit(node, global_op, [x], out_shape=(out[0], 1, 1))
        return
    ctx.emit(node, op, [x], kernel=kernel, stride=to_pair(ctx.attr(node, "strides")),
             dilation=to_pair(ctx.attr(node, "dilations")))


@register("MaxPool")
def max_pool(node, ctx):
    """MaxPool -> max_pool; a window covering the whole unpadded input ->
    global_max_pool (out ``(C, 1, 1)``). The optional indices output is ignored."""
    _window_pool(node, ctx, "max_pool", "global_max_pool")


@register("AveragePool")
def avg_pool(node, ctx):
    """AveragePool -> avg_pool; a window covering the whole unpadded input ->
    global_avg_pool (out ``(C, 1, 1)``), like GlobalAveragePool."""
    _window_pool(node, ctx, "avg_pool", "global_avg_pool")


@register("GlobalAveragePool")
def global_avg_pool(node, ctx):
    """GlobalAveragePool -> global_avg_pool, out ``(C, 1, 1)``."""
    c = ctx.feat(node.input[0])[0]
    ctx.emit(node, "global_avg_pool", node.input[:1], out_shape=(c, 1, 1))


@register("GlobalMaxPool")
def global_max_pool(node, ctx):
    """GlobalMaxPool -> global_max_pool, out ``(C, 1, 1)``."""
    c = ctx.feat(node.input[0])[0]
    ctx.emit(node, "global_max_pool", node.input[:1], out_shape=(c, 1, 1))


def _reduce_axes(node, ctx) -> list[int] | None:
    """Axes from the attribute (before opset 18) or the second input (18+)."""
    axes = ctx.attr(node, "axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        value = ctx.const(node.input[1])
        if value is None:
            ctx.unsupported("reduction axes that are not constant")
        axes = [int(a) for a in value.reshape(-1)]
    return axes


def _reduce(node, ctx, fn: str):
    x = node.input[0]
    rank = len(ctx.shape(x))
    axes = _reduce_axes(node, ctx)
    if not axes:
        if ctx.attr(node, "noop_with_empty_axes", 0):
            ctx.alias(node.output[0], x)
            return
        axes = range(rank)
    axes = frozenset(int(a) % rank for a in axes)
    if 0 in axes and (axes != {0} or ctx.shape(x)[0] == 1):
        # Axis 0 of a batch-1 export is the batch; longer, it is a stack of branches.
        ctx.unsupported(f"{node.op_type} over the batch axis")
    keepdims = bool(ctx.attr(node, "keepdims", 1))
    ctx.emit(node, "reduction", [x], info={"fn": fn, "axes": axes, "rank": rank, "keepdims": keepdims})


@register("ReduceMean")
def reduce_mean(node, ctx):
    """ReduceMean (axes as attribute or, from opset 18, input) -> global_avg_pool
    over H, W (also a chain of means over H then W, any order, ``keepdims`` or
    not), out ``(C, 1, 1)``; part of a written-out layer norm; else reduce."""
    _reduce(node, ctx, "mean")


@register("ReduceMax")
def reduce_max(node, ctx):
    """ReduceMax -> global_max_pool over H, W (also chained, like ReduceMean),
    out ``(C, 1, 1)``; else reduce."""
    _reduce(node, ctx, "max")


@register("ReduceMin")
def reduce_min(node, ctx):
    """ReduceMin -> reduce."""
    _reduce(node, ctx, "min")


@register("ReduceSum")
def reduce_sum(node, ctx):
    """ReduceSum over stacked branches (axis 1 of a rank-5 tensor: a split
    attention, SK-ResNet, ResNeSt; axis 0 when longer than the batch of 1:
    ``torch.stack(heads).sum(0)``) -> add (ReduceMean likewise); else reduce."""
    _reduce(node, ctx, "sum")


@register("ReduceL2")
def reduce_l2(node, ctx):
    """ReduceL2 -> part of ``F.normalize`` (layer_norm); else reduce."""
    _reduce(node, ctx, "l2")
