"""Fully connected layers and matrix products."""

from __future__ import annotations

from gennape.cg.onnx_import.registry import register


@register("Gemm")
def gemm(node, ctx):
    """Gemm -> linear (``weight_shape`` ``(out, in)``, params weight + bias), or
    matmul when both operands are activations.

    ``in_shape`` is ``(F,)`` and ``out_shape`` ``(out,)``; a preceding
    Flatten / Reshape vanishes (see the canonical rules).
    """
    a, b = node.input[0], node.input[1]
    trans_a, trans_b = int(ctx.attr(node, "transA", 0)), int(ctx.attr(node, "transB", 0))
    ashape = ctx.shape(a)
    features = ashape[0] if trans_a else ashape[1]
    if a in ctx.static:
        ctx.unsupported("Gemm with a constant first operand")
    if b not in ctx.static:
        acts = ctx.acts(node)
        ctx.emit(node, "matmul", acts[:2], in_shape=(features,), params=ctx.params(ctx.statics(node)),
                 info={"k": features})
        return
    bshape = ctx.shape(b)
    weight = (bshape[0], bshape[1]) if trans_b else (bshape[1], bshape[0])
    ctx.emit(node, "linear", [a], in_shape=(features,), weight_shape=weight,
             params=ctx.params(node.input[1:3]))


@register("MatMul")
def matmul(node, ctx):
    """MatMul -> linear when the right operand is a 2-D parameter ``(in, out)``
    (a following Add of the bias merges in, so MatMul+Add == Gemm), else matmul;
    a constant left operand (a learned query, e.g. timm's latent attention
    pool) counts as parameters of a matmul reading the right one.

    For inputs of rank > 2 (tokens) ``in_shape`` keeps the leading dimensions
    and MACs count every position.
    """
    a, b = node.input[0], node.input[1]
    if a in ctx.static:
        k = ctx.shape(a)[-1]
        ctx.emit(node, "matmul", [b], params=ctx.params([a]), info={"k": k})
        return
    ashape = ctx.feat(a)
    if b in ctx.static and len(ctx.shape(b)) == 2:
        k, n = ctx.shape(b)
        in_shape = (k,) if len(ashape) == 1 else ashape
        ctx.emit(node, "linear", [a], in_shape=in_shape, weight_shape=(n, k), params=ctx.params([b]))
        return
    k = ashape[-1] if ashape else 1
    ctx.emit(node, "matmul", ctx.acts(node), params=ctx.params(ctx.statics(node)), info={"k": k})


def _einsum_terms(equation: str) -> tuple[list[str], str] | None:
    """``"bij,bjk->bik"`` -> (["bij", "bjk"], "bik"); None for implicit output or ellipses."""
    eq = equation.replace(" ", "")
    if "->" not in eq or "." in eq:
        return None
    lhs, out = eq.split("->")
    return lhs.split(","), out


@register("Einsum")
def einsum(node, ctx):
    """Einsum of two operands that is a (batched) matrix product (each operand
    keeps the output's indices it has, the rest are summed) -> matmul of two
    activations, or linear when the second operand is a 2-D parameter; with
    any other constant operand (SAM's and MViTv2's relative positions,
    ``bhwc,hkc->bhwk`` with a gathered table) a matmul reading the activation
    that counts the table's parameters; one operand without summed indices (a
    transpose) -> data movement. Other equations are unsupported."""
    equation = ctx.attr(node, "equation", b"")
    terms = _einsum_terms(equation.decode() if isinstance(equation, bytes) else equation)
    if terms is None or len(terms[0]) != len(node.input):
        ctx.unsupported(f"Einsum {equation!r}")
    operands, out = terms
    if len(operands) == 1:
        if sorted(operands[0]) != sorted(out):
            ctx.unsupported(f"Einsum {equation!r} (a reduction)")
        ctx.emit(node, "move", node.input[:1], info={"kind": "Transpose"})
        return
    if len(operands) != 2:
        ctx.unsupported(f"Einsum {equation!r} of {len(operands)} operands")
    (ta, tb), (a, b) = operands, node.input
    if a in ctx.static:  # the product is symmetric: the activation goes first
        (ta, tb), (a, b) = (tb, ta), (b, a)
    summed = (set(ta) & set(tb)) - set(out)
    if not summed or (set(ta) | set(tb)) - set(out) != summed or a in ctx.static:
        ctx.unsupported(f"Einsum {equation!r}")
    sizes = dict(zip(ta, ctx.shape(a)))
    k = 1
    for index in summed:
        k *= int(sizes[index])
    if b not in ctx.static:
        ctx.emit(node, "matmul", [a, b], info={"k": k})
    elif len(tb) == 2 and len(summed) == 1:
        n = int(dict(zip(tb, ctx.shape(b)))[next(i for i in tb if i not in summed)])
        ctx.emit(node, "linear", [a], weight_shape=(n, k), params=ctx.params([b]))
    else:  # a weight per position (batch index shared with the activation): no single (out, in) shape
        ctx.emit(node, "matmul", [a], params=ctx.source_params([b]), info={"k": k})


#: ONNX recurrent op -> gates per hidden unit.
_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


@register("LSTM", "GRU", "RNN")
def recurrent(node, ctx):
    """LSTM, GRU, RNN -> rnn; ``in_shape`` ``(seq, input)``, ``out_shape``
    ``(seq, directions * hidden)``, ``weight_shape`` ``(directions * gates *
    hidden, input)``, params W + R + B, MACs ``seq * directions * gates *
    hidden * (input + hidden)``. Every output (Y, Y_h, Y_c) reads the node."""
    x, w = node.input[0], node.input[1]
    if x in ctx.static or any(t not in ctx.static for t in node.input[1:4] if t):
        ctx.unsupported(f"{node.op_type} with non-constant weights")
    if int(ctx.attr(node, "layout", 0)) != 0:
        ctx.unsupported(f"{node.op_type} with layout=1")
    seq, _, features = ctx.shape(x)
    dirs, gated, _ = ctx.shape(w)
    hidden = gated // _GATES[node.op_type]
    idx = ctx.emit(node, "rnn", [x], out=None, in_shape=(seq, features), out_shape=(seq, dirs * hidden),
                   weight_shape=(gated * dirs, features), params=ctx.params(node.input[1:4]),
                   info={"macs": seq * dirs * gated * (features + hidden)})
    for out in node.output:
        if out:
            ctx.value[out] = idx
