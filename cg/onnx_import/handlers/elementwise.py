"""Element-wise arithmetic and concatenation."""

from __future__ import annotations

from gennape.cg.onnx_import.registry import register

#: Layers that only make sense on data: a constant they compute (a conv of a
#: constant zero tensor, its batch norm) is a constant branch, not a parameter.
_DATA_LAYERS = frozenset({
    "Conv", "ConvTranspose", "BatchNormalization", "InstanceNormalization", "LayerNormalization",
    "GroupNormalization", "LRN", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
    "Relu", "Sigmoid", "HardSigmoid", "HardSwish", "Gelu", "Softmax", "Resize",
})


def constant_branch(ctx, tensor: str) -> bool:
    """Whether the static ``tensor`` is computed by a layer from constants
    (a *constant branch*: no network input reaches it), e.g. the BN shift that a
    conv of zeros adds into a live sum. Not a parameter: a weight computed from
    a weight (weight standardisation, a reshaped table) passes through no data layer."""
    memo = vars(ctx).setdefault("constant_branches", {})  # per conversion, tensor -> bool
    stack = [tensor]
    while stack:
        t = stack[-1]
        node = ctx.static_producer.get(t)
        if t in memo or node is None:
            memo.setdefault(t, False)
            stack.pop()
            continue
        pending = [i for i in node.input if i and i not in memo]
        if pending:
            stack.extend(pending)
            continue
        memo[t] = node.op_type in _DATA_LAYERS or any(memo[i] for i in node.input if i)
        stack.pop()
    return memo[tensor]


_KIND = {"Add": "add", "Sub": "add", "Mul": "mul", "Div": "mul"}
_FN = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div"}


@register("Add", "Sub", "Mul", "Div")
def binary(node, ctx):
    """Add, Sub -> add; Mul, Div -> mul, for two activations (Sub counts as an
    add and Div as a mul: same arithmetic family).

    With one constant operand: a non-scalar parameter (bias, per-channel scale)
    merges into the node producing the activation; a scalar vanishes unless it
    is part of a pattern (``relu6(x + 3) / 6`` -> hard_sigmoid, ...); so does a
    constant computed by layers from constants (a constant branch, e.g. a conv
    of zeros: not a parameter, and its layers leave no nodes).
    """
    acts = ctx.acts(node)
    if len(acts) == 2:
        ctx.emit(node, _KIND[node.op_type], acts, info={"fn": _FN[node.op_type]})
        return
    const = ctx.statics(node)[0]
    if constant_branch(ctx, const):  # a constant term or factor: vanishes like a scalar
        ctx.emit(node, "scalar", acts, info={"fn": _FN[node.op_type], "value": None, "const_first": False})
        return
    if ctx.numel(const) <= 1:
        value = ctx.const(const)
        value = float(value.reshape(-1)[0]) if value is not None and value.size == 1 else None
        ctx.emit(node, "scalar", acts, info={
            "fn": _FN[node.op_type], "value": value, "const_first": node.input[0] == const,
        })
        return
    ctx.emit(node, "affine", acts, params=ctx.params([const]), info={"kind": _KIND[node.op_type]})


@register("Where")
def where(node, ctx):
    """Where with a constant condition: choosing between two activations ->
    concat of both (each element comes from one); masking one activation by
    fixed values (``masked_fill`` with a constant mask, as the dynamo exporter
    zeroes the padding of an adaptive pool's shorter windows) -> vanishes like
    a scalar, or data movement where the mask broadcasts it to a larger shape.
    A condition computed from the data: unsupported."""
    cond, *choices = node.input[:3]
    if cond not in ctx.static:
        ctx.unsupported("Where with a computed condition")
    acts = [t for t in choices if t not in ctx.static]
    if len(acts) == 2:
        ctx.emit(node, "concat", acts, info={"axis": "Where"})
    elif ctx.shape(node.output[0]) != ctx.shape(acts[0]):
        ctx.emit(node, "move", acts, info={"kind": "Expand", "permutes": True})
    else:
        ctx.emit(node, "scalar", acts, info={"fn": "mask", "value": None, "const_first": False})


@register("Neg")
def neg(node, ctx):
    """Neg -> vanishes: scalar arithmetic, ``-1 * x`` (rotary embeddings'
    ``rotate_half``)."""
    ctx.emit(node, "scalar", ctx.acts(node)[:1], info={"fn": "mul", "value": -1.0, "const_first": False})


@register("Sum")
def sum_(node, ctx):
    """Sum of two or more activations -> add (one input: vanishes); constant
    operands count as parameters unless they are constant branches."""
    acts = ctx.acts(node)
    statics = [t for t in ctx.statics(node) if not constant_branch(ctx, t)]
    if len(acts) == 1 and not statics:
        ctx.alias(node.output[0], acts[0])
    elif len(acts) == 1:
        ctx.emit(node, "affine", acts, params=ctx.params(statics), info={"kind": "add"})
    else:
        ctx.emit(node, "add", acts, params=ctx.params(statics))


@register("Concat")
def concat(node, ctx):
    """Concat -> concat (inputs in operand order; constant operands count as
    parameters, e.g. a class token, unless they are constant branches). Empty
    operands (a zero-length slice) are left out; what one operand remains of
    vanishes."""
    statics = [t for t in ctx.statics(node) if not constant_branch(ctx, t)]
    acts = ctx.acts(node)
    if len(acts) == 1 and not statics:
        ctx.alias(node.output[0], acts[0])
    else:
        rank = len(ctx.shape(node.output[0]))
        ctx.emit(node, "concat", acts, params=ctx.params(statics),
                 info={"axis": ctx.attr(node, "axis", 1) % rank})  # for the nested_concats rule
