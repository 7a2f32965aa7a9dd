"""Canonicalisation passes over the IR: they make one network give one CG
however it was exported (the rules of :mod:`cg.graph`).

Passes run in this order; each is linear in the graph size:

1. :func:`merge_norm_and_affine` -- a ``bn`` whose producer is a conv / linear
   consumed by nothing else merges into it (params += 2C), else it becomes
   ``batch_norm``. An ``affine`` (Add / Sub / Mul / Div of a non-scalar
   parameter) merges into the node producing its activation when that node
   has no other consumer and is a real op (not ``input``, ``scalar``, ``move``
   or ``pad``); otherwise it stays as ``add`` / ``mul`` with one input edge
   and the parameter's size as params.
2. :func:`collapse_patterns` -- ``relu6(x + 3) / 6`` (or ``* 1/6``) ->
   ``hard_sigmoid``; ``x * sigmoid(x)`` -> ``silu``; ``x * hard_sigmoid(x)``
   and ``(x * relu6(x + 3)) / 6`` -> ``hard_swish``. Intermediate nodes of a
   pattern must have no other consumer.
3. :func:`drop_scalars` -- remaining scalar arithmetic vanishes (scalars are
   never parameters and do not change the architecture).
4. :func:`merge_pads` -- a Pad vanishes; its consumers keep the padded input
   shape as their ``in_shape``.
5. :func:`simplify_moves` -- a chain of data-movement ops with single
   consumers becomes one node; a chain of pure reshapes (Reshape, Flatten,
   Squeeze, Unsqueeze: no Transpose / DepthToSpace / SpaceToDepth) whose
   output equals its input shape, or whose consumers are all ``linear``,
   vanishes; any other chain becomes one ``reshape`` node.
"""

from __future__ import annotations

from cg.onnx_import.ir import PSEUDO_OPS, IRGraph

WEIGHTED = frozenset({"conv", "group_conv", "depthwise_conv", "linear"})
#: Nodes an affine may not merge into: they vanish or are not computations.
NO_MERGE = frozenset({"input", "output", "scalar", "move", "pad"})


def canonicalise(ir: IRGraph) -> None:
    merge_norm_and_affine(ir)
    collapse_patterns(ir)
    drop_scalars(ir)
    merge_pads(ir)
    simplify_moves(ir)
    for _, n in ir.alive():
        assert n.op not in PSEUDO_OPS, f"pseudo op {n.op} left after canonicalisation"


def merge_norm_and_affine(ir: IRGraph) -> None:
    cons = ir.consumers()
    for i, n in ir.alive():
        if n.op not in ("bn", "affine"):
            continue
        p = n.inputs[0]
        prod = ir.nodes[p]
        sole = cons[p] == [i]
        if n.op == "bn":
            if sole and prod.op in WEIGHTED:
                prod.params += n.params
                ir.replace(i, p, cons)
            else:
                n.op = "batch_norm"
        else:
            if sole and prod.op not in NO_MERGE:
                prod.params += n.params
                ir.replace(i, p, cons)
            else:
                n.op = n.info["kind"]


def _is_scalar(n, fns: tuple[str, ...], value: float) -> bool:
    v = n.info.get("value")
    return n.op == "scalar" and n.info.get("fn") in fns and v is not None and abs(v - value) <= 1e-4 * abs(value)


def _is_div6(n) -> bool:
    return _is_scalar(n, ("div",), 6.0) or _is_scalar(n, ("mul",), 1.0 / 6.0)


def collapse_patterns(ir: IRGraph) -> None:
    cons = ir.consumers()
    nodes = ir.nodes
    # relu6(x + 3) / 6 -> hard_sigmoid(x)
    for i, d in ir.alive():
        if not _is_div6(d):
            continue
        r = d.inputs[0]
        rn = nodes[r]
        if rn.op != "relu6" or cons[r] != [i]:
            continue
        a = rn.inputs[0]
        an = nodes[a]
        if not _is_scalar(an, ("add",), 3.0) or cons[a] != [r]:
            continue
        x = an.inputs[0]
        ir.replace(a, x, cons)
        rn.op, rn.in_shape = "hard_sigmoid", an.in_shape
        ir.replace(i, r, cons)
    # x * sigmoid(x) -> silu; x * hard_sigmoid(x) -> hard_swish;
    # (x * relu6(x + 3)) / 6 -> hard_swish
    for i, m in ir.alive():
        if m.op == "mul" and len(m.inputs) == 2 and not _gate(ir, cons, i):
            _relu6_swish(ir, cons, i)


def _gate(ir: IRGraph, cons, m: int) -> bool:
    """x * sigmoid(x) -> silu, x * hard_sigmoid(x) -> hard_swish; True if fused."""
    inputs = ir.nodes[m].inputs
    for x, g in (inputs, inputs[::-1]):
        gn = ir.nodes[g]
        if gn.op in ("sigmoid", "hard_sigmoid") and gn.inputs == [x] and cons[g] == [m]:
            _fuse(ir, cons, m, g, x, "silu" if gn.op == "sigmoid" else "hard_swish")
            return True
    return False


def _fuse(ir: IRGraph, cons, m: int, g: int, x: int, op: str) -> None:
    node = ir.nodes[m]
    ir.replace(g, x, cons)  # the gate's consumer m now reads x twice
    node.op = op
    node.inputs = [x]
    cons[x] = [c for c in cons[x] if c != m] + [m]
    node.in_shape = ir.nodes[x].out_shape


def _relu6_swish(ir: IRGraph, cons, m: int) -> None:
    """(x * relu6(x + 3)) / 6 -> hard_swish(x)."""
    nodes = ir.nodes
    mn = nodes[m]
    if len(cons[m]) != 1 or not _is_div6(nodes[cons[m][0]]):
        return
    d = cons[m][0]
    for x, r in (mn.inputs, mn.inputs[::-1]):
        rn = nodes[r]
        if rn.op != "relu6" or cons[r] != [m]:
            continue
        a = rn.inputs[0]
        an = nodes[a]
        if not _is_scalar(an, ("add",), 3.0) or an.inputs != [x] or cons[a] != [r]:
            continue
        ir.replace(a, x, cons)
        ir.replace(r, x, cons)
        mn.op, mn.inputs = "hard_swish", [x]
        cons[x] = [c for c in cons[x] if c != m] + [m]
        mn.in_shape = nodes[x].out_shape
        ir.replace(d, m, cons)
        return


def drop_scalars(ir: IRGraph) -> None:
    cons = ir.consumers()
    for i, n in ir.alive():
        if n.op == "scalar":
            ir.replace(i, n.inputs[0], cons)


def merge_pads(ir: IRGraph) -> None:
    cons = ir.consumers()
    for i, n in ir.alive():
        if n.op == "pad":
            ir.replace(i, n.inputs[0], cons)


PERMUTING = frozenset({"Transpose", "DepthToSpace", "SpaceToDepth"})


def simplify_moves(ir: IRGraph) -> None:
    cons = ir.consumers()
    nodes = ir.nodes
    # 1. chains of moves with single consumers -> their first node
    for i, n in ir.alive():
        if n.op != "move":
            continue
        n.info.setdefault("permutes", n.info.get("kind") in PERMUTING)
        p = n.inputs[0]
        pn = nodes[p]
        if pn.op == "move" and cons[p] == [i]:
            pn.out_shape = n.out_shape
            pn.info["permutes"] = pn.info["permutes"] or n.info["permutes"]
            ir.replace(i, p, cons)
    # 2. pure reshapes that are no-ops or feed only linear layers vanish
    for i, n in ir.alive():
        if n.op != "move":
            continue
        feeds_linear = bool(cons[i]) and all(nodes[c].op == "linear" for c in cons[i])
        if not n.info["permutes"] and (n.in_shape == n.out_shape or feeds_linear):
            ir.replace(i, n.inputs[0], cons)
        else:
            n.op = "reshape"
