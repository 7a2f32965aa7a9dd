"""The canonical rules: passes over the IR that make one network give one CG
however it was written or exported.

Each rule is one function registered with :func:`rule` under an explicit
order; :func:`canonicalise` runs them in that order. The first paragraph of a
rule's docstring is its one description: ``docs/canonical_rules.md`` is
generated from it (``python -m gennape.cg.onnx_import.rules_table``). Every
rule is linear in the graph size. The rules on constants, reductions and
merges are here, those that recognise written-out computations in
:mod:`~gennape.cg.onnx_import.canonical_patterns`, those on data movement in
:mod:`~gennape.cg.onnx_import.canonical_moves`. Adding a rule means adding one
function to one of them (and its test in ``tests/test_onnx_patterns.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

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
def _is_scalar(n, fns: tuple[str, ...], value: float | None = None, either_side: bool = False) -> bool:
    """Whether ``n`` is scalar arithmetic ``fns`` (with ``value``, when given) and the
    constant its right operand (``either_side``: or its left one, for add and mul)."""
    v = n.info.get("value")
    if n.op != "scalar" or n.info.get("fn") not in fns or (n.info.get("const_first") and not either_side):
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
    for d in dead:
        ir.drop(d, cons)
    ir.set_inputs(keep, [x], cons)
    ir.nodes[keep].op = op


def _products(ir: IRGraph):
    """(id, node) of every live product of two activations."""
    return [(i, m) for i, m in ir.alive() if m.op == "mul" and len(m.inputs) == 2]


def _pure_reshape(n) -> bool:
    return n.op == "move" and n.info.get("kind") in _PURE_RESHAPES


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


# The pattern and data-movement rules live in their own modules; importing them registers them.
from gennape.cg.onnx_import import canonical_moves, canonical_patterns  # noqa: E402,F401
