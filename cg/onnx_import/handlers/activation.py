"""Activation functions."""

from __future__ import annotations

import math

from gennape.cg.onnx_import.registry import register


def _simple(op: str, doc: str):
    def handler(node, ctx):
        ctx.emit_unary(node, op)

    handler.__doc__ = doc
    handler.__name__ = op
    return handler


register("Relu")(_simple("relu", "Relu -> relu."))
register("Sigmoid")(_simple("sigmoid", "Sigmoid -> sigmoid; ``x * Sigmoid(x)`` becomes silu."))
register("Tanh")(_simple("tanh", "Tanh -> tanh."))
register("Softmax", "LogSoftmax")(_simple("softmax", "Softmax, LogSoftmax -> softmax."))
register("LeakyRelu", "PRelu")(
    _simple("leaky_relu", "LeakyRelu, PRelu -> leaky_relu (PRelu's slope counts as parameters).")
)
register("HardSigmoid")(
    _simple("hard_sigmoid", "HardSigmoid (any alpha, beta) -> hard_sigmoid; ``x * HardSigmoid(x)`` becomes hard_swish.")
)
register("HardSwish")(_simple("hard_swish", "HardSwish -> hard_swish."))
register("Gelu")(_simple("gelu", "Gelu (opset 20) -> gelu."))


def _bound(node, ctx, attr: str, slot: int, default: float) -> float | None:
    """A Clip bound: attribute before opset 11, optional scalar input from 11."""
    if ctx.opset < 11:
        return float(ctx.attr(node, attr, default))
    if len(node.input) <= slot or not node.input[slot]:
        return default
    value = ctx.const(node.input[slot])
    if value is None or value.size != 1:
        return None
    return float(value.reshape(-1)[0])


#: Largest lower bound of a Clip(eps, +inf) that only keeps a divisor off zero.
EPS_CLAMP = 1e-3


@register("Clip")
def clip(node, ctx):
    """Clip(0, 6) -> relu6; Clip(0, +inf) -> relu (bounds as attributes before
    opset 11, as inputs from 11); Clip(eps, +inf) with ``0 < eps <= 1e-3`` (a
    divisor kept off zero) vanishes. Other bounds are unsupported."""
    lo = _bound(node, ctx, "min", 1, -math.inf)
    hi = _bound(node, ctx, "max", 2, math.inf)
    if lo == 0.0 and hi == 6.0:
        ctx.emit(node, "relu6", ctx.acts(node)[:1])
    elif lo == 0.0 and hi is not None and math.isinf(hi) and hi > 0:
        ctx.emit(node, "relu", ctx.acts(node)[:1])
    elif lo is not None and 0.0 < lo <= EPS_CLAMP and hi is not None and math.isinf(hi) and hi > 0:
        # clamp(min=eps) keeps a divisor off zero (F.normalize): scalar arithmetic.
        ctx.emit(node, "scalar", ctx.acts(node)[:1], info={"fn": "clamp", "value": lo, "const_first": False})
    else:
        ctx.unsupported(f"Clip({lo}, {hi})")


@register("Erf")
def erf(node, ctx):
    """Erf -> part of GELU's exact decomposition ``x * 0.5 * (1 + erf(x / sqrt 2))``,
    which becomes gelu; an Erf outside that pattern is unsupported."""
    ctx.emit(node, "part", ctx.acts(node)[:1], info={"onnx": "Erf"})


@register("Sqrt")
def sqrt(node, ctx):
    """Sqrt -> part of a written-out layer norm, group std or RMS norm (see the
    canonical rules); a Sqrt outside those patterns is unsupported."""
    ctx.emit(node, "part", ctx.acts(node)[:1], info={"onnx": "Sqrt"})


@register("Reciprocal")
def reciprocal(node, ctx):
    """Reciprocal -> scalar arithmetic ``1 / x`` (part of a written-out RMS norm,
    else it vanishes)."""
    ctx.emit(node, "scalar", ctx.acts(node)[:1], info={"fn": "div", "value": 1.0, "const_first": True})


@register("Pow")
def pow_(node, ctx):
    """Pow with a scalar constant exponent -> scalar arithmetic (part of a
    written-out layer norm's variance, else it vanishes); other Pow variants
    are unsupported."""
    exponent = _scalar_operand(node, ctx)
    if exponent is None or node.input[0] in ctx.static:
        ctx.unsupported("Pow other than x ** constant")
    ctx.emit(node, "scalar", ctx.acts(node), info={"fn": "pow", "value": exponent, "const_first": False})


def _scalar_operand(node, ctx) -> float | None:
    statics = ctx.statics(node)
    if len(statics) != 1 or len(ctx.acts(node)) != 1 or ctx.numel(statics[0]) != 1:
        return None
    value = ctx.const(statics[0])
    return None if value is None else float(value.reshape(-1)[0])


@register("Max")
def max_(node, ctx):
    """Max(x, 0) -> relu (``Min(Max(x, 0), 6)`` -> relu6); other Max variants
    are unsupported."""
    if _scalar_operand(node, ctx) != 0.0:
        ctx.unsupported("Max other than Max(x, 0)")
    ctx.emit(node, "relu", ctx.acts(node))


@register("Min")
def min_(node, ctx):
    """Min(x, 6) after a relu -> relu6 (``Min(Max(x, 0), 6)``); other Min
    variants are unsupported."""
    if _scalar_operand(node, ctx) != 6.0:
        ctx.unsupported("Min other than Min(x, 6)")
    ctx.emit(node, "scalar", ctx.acts(node), info={"fn": "min", "value": 6.0, "const_first": False})
