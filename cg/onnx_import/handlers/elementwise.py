"""Element-wise arithmetic and concatenation."""

from __future__ import annotations

from gennape.cg.onnx_import.registry import register

_KIND = {"Add": "add", "Sub": "add", "Mul": "mul", "Div": "mul"}
_FN = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div"}


@register("Add", "Sub", "Mul", "Div")
def binary(node, ctx):
    """Add, Sub -> add; Mul, Div -> mul, for two activations (Sub counts as an
    add and Div as a mul: same arithmetic family).

    With one constant operand: a non-scalar parameter (bias, per-channel scale)
    merges into the node producing the activation; a scalar vanishes unless it
    is part of a pattern (``relu6(x + 3) / 6`` -> hard_sigmoid, ...).
    """
    acts = ctx.acts(node)
    if len(acts) == 2:
        ctx.emit(node, _KIND[node.op_type], acts)
        return
    const = ctx.statics(node)[0]
    if ctx.numel(const) <= 1:
        value = ctx.const(const)
        value = float(value.reshape(-1)[0]) if value is not None and value.size == 1 else None
        ctx.emit(node, "scalar", acts, info={
            "fn": _FN[node.op_type], "value": value, "const_first": node.input[0] == const,
        })
        return
    ctx.emit(node, "affine", acts, params=ctx.params([const]), info={"kind": _KIND[node.op_type]})


@register("Sum")
def sum_(node, ctx):
    """Sum of two or more activations -> add (one input: vanishes)."""
    acts = ctx.acts(node)
    statics = ctx.statics(node)
    if len(acts) == 1 and not statics:
        ctx.alias(node.output[0], acts[0])
    elif len(acts) == 1:
        ctx.emit(node, "affine", acts, params=ctx.params(statics), info={"kind": "add"})
    else:
        ctx.emit(node, "add", acts, params=ctx.params(statics))


@register("Concat")
def concat(node, ctx):
    """Concat -> concat (inputs in operand order; constant operands count as
    parameters, e.g. a class token)."""
    ctx.emit(node, "concat", ctx.acts(node), params=ctx.params(ctx.statics(node)))
