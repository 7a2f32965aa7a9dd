"""The canonical rules: passes over the IR that make one network give one CG
however it was written or exported.

Each rule is one function registered with :func:`rule` under an explicit
order; :func:`canonicalise` runs them in that order. The first paragraph of a
rule's docstring is its one description: ``docs/canonical_rules.md`` is
generated from it (``python -m gennape.cg.onnx_import.rules_table``). Every
rule is linear in the graph size. Adding a rule means adding one function here
(and its test in ``tests/test_onnx_patterns.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from gennape.cg.onnx_import.ir import PSEUDO_OPS, IRGraph
from gennape.cg.ops import WEIGHTED_OPS

#: Data movement that keeps the element order.
_PURE_RESHAPES = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze"})
#: Nodes an affine may not merge into: they vanish or are not computations.
NO_MERGE = frozenset({"input", "output", "scalar", "move", "pad"})


@dataclass(frozen=True)
class Rule:
    """One canonical rule: ``apply(ir)`` rewrites the IR in place."""

    order: int
    name: str
    apply: Callable[[IRGraph], None]

    @property
    def description(self) -> str:
        """The first paragraph of the rule's docstring, on one line."""
        paragraph = (self.apply.__doc__ or "").strip().split("\n\n")[0]
        return " ".join(line.strip() for line in paragraph.splitlines())


#: name -> rule, in registration order; :func:`rules` sorts them by order.
RULES: dict[str, Rule] = {}


def rule(order: int, name: str) -> Callable[[Callable], Callable]:
    """Register a canonical rule under ``name``, run at position ``order``."""

    def wrap(fn: Callable) -> Callable:
        if name in RULES:
            raise ValueError(f"canonical rule {name!r} is already registered")
        clash = next((r.name for r in RULES.values() if r.order == order), None)
        if clash is not None:
            raise ValueError(f"canonical rules {clash!r} and {name!r} share order {order}")
        RULES[name] = Rule(order, name, fn)
        return fn

    return wrap


def rules() -> list[Rule]:
    """Every rule, in the order :func:`canonicalise` runs them."""
    return sorted(RULES.values(), key=lambda r: r.order)


def canonicalise(ir: IRGraph) -> list[tuple[str, str]]:
    """Run every rule; return (ONNX op type, node name) of pattern parts that
    matched no pattern (an Erf, a Min(x, 6) not after a relu): the importer
    reports them as unsupported and, with ``unknown_ops="other"``, they become
    ``other`` nodes."""
    for r in rules():
        r.apply(ir)
    for _, n in ir.alive():
        assert n.op not in PSEUDO_OPS, f"pseudo op {n.op} left after canonicalisation"
    return ir.unsupported


# ------------------------------------------------------------------ helpers
def _is_scalar(n, fns: tuple[str, ...], value: float | None = None) -> bool:
    v = n.info.get("value")
    if n.op != "scalar" or n.info.get("fn") not in fns or n.info.get("const_first"):
        return False
    if value is None:
        return True
    return v is not None and abs(v - value) <= 1e-4 * abs(value)


def _is_div(n, value: float) -> bool:
    return _is_scalar(n, ("div",), value) or _is_scalar(n, ("mul",), 1.0 / value)


def _is_part(n, onnx_op: str) -> bool:
    return n.op == "part" and n.info.get("onnx") == onnx_op


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


def _products(ir: IRGraph):
    """(id, node) of every live product of two activations."""
    return [(i, m) for i, m in ir.alive() if m.op == "mul" and len(m.inputs) == 2]


# -------------------------------------------------------- constants and dead code
#: Consumers that keep computing when some inputs are constant: the constant
#: operands are dropped (a sum's constant term, a product's constant factor).
_DROPS_CONSTANT_OPERANDS = frozenset({"add", "mul", "concat", "matmul", "other", "output"})
#: Ops whose output is zero when every input is.
_KEEPS_ZERO = frozenset({"add", "mul", "concat", "move", "pad", "slice", "relu", "relu6", "max_pool",
                         "avg_pool", "global_avg_pool", "global_max_pool", "resize", "reduction"})


@rule(10, "zero_branches")
def remove_constant_branches(ir: IRGraph) -> None:
    """A product with a constant zero (``x.mul(0.)``, ``x * 0``: the ``none`` / ``Zero`` op of NB-201
    and DARTS) is a constant, and so is every node that reads only constants; constants leave the
    CG. A sum drops its constant terms, a product its constant factors (a product with a zero is
    zero), a concat its constant operands; a node left with one input vanishes into it, and an
    ``output`` fed only by constants keeps no incoming edge. The layers computing only what was
    dropped go with the dead code (next rule), so they count no params and no MACs.

    Constants folded by the importer never reach the IR (see ``Add`` in
    ``docs/supported_ops.md``); this rule handles what the exporter keeps as
    input-dependent arithmetic although its value is fixed.
    """
    nodes = ir.nodes
    const: set[int] = set()
    zero: set[int] = set()
    cons = ir.consumers()
    for i, n in ir.alive():
        if n.op == "scalar" and n.info.get("fn") == "mul" and n.info.get("value") == 0.0:  # 0 * x too
            const.add(i)
            zero.add(i)
            continue
        read = [s for s in n.inputs if s in const]
        if not read:
            continue
        if len(read) == len(n.inputs) and n.op != "output":
            const.add(i)
            if all(s in zero for s in read) and (n.op in _KEEPS_ZERO or _is_scalar(n, ("mul", "div"))):
                zero.add(i)
            continue
        if n.op == "mul" and any(s in zero for s in read):
            const.add(i)
            zero.add(i)
            continue
        if n.op not in _DROPS_CONSTANT_OPERANDS:
            continue  # a live node reading a constant in another slot keeps it
        n.inputs = [s for s in n.inputs if s not in const]
        for s in read:
            cons[s] = [c for c in cons[s] if c != i]
        if len(n.inputs) == 1 and n.op in ("add", "mul"):
            ir.replace(i, n.inputs[0], cons)
    for i in const:
        # A constant read by a live node in a slot it keeps stays; the rest go.
        if not any(nodes[c].alive and c not in const for c in cons[i]):
            nodes[i].alive = False


@rule(20, "dead_code")
def remove_dead_code(ir: IRGraph) -> None:
    """Nodes no network output depends on vanish (network inputs stay): unused layers, and the layers
    of branches the previous rule cut off."""
    nodes = ir.nodes
    needed = [False] * len(nodes)
    for i in range(len(nodes) - 1, -1, -1):
        n = nodes[i]
        if not n.alive:
            continue
        if n.op == "output":
            needed[i] = True
        if needed[i]:
            for s in n.inputs:
                needed[s] = True
        elif n.op != "input":
            n.alive = False


# ------------------------------------------------------------ reductions
def _original_axes(inner, outer) -> frozenset[int] | None:
    """Axes of ``inner``'s input that ``outer`` (reading ``inner``) reduces."""
    if inner.info["keepdims"]:
        return frozenset(outer.info["axes"])
    kept = [a for a in range(inner.info["rank"]) if a not in inner.info["axes"]]
    try:
        return frozenset(kept[a] for a in outer.info["axes"])
    except IndexError:
        return None


@rule(30, "chained_reductions")
def merge_chained_reductions(ir: IRGraph) -> None:
    """A reduction of a reduction of the same kind (mean of a mean, max of a max, ...) whose inner
    result has no other reader is one reduction over both sets of axes, any order, ``keepdims`` or
    not: OFA's SE squeeze ``x.mean(3, keepdim=True).mean(2, keepdim=True)`` is a mean over H and W."""
    cons = ir.consumers()
    nodes = ir.nodes
    for i, n in ir.alive():
        if n.op != "reduction":
            continue
        p = n.inputs[0]
        inner = nodes[p]
        if inner.op != "reduction" or inner.info["fn"] != n.info["fn"] or cons[p] != [i]:
            continue
        axes = _original_axes(inner, n)
        if axes is None:
            continue
        n.info = {**n.info, "axes": frozenset(inner.info["axes"]) | axes, "rank": inner.info["rank"]}
        n.in_shape = inner.in_shape
        _collapse(ir, cons, i, inner.inputs[0], "reduction", [p])


#: Reduction kind -> the global pool a mean / max over H and W is.
_GLOBAL_POOLS = {"mean": "global_avg_pool", "max": "global_max_pool"}


@rule(31, "spatial_reductions")
def reductions_over_space(ir: IRGraph) -> None:
    """A mean (max) over exactly H and W of an NCHW tensor is ``global_avg_pool``
    (``global_max_pool``), out ``(C, 1, 1)`` whatever ``keepdims``."""
    for _, n in ir.alive():
        if (n.op == "reduction" and n.info["rank"] == 4 and set(n.info["axes"]) == {2, 3}
                and n.info["fn"] in _GLOBAL_POOLS):
            n.op = _GLOBAL_POOLS[n.info["fn"]]
            n.out_shape = (n.in_shape[0], 1, 1)


# --------------------------------------------------------------- patterns
def _std_chain(ir: IRGraph, cons, q: int):
    """If ``q`` is ``sqrt(mean((r - mean(r))^2) + eps)`` (square as Pow 2 or
    ``d * d``, both means over the same axes, every link read only inside the
    chain but ``d``), return ``(d, r, links)``: the centred tensor, the input
    and the chain's nodes other than ``d``; else None."""
    nodes = ir.nodes
    root = _root_mean_square(ir, cons, q)
    if root is None:
        return None
    d, links = root
    v = links[2]
    sub = nodes[d]
    if not (sub.op == "add" and sub.info.get("fn") == "sub" and len(sub.inputs) == 2):
        return None
    r, m = sub.inputs
    mean = nodes[m]
    if not (mean.op == "reduction" and mean.info["fn"] == "mean" and mean.inputs == [r] and cons[m] == [d]
            and set(mean.info["axes"]) == set(nodes[v].info["axes"])):
        return None
    return d, r, [*links, m]


def _centred(ir: IRGraph, cons, n: int, x: int, like: int) -> bool:
    """Whether ``n`` is ``x - mean(x)`` with the mean over the axes of the
    reduction ``like`` and read by ``n`` alone."""
    sub = ir.nodes[n]
    if not (sub.op == "add" and sub.info.get("fn") == "sub" and len(sub.inputs) == 2 and sub.inputs[0] == x):
        return False
    m = ir.nodes[sub.inputs[1]]
    return (m.op == "reduction" and m.info["fn"] == "mean" and m.inputs == [x] and cons[sub.inputs[1]] == [n]
            and set(m.info["axes"]) == set(ir.nodes[like].info["axes"]))


def _readers_outside(cons, d: int, chain: list[int]) -> list[int]:
    return [c for c in cons[d] if c not in chain]


@rule(40, "layer_norm")
def collapse_layer_norm(ir: IRGraph) -> None:
    """Layer norm written out, ``(x - mean(x)) / sqrt(mean((x - mean(x))^2) + eps)`` (ReduceMean, Sub,
    Pow 2 or a self-product, ReduceMean, Add, Sqrt, Div; both means over the same axes: ConvNeXt's
    channels-first LayerNorm, ``x.var(unbiased=False)``), is ``layer_norm``; a following per-channel
    scale and shift merge into it as parameters (rule ``merge_affine``)."""
    cons = ir.consumers()
    for i, div in ir.alive():
        if not (div.op == "mul" and div.info.get("fn") == "div" and len(div.inputs) == 2):
            continue
        found = _std_chain(ir, cons, div.inputs[1])
        if found is None or cons[div.inputs[1]] != [i]:
            continue
        d, x, chain = found
        n = div.inputs[0]
        if n == d and _readers_outside(cons, d, chain) == [i]:
            _collapse(ir, cons, i, x, "layer_norm", chain + [d])
        elif n != d and not _readers_outside(cons, d, chain) and _centred(ir, cons, n, x, chain[-1]) \
                and cons[n] == [i]:
            # x.var() centres x itself: the numerator is a second x - mean(x)
            _collapse(ir, cons, i, x, "layer_norm", chain + [d, n, ir.nodes[n].inputs[1]])


@rule(41, "group_std")
def collapse_group_std(ir: IRGraph) -> None:
    """A standard deviation written out, ``sqrt(var(x) + eps)`` over some axes and not part of a layer
    norm (EvoNorm's ``group_std``: over the channel groups of ``x.reshape(B, G, C // G, H, W)``), is
    one ``layer_norm`` node (normalisation statistics) reading ``x``; what the network does with it
    (EvoNorm-S0 divides ``x * sigmoid(v * x)`` by it) stays."""
    cons = ir.consumers()
    for q, n in ir.alive():
        found = _std_chain(ir, cons, q) if _is_part(n, "Sqrt") else None
        if found is None:
            continue
        d, x, chain = found
        if not _readers_outside(cons, d, chain + [q]) and all(c == chain[3] for c in cons[d]):
            _collapse(ir, cons, q, x, "layer_norm", [c for c in chain if c != q] + [d])


def _root_mean_square(ir: IRGraph, cons, q: int) -> tuple[int, list[int]] | None:
    """If ``q`` is ``sqrt(mean(x^2) + eps)`` (square as Pow 2 or ``x * x``; a
    pure reshape may restore the dims a ``keepdims=0`` mean dropped, as the
    dynamo exporter writes ``var``; links read only inside the chain), return
    ``(x, [q, add, mean, square, *reshape])``; else None."""
    nodes = ir.nodes
    if not _is_part(nodes[q], "Sqrt"):
        return None
    a = nodes[q].inputs[0]
    if not (_is_scalar(nodes[a], ("add",)) and cons[a] == [q]):
        return None
    v, restore = nodes[a].inputs[0], []
    if _pure_reshape(nodes[v]) and cons[v] == [a]:
        v, restore = nodes[v].inputs[0], [v]
    if not (nodes[v].op == "reduction" and nodes[v].info["fn"] == "mean" and cons[v] == [restore[0] if restore else a]):
        return None
    p = nodes[v].inputs[0]
    sq = nodes[p]
    if cons[p] == [v] and (_is_scalar(sq, ("pow",), 2.0) or
                           (sq.op == "mul" and len(sq.inputs) == 2 and sq.inputs[0] == sq.inputs[1])):
        return sq.inputs[0], [q, a, v, p, *restore]
    return None


@rule(42, "rms_norm")
def collapse_rms_norm(ir: IRGraph) -> None:
    """RMS norm written out, ``x / sqrt(mean(x^2) + eps)`` or ``x * (1 / sqrt(...))`` (Pow 2, ReduceMean,
    Add, Sqrt, then Div, or Div of 1 and Mul; timm's RmsNorm2d, MobileNetV5), is ``layer_norm``; a
    following per-channel scale merges into it."""
    cons = ir.consumers()
    nodes = ir.nodes
    for i, n in ir.alive():
        if not (n.op == "mul" and len(n.inputs) == 2):
            continue
        if n.info.get("fn") == "div":
            candidates = [(n.inputs[0], n.inputs[1], [])]
        else:
            candidates = []
            for x, r in (n.inputs, n.inputs[::-1]):
                # scalar links (a Reciprocal, a Mul by 1.0) down to the reciprocal
                links, reader = [], i
                while nodes[r].op == "scalar" and cons[r] == [reader]:
                    links.append(r)
                    info = nodes[r].info
                    if info.get("fn") == "div" and info.get("const_first") and info.get("value") == 1.0:
                        candidates.append((x, nodes[r].inputs[0], links))
                        break
                    reader, r = r, nodes[r].inputs[0]
        for x, q, extra in candidates:
            found = _root_mean_square(ir, cons, q)
            if found is not None and found[0] == x and cons[q] == [extra[-1] if extra else i]:
                _collapse(ir, cons, i, x, "layer_norm", found[1] + extra)
                break


@rule(43, "l2_normalize")
def collapse_l2_normalize(ir: IRGraph) -> None:
    """``x / max(||x||_2, eps)`` over some axes (``F.normalize``: ReduceL2, Clip(eps), Expand, Div; the
    XCA attention of EdgeNeXt / XCiT) is ``layer_norm`` without parameters."""
    cons = ir.consumers()
    nodes = ir.nodes
    for i, div in ir.alive():
        if not (div.op == "mul" and div.info.get("fn") == "div" and len(div.inputs) == 2):
            continue
        x, k = div.inputs
        chain = []
        while nodes[k].op in ("move", "scalar") and cons[k] == [chain[-1] if chain else i]:
            chain.append(k)
            k = nodes[k].inputs[0]
        red = nodes[k]
        if red.op == "reduction" and red.info["fn"] == "l2" and red.inputs == [x] and \
                cons[k] == [chain[-1] if chain else i]:
            _collapse(ir, cons, i, x, "layer_norm", chain + [k])


@rule(44, "relu6")
def collapse_relu6(ir: IRGraph) -> None:
    """``Min(relu(x), 6)`` (``Min(Max(x, 0), 6)``) is ``relu6``; the relu must have no other reader."""
    cons = ir.consumers()
    for i, d in ir.alive():
        if _is_scalar(d, ("min",), 6.0):
            r = d.inputs[0]
            if ir.nodes[r].op == "relu" and cons[r] == [i]:
                _collapse(ir, cons, i, ir.nodes[r].inputs[0], "relu6", [r])


@rule(45, "hard_sigmoid")
def collapse_hard_sigmoid(ir: IRGraph) -> None:
    """``relu6(x + 3) / 6`` (or ``* 1/6``) is ``hard_sigmoid``; intermediate nodes must have no other
    reader, the scalars must be right operands with exactly these values."""
    cons = ir.consumers()
    nodes = ir.nodes
    for i, d in ir.alive():
        if not _is_div(d, 6.0):
            continue
        r = d.inputs[0]
        if nodes[r].op != "relu6" or cons[r] != [i]:
            continue
        a = nodes[r].inputs[0]
        if _is_scalar(nodes[a], ("add",), 3.0) and cons[a] == [r]:
            _collapse(ir, cons, i, nodes[a].inputs[0], "hard_sigmoid", [r, a])


@rule(46, "gates")
def collapse_gates(ir: IRGraph) -> None:
    """``x * sigmoid(x)`` is ``silu`` and ``x * hard_sigmoid(x)`` is ``hard_swish`` (either operand
    order); the gate must have no other reader."""
    cons = ir.consumers()
    for m, node in _products(ir):
        for x, g in (node.inputs, node.inputs[::-1]):
            gn = ir.nodes[g]
            if gn.op in ("sigmoid", "hard_sigmoid") and gn.inputs == [x] and cons[g] == [m]:
                _collapse(ir, cons, m, x, "silu" if gn.op == "sigmoid" else "hard_swish", [g])
                break


@rule(47, "relu6_swish")
def collapse_relu6_swish(ir: IRGraph) -> None:
    """``(x * relu6(x + 3)) / 6`` is ``hard_swish`` (the division, a scalar, vanishes later)."""
    cons = ir.consumers()
    nodes = ir.nodes
    for m, node in _products(ir):
        if len(cons[m]) != 1 or not _is_div(nodes[cons[m][0]], 6.0):
            continue
        for x, r in (node.inputs, node.inputs[::-1]):
            if nodes[r].op != "relu6" or cons[r] != [m]:
                continue
            a = nodes[r].inputs[0]
            if _is_scalar(nodes[a], ("add",), 3.0) and nodes[a].inputs == [x] and cons[a] == [r]:
                _collapse(ir, cons, m, x, "hard_swish", [r, a])
                break


@rule(48, "erf_gelu")
def collapse_erf_gelu(ir: IRGraph) -> None:
    """``x * 0.5 * (1 + erf(x / sqrt 2))`` (the 0.5 on either factor) is ``gelu``."""
    cons = ir.consumers()
    nodes = ir.nodes
    for m, node in _products(ir):
        for u, a in (node.inputs, node.inputs[::-1]):
            if not _is_scalar(nodes[a], ("add",), 1.0) or cons[a] != [m]:
                continue
            e = nodes[a].inputs[0]
            if not _is_part(nodes[e], "Erf") or cons[e] != [a]:
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
            break


def _scales(n, fn: str, value: float) -> bool:
    """Whether ``n`` adds (``fn="add"``) or multiplies by the scalar ``value``, the constant on either
    side (unlike :func:`_is_scalar`, for the commutative ops only)."""
    v = n.info.get("value")
    return n.op == "scalar" and n.info.get("fn") == fn and v is not None and abs(v - value) <= 1e-4 * abs(value)


@rule(49, "tanh_gelu")
def collapse_tanh_gelu(ir: IRGraph) -> None:
    """``x * 0.5 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))`` (``x^3`` as ``x * x * x`` or
    a Pow; the 0.5 on either factor or after the product; GELU's tanh approximation as the legacy
    exporter writes it below opset 20) is ``gelu``, as the dynamo exporter's ``Gelu`` op is."""
    cons = ir.consumers()
    nodes = ir.nodes

    def only(i: int, reader: int) -> bool:
        return cons[i] == [reader]

    def cube_of(c: int):
        """x when node ``c`` is ``x * x * x`` or ``x ** 3`` read only by its reader, else None."""
        n = nodes[c]
        if n.op == "scalar" and n.info.get("fn") == "pow" and n.info.get("value") == 3.0:
            return n.inputs[0], []
        if n.op == "mul" and len(n.inputs) == 2:
            for sq, x in (n.inputs, n.inputs[::-1]):
                if nodes[sq].op == "mul" and nodes[sq].inputs == [x, x] and only(sq, c):
                    return x, [sq]
        return None, []

    for m, node in _products(ir):
        for u, a in (node.inputs, node.inputs[::-1]):
            if not (_scales(nodes[a], "add", 1.0) and only(a, m)):
                continue
            t = nodes[a].inputs[0]
            if not (nodes[t].op == "tanh" and only(t, a)):
                continue
            sc = nodes[t].inputs[0]
            if not (_scales(nodes[sc], "mul", (2.0 / math.pi) ** 0.5) and only(sc, t)):
                continue
            inner = nodes[sc].inputs[0]
            if not (nodes[inner].op == "add" and len(nodes[inner].inputs) == 2 and only(inner, sc)):
                continue
            for x, c in (nodes[inner].inputs, nodes[inner].inputs[::-1]):
                if not (_scales(nodes[c], "mul", 0.044715) and only(c, inner)):
                    continue
                base, squares = cube_of(nodes[c].inputs[0])
                if base != x or not only(nodes[c].inputs[0], c):
                    continue
                dead = [a, t, sc, inner, c, nodes[c].inputs[0], *squares]
                if u != x:  # (x * 0.5) * (1 + tanh(...))
                    if not (_scales(nodes[u], "mul", 0.5) and nodes[u].inputs == [x] and only(u, m)):
                        continue
                    dead.append(u)
                _collapse(ir, cons, m, x, "gelu", dead)
                break
            else:
                continue
            break


@rule(50, "group_norm")
def collapse_group_norm(ir: IRGraph) -> None:
    """A normalisation between two pure reshapes that restore the input's shape (torch's GroupNorm
    exports as Reshape to ``(B, G, -1)``, InstanceNormalization, Reshape back) is one ``layer_norm``
    on the input's shape; the per-channel scale and shift after it merge into it (rule
    ``merge_affine``)."""
    cons = ir.consumers()
    nodes = ir.nodes
    for i, n in ir.alive():
        if n.op != "layer_norm" or len(cons[i]) != 1:
            continue
        before, after = n.inputs[0], cons[i][0]
        if not (_pure_reshape(nodes[before]) and cons[before] == [i] and _pure_reshape(nodes[after])):
            continue
        x = nodes[before].inputs[0]
        if nodes[after].out_shape != nodes[x].out_shape:
            continue
        _collapse(ir, cons, i, x, "layer_norm", [before])
        n.out_shape = nodes[after].out_shape
        ir.replace(after, i, cons)


def _pure_reshape(n) -> bool:
    return n.op == "move" and n.info.get("kind") in _PURE_RESHAPES


@rule(55, "unmatched_parts")
def report_unmatched_parts(ir: IRGraph) -> None:
    """An op the importer knows only as part of a pattern (Erf, Sqrt, ``Min(x, 6)``) that matched none
    is reported as unsupported (with ``unknown_ops="other"`` it is an ``other`` node)."""
    for _, n in ir.alive():
        if n.op == "part":
            ir.unsupported.append((n.info["onnx"], n.name))
            n.op = "other"
        elif n.op == "scalar" and n.info.get("fn") == "min":
            ir.unsupported.append(("Min", n.name))
            n.op = "other"


@rule(56, "other_reductions")
def other_reductions(ir: IRGraph) -> None:
    """A sum (or mean) over stacked branches is ``add``: over axis 1 of a rank-5 tensor (a split
    attention's ``x.reshape(B, radix, C, H, W).sum(1)``: SK-ResNet, ResNeSt) or over the stacking
    axis 0 (``torch.stack(heads).mean(0)``: CrossViT, distilled heads). Any other reduction that is
    not a global pool (over channels, tokens, one spatial axis) is ``reduce``."""
    for _, n in ir.alive():
        if n.op != "reduction":
            continue
        axes, fn = set(n.info["axes"]), n.info["fn"]
        branches = axes == {1} and n.info["rank"] == 5 or axes == {0}  # axis 0: a stack, see ReduceSum
        n.op = "add" if branches and fn in ("sum", "mean") else "reduce"


# ------------------------------------------------------------ merging
@rule(60, "merge_batch_norm")
def merge_batch_norm(ir: IRGraph) -> None:
    """A batch norm whose input is a conv / linear output read by nothing else merges into it (the node
    keeps its op and ``weight_shape``, its params grow by the BN's scale and shift, 2C); any other
    batch norm is a ``batch_norm`` node."""
    cons = ir.consumers()
    for i, n in ir.alive():
        if n.op != "bn":
            continue
        p = n.inputs[0]
        if cons[p] == [i] and ir.nodes[p].op in WEIGHTED_OPS:
            ir.nodes[p].params += n.params
            ir.replace(i, p, cons)
        else:
            n.op = "batch_norm"


@rule(61, "merge_affine")
def merge_affine(ir: IRGraph) -> None:
    """An Add / Sub / Mul / Div of an activation and a non-scalar parameter (a bias, a per-channel
    scale, a layer scale) merges into the node producing the activation when that node has no other
    reader and is a computation (not an input, scalar, data movement or pad); otherwise it is an
    ``add`` / ``mul`` node with one input edge and the parameter's size as params."""
    cons = ir.consumers()
    for i, n in ir.alive():
        if n.op != "affine":
            continue
        p = n.inputs[0]
        prod = ir.nodes[p]
        if cons[p] == [i] and prod.op not in NO_MERGE:
            prod.params += n.params
            ir.replace(i, p, cons)
        else:
            n.op = n.info["kind"]


@rule(57, "drop_scalars")
def drop_scalars(ir: IRGraph) -> None:
    """Scalar arithmetic left over from the patterns vanishes: scalars are never parameters and do not
    change the architecture. It goes before the merges, so that a constant term between a conv and a
    batch norm (a ``none`` edge's zero added in) does not keep the batch norm apart."""
    cons = ir.consumers()
    for i, n in ir.alive():
        if n.op == "scalar":
            ir.replace(i, n.inputs[0], cons)


@rule(71, "merge_pads")
def merge_pads(ir: IRGraph) -> None:
    """A Pad vanishes into its consumers, which read the unpadded tensor (``in_shape`` before the
    pad): Pad + Conv is a conv with a ``pads`` attribute, as the dynamo exporter's optimizer writes
    it (timm's TF-"same" and asymmetric pads, HGNetV2's stem)."""
    cons = ir.consumers()
    for i, n in ir.alive():
        if n.op == "pad":
            readers = [c for c in cons[i] if ir.nodes[c].inputs[0] == i]
            ir.replace(i, n.inputs[0], cons)
            for c in readers:
                ir.nodes[c].in_shape = ir.nodes[n.inputs[0]].out_shape


#: Parameter-free ops whose node fields say everything the op computes.
_CSE_OPS = frozenset({
    "relu", "relu6", "leaky_relu", "sigmoid", "hard_sigmoid", "silu", "hard_swish", "gelu", "tanh",
    "softmax", "max_pool", "avg_pool", "global_avg_pool", "global_max_pool", "add", "mul", "concat", "matmul",
})


@rule(73, "nested_concats")
def flatten_nested_concats(ir: IRGraph) -> None:
    """A parameter-free concat read only by concats along the same axis is spliced into them, its
    inputs in its place: ``cat([a, cat([b, c]), d])`` is ``cat([a, b, c, d])`` (the legacy exporter
    combines them so itself; the dynamo exporter keeps them nested, e.g. Inception-v3's 3x3
    branches)."""
    cons = ir.consumers()
    nodes = ir.nodes

    def spliceable(s: int, axis) -> bool:
        inner = nodes[s]
        return (inner.op == "concat" and not inner.params and inner.info.get("axis") == axis
                and all(nodes[c].op == "concat" and nodes[c].info.get("axis") == axis for c in cons[s]))

    orphans = set()
    for i, n in ir.alive():  # topological: an inner concat is already flat when its reader is visited
        axis = n.info.get("axis")
        if n.op != "concat" or not any(spliceable(s, axis) for s in n.inputs):
            continue
        spliced = [t for s in n.inputs for t in (nodes[s].inputs if spliceable(s, axis) else [s])]
        orphans.update(s for s in n.inputs if spliceable(s, axis))
        for s in set(n.inputs):
            cons[s] = [c for c in cons[s] if c != i]
        n.inputs, n.in_shape = spliced, nodes[spliced[0]].out_shape
        for s in spliced:
            cons[s].append(i)
    for s in orphans:  # every reader spliced it in
        nodes[s].alive = False
        for t in nodes[s].inputs:
            cons[t] = [c for c in cons[t] if c != s]


def _move_identity(n):
    """What a data-movement node computes, when its node fields and this say all of it: a pure
    reshape (to its ``out_shape``), an Expand or Tile (to its ``out_shape``: the shapes fix the
    repeats) or a Transpose with a known permutation; else None."""
    kind = n.info.get("kind") if n.op == "move" else None
    if kind in ("Expand", "Tile"):
        return (kind,)
    if kind is None or n.info.get("permutes"):
        return None
    if kind in _PURE_RESHAPES:
        return ("reshape",)
    return ("transpose", n.info["perm"]) if kind == "Transpose" and n.info.get("perm") else None


@rule(75, "common_subexpressions")
def merge_common_subexpressions(ir: IRGraph) -> None:
    """Two parameter-free activations, pools, sums, products, concats, matmuls, reshapes or
    transposes with the same attributes and the same inputs in the same slots are one node (what
    the exporter's own common-subexpression elimination makes of them when it sees them, e.g. two
    ReLUs reading one tensor; here also when only the rules above made them equal, e.g.
    ``avg_pool(x)`` and ``avg_pool(x + 0)``)."""
    cons = ir.consumers()
    first: dict[tuple, int] = {}
    for i, n in ir.alive():
        move = _move_identity(n)
        if (n.op not in _CSE_OPS or n.params) and move is None:
            continue
        key = (n.op, move, n.in_shape, n.out_shape, n.kernel, n.stride, n.dilation, n.groups, tuple(n.inputs))
        j = first.setdefault(key, i)
        if j != i:
            ir.replace(i, j, cons)


@rule(78, "consecutive_transposes")
def compose_transposes(ir: IRGraph) -> None:
    """A Transpose of a Transpose is one Transpose of the first one's input, with the two
    permutations composed, whatever else reads the first; when they cancel it vanishes (the
    legacy exporter composes them so itself; the dynamo exporter keeps both, e.g. FocalNet's and
    GC ViT's NHWC <-> NCHW round trips)."""
    cons = ir.consumers()
    nodes = ir.nodes

    def perm(n):
        return n.info.get("perm") if n.op == "move" and n.info.get("kind") == "Transpose" else None

    for i, n in ir.alive():
        outer, s = perm(n), n.inputs[0] if n.inputs else None
        inner = perm(nodes[s]) if outer and s is not None else None
        if not inner or len(inner) != len(outer):
            continue
        composed = tuple(inner[k] for k in outer)
        x = nodes[s].inputs[0]
        if composed == tuple(range(len(composed))):
            ir.replace(i, x, cons)
        else:
            cons[s] = [c for c in cons[s] if c != i]
            n.inputs, n.in_shape, n.info["perm"] = [x], nodes[x].out_shape, composed
            n.info["full"] = (nodes[s].info["full"][0], n.info["full"][1])
            cons[x].append(i)
        if not cons[s]:  # the first one had no other reader
            nodes[s].alive = False
            cons[x] = [c for c in cons[x] if c != s]


PERMUTING = frozenset({"Transpose", "DepthToSpace", "SpaceToDepth"})


def _trace(n) -> list | None:
    """The data-movement steps of a move node (or chain of them): ``(perm or None, input shape,
    output shape)`` each, full shapes; None when one step is not a reshape or known transpose."""
    if "trace" in n.info:
        return n.info["trace"]
    full = n.info.get("full")
    if full is None or (n.info.get("kind") not in _PURE_RESHAPES and not n.info.get("perm")):
        return None
    return [(n.info.get("perm"), *full)]


#: Chains over more elements than this are not traced (they stay permuting moves).
_MAX_TRACED = 1 << 22


def _keeps_order(trace) -> bool:
    """Whether the steps of :func:`_trace` leave every element where a reshape would."""
    if not trace or math.prod(trace[0][1]) > _MAX_TRACED:
        return False
    reorders = [perm for perm, before, _ in trace if perm and _reorders(perm, before)]
    if len(reorders) < 2:  # reshapes keep the order; one reordering transpose cannot be undone
        return not reorders
    x = np.arange(math.prod(trace[0][1])).reshape(trace[0][1])
    for perm, before, after in trace:
        if x.shape != tuple(before):
            return False
        x = x.transpose(perm) if perm else x.reshape(after)
        if x.shape != tuple(after):
            return False
    return bool((x.reshape(-1) == np.arange(x.size)).all())


def _reorders(perm, shape) -> bool:
    """Whether transposing ``shape`` by ``perm`` moves elements (it does not when it
    only moves axes of length 1)."""
    moved = [axis for axis in perm if shape[axis] != 1]
    return moved != sorted(moved)


@rule(80, "data_movement")
def simplify_moves(ir: IRGraph) -> None:
    """A chain of data-movement ops whose inner links have one reader is one node; a chain of pure
    reshapes (Reshape, Flatten, Squeeze, Unsqueeze; no Transpose, DepthToSpace, SpaceToDepth) whose
    output shape equals its input shape, or whose readers are all ``linear``, vanishes; any other
    chain (a channel shuffle) is one ``reshape`` node."""
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
            first, then = _trace(pn), _trace(n)
            pn.info["trace"] = first + then if first is not None and then is not None else None
            ir.replace(i, p, cons)
    # 2. pure reshapes that are no-ops or feed only linear layers vanish
    for i, n in ir.alive():
        if n.op != "move":
            continue
        feeds_linear = bool(cons[i]) and all(nodes[c].op == "linear" for c in cons[i])
        if n.info["permutes"] and (n.in_shape == n.out_shape or feeds_linear) and _keeps_order(_trace(n)):
            n.info["permutes"] = False  # transposes that undo each other across reshapes
        if not n.info["permutes"] and (n.in_shape == n.out_shape or feeds_linear):
            ir.replace(i, n.inputs[0], cons)
        else:
            n.op = "reshape"
