"""Canonicalisation passes over the IR: they make one network give one CG
however it was exported (the rules of :mod:`gennape.cg.graph`).

Passes run in this order; each is linear in the graph size:

1. :func:`merge_norm_and_affine` -- a ``bn`` whose producer is a conv / linear
   consumed by nothing else merges into it (params += 2C), else it becomes
   ``batch_norm``. An ``affine`` (Add / Sub / Mul / Div of a non-scalar
   parameter) merges into the node producing its activation when that node
   has no other consumer and is a real op (not ``input``, ``scalar``, ``move``
   or ``pad``); otherwise it stays as ``add`` / ``mul`` with one input edge
   and the parameter's size as params.
2. :func:`collapse_patterns` -- ``relu6(x + 3) / 6`` (or ``* 1/6``) ->
   ``hard_sigmoid``; ``Min(relu(x), 6)`` -> ``relu6``; ``x * sigmoid(x)`` ->
   ``silu``; ``x * hard_sigmoid(x)`` and ``(x * relu6(x + 3)) / 6`` ->
   ``hard_swish``; ``x * 0.5 * (1 + erf(x / sqrt 2))`` -> ``gelu``.
   Intermediate nodes of a pattern must have no other consumer; scalar
   constants must be the right operand and equal the pattern's value.
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

from gennape.cg.onnx_import.ir import PSEUDO_OPS, IRGraph

WEIGHTED = frozenset({"conv", "group_conv", "depthwise_conv", "linear"})
#: Nodes an affine may not merge into: they vanish or are not computations.
NO_MERGE = frozenset({"input", "output", "scalar", "move", "pad"})


def canonicalise(ir: IRGraph) -> list[tuple[str, str]]:
    """Run every pass; return (ONNX op type, node name) of pattern parts that
    matched no pattern (an Erf, a Min(x, 6) not after a relu): the importer
    reports them as unsupported and, with ``unknown_ops="other"``, they become
    ``other`` nodes."""
    merge_norm_and_affine(ir)
    collapse_patterns(ir)
    leftovers = []
    for _, n in ir.alive():
        if n.op == "erf" or (n.op == "scalar" and n.info.get("fn") == "min"):
            leftovers.append(("Erf" if n.op == "erf" else "Min", n.name))
            n.op = "other"
    drop_scalars(ir)
    merge_pads(ir)
    simplify_moves(ir)
    for _, n in ir.alive():
        assert n.op not in PSEUDO_OPS, f"pseudo op {n.op} left after canonicalisation"
    return leftovers


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
    return (n.op == "scalar" and n.info.get("fn") in fns and not n.info.get("const_first")
            and v is not None and abs(v - value) <= 1e-4 * abs(value))


def _is_div(n, value: float) -> bool:
    return _is_scalar(n, ("div",), value) or _is_scalar(n, ("mul",), 1.0 / value)


def _collapse(ir: IRGraph, cons, keep: int, x: int, op: str, dead: list[int]) -> None:
    """Turn node ``keep`` into ``op(x)`` and delete the pattern's ``dead`` nodes
    (whose only consumers lie inside the pattern), keeping ``cons`` exact."""
    node = ir.nodes[keep]
    for d in dead:
        for s in ir.nodes[d].inputs:
            cons[s] = [c for c in cons[s] if c != d]
        cons[d] = []
        ir.nodes[d].alive = False
    for s in node.inputs:
        cons[s] = [c for c in cons[s] if c != keep]
    node.op, node.inputs, node.in_shape = op, [x], ir.nodes[x].out_shape
    cons[x].append(keep)


def collapse_patterns(ir: IRGraph) -> None:
    cons = ir.consumers()
    nodes = ir.nodes

    def sole(child: int, parent: int) -> bool:
        return cons[child] == [parent]

    # relu6(x + 3) / 6 -> hard_sigmoid(x); relu -> Min(., 6) -> relu6
    for i, d in ir.alive():
        if _is_scalar(d, ("min",), 6.0):
            r = d.inputs[0]
            if nodes[r].op == "relu" and sole(r, i):
                _collapse(ir, cons, i, nodes[r].inputs[0], "relu6", [r])
            continue
        if not _is_div(d, 6.0):
            continue
        r = d.inputs[0]
        if nodes[r].op != "relu6" or not sole(r, i):
            continue
        a = nodes[r].inputs[0]
        if _is_scalar(nodes[a], ("add",), 3.0) and sole(a, r):
            _collapse(ir, cons, i, nodes[a].inputs[0], "hard_sigmoid", [r, a])
    # Products: x * sigmoid(x) -> silu; x * hard_sigmoid(x) -> hard_swish;
    # (x * relu6(x + 3)) / 6 -> hard_swish; x * 0.5 * (1 + erf(x / sqrt 2)) -> gelu
    for i, m in ir.alive():
        if m.op == "mul" and len(m.inputs) == 2:
            _gate(ir, cons, i) or _relu6_swish(ir, cons, i) or _erf_gelu(ir, cons, i)


def _gate(ir: IRGraph, cons, m: int) -> bool:
    """x * sigmoid(x) -> silu, x * hard_sigmoid(x) -> hard_swish."""
    inputs = ir.nodes[m].inputs
    for x, g in (inputs, inputs[::-1]):
        gn = ir.nodes[g]
        if gn.op in ("sigmoid", "hard_sigmoid") and gn.inputs == [x] and cons[g] == [m]:
            _collapse(ir, cons, m, x, "silu" if gn.op == "sigmoid" else "hard_swish", [g])
            return True
    return False


def _relu6_swish(ir: IRGraph, cons, m: int) -> bool:
    """(x * relu6(x + 3)) / 6 -> hard_swish(x) (the division stays a scalar
    node, which vanishes)."""
    nodes = ir.nodes
    if len(cons[m]) != 1 or not _is_div(nodes[cons[m][0]], 6.0):
        return False
    for x, r in (nodes[m].inputs, nodes[m].inputs[::-1]):
        if nodes[r].op != "relu6" or cons[r] != [m]:
            continue
        a = nodes[r].inputs[0]
        if _is_scalar(nodes[a], ("add",), 3.0) and nodes[a].inputs == [x] and cons[a] == [r]:
            _collapse(ir, cons, m, x, "hard_swish", [r, a])
            return True
    return False


def _erf_gelu(ir: IRGraph, cons, m: int) -> bool:
    """x * (1 + erf(x / sqrt 2)) (times 0.5 anywhere) -> gelu(x)."""
    nodes = ir.nodes
    for u, a in (nodes[m].inputs, nodes[m].inputs[::-1]):
        if not _is_scalar(nodes[a], ("add",), 1.0) or cons[a] != [m]:
            continue
        e = nodes[a].inputs[0]
        if nodes[e].op != "erf" or cons[e] != [a]:
            continue
        d = nodes[e].inputs[0]
        if not _is_div(nodes[d], 2.0 ** 0.5) or cons[d] != [e]:
            continue
        x = nodes[d].inputs[0]
        dead = [a, e, d]
        if u != x:  # (x * 0.5) * (1 + erf(...))
            if not (_is_scalar(nodes[u], ("mul",), 0.5) and nodes[u].inputs == [x] and cons[u] == [m]):
                continue
            dead.append(u)
        _collapse(ir, cons, m, x, "gelu", dead)
        return True
    return False


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
        # The producer's CG shape, e.g. (C, 1, 1) for a ReduceMean with keepdims=0.
        n.in_shape = pn.out_shape
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
