"""Convolution."""

from __future__ import annotations

from gennape.cg.errors import ConversionError
from gennape.cg.ops import conv_op_for
from gennape.cg.onnx_import.context import to_pair
from gennape.cg.onnx_import.registry import register


@register("Conv")
def conv(node, ctx):
    """Conv (1-D and 2-D) -> conv / group_conv / depthwise_conv by ``group``.

    ``weight_shape`` is the weight's ``(Cout, Cin/g, kh, kw)`` (1-D convs get
    ``kw = 1``); params are the weight plus the bias; padding (``pads`` or
    ``auto_pad``) shows only in the output shape.
    """
    x, w = node.input[0], node.input[1]
    if x in ctx.static or w not in ctx.static:
        ctx.unsupported("Conv with a non-constant weight")
    wshape = ctx.shape(w)
    if len(wshape) not in (3, 4):
        ctx.unsupported(f"{len(wshape) - 2}-D Conv")
    groups = int(ctx.attr(node, "group", 1))
    in_shape = ctx.feat(x)
    if wshape[1] * groups != in_shape[0]:
        raise ConversionError(
            ctx.source,
            f"Conv {node.name or node.output[0]!r}: the weight expects {wshape[1] * groups} input channels, "
            f"the input has {in_shape[0]}",
        )
    weight_shape = tuple(wshape) if len(wshape) == 4 else (*wshape, 1)
    ctx.emit(
        node, conv_op_for(groups, in_shape[0]), [x],
        kernel=weight_shape[2:4],
        stride=to_pair(ctx.attr(node, "strides")),
        dilation=to_pair(ctx.attr(node, "dilations")),
        groups=groups,
        weight_shape=weight_shape,
        params=ctx.params(node.input[1:3]),
    )


@register("ConvTranspose")
def conv_transpose(node, ctx):
    """ConvTranspose (2-D) -> conv_transpose (any ``group``); ``weight_shape``
    ``(Cout, Cin/g, kh, kw)`` like a conv's, params weight + bias, MACs
    ``Cin*Hin*Win*(Cout/g)*kh*kw`` (every input position meets the whole kernel)."""
    x, w = node.input[0], node.input[1]
    if x in ctx.static or w not in ctx.static:
        ctx.unsupported("ConvTranspose with a non-constant weight")
    wshape = ctx.shape(w)  # (Cin, Cout/g, kh, kw)
    if len(wshape) != 4:
        ctx.unsupported(f"{len(wshape) - 2}-D ConvTranspose")
    groups = int(ctx.attr(node, "group", 1))
    in_shape = ctx.feat(x)
    if wshape[0] != in_shape[0]:
        raise ConversionError(
            ctx.source,
            f"ConvTranspose {node.name or node.output[0]!r}: the weight expects {wshape[0]} input channels, "
            f"the input has {in_shape[0]}",
        )
    c_out = wshape[1] * groups
    ctx.emit(
        node, "conv_transpose", [x],
        kernel=tuple(wshape[2:4]),
        stride=to_pair(ctx.attr(node, "strides")),
        dilation=to_pair(ctx.attr(node, "dilations")),
        groups=groups,
        weight_shape=(c_out, wshape[0] // groups, *wshape[2:4]),
        params=ctx.params(node.input[1:3]),
        info={"macs": in_shape[0] * in_shape[1] * in_shape[2] * wshape[1] * wshape[2] * wshape[3]},
    )
