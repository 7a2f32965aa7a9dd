"""Canonical rules on data movement and shared subexpressions: pads, slice
assignments, nested concats, common subexpressions, transposes, chains of reshapes
(:mod:`gennape.cg.onnx_import.canonical` holds the registry and runs them in order)."""

from __future__ import annotations

import math

import numpy as np

from gennape.cg.onnx_import.canonical import _PURE_RESHAPES, rule
from gennape.cg.onnx_import.ir import IRGraph


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


def _transpose_perm(n) -> tuple[int, ...] | None:
    """A Transpose node's known permutation; None for any other node."""
    return n.info.get("perm") if n.op == "move" and n.info.get("kind") == "Transpose" else None


def _compose(inner: tuple[int, ...], outer: tuple[int, ...]) -> tuple[int, ...]:
    """The one permutation of transposing by ``inner``, then by ``outer``."""
    return tuple(inner[k] for k in outer)


@rule(72, "slice_assignments")
def fold_slice_assignments(ir: IRGraph) -> None:
    """A slice assignment as the dynamo exporter writes it is the legacy exporter's single ScatterND
    (one concat of the tensor and the update): ``x[:, :, 1:] = y`` is a ScatterND along the sliced
    axis brought first by Transposes before it and back by one after it, and ``x[:, :, 1:, 1:] = y``
    two nested ones, the inner writing ``y`` into the slice ``x[:, :, 1:]`` (MViTv2's attention
    behind its class token). The Transposes vanish and a nested assignment is one concat of ``x``
    and ``y``."""
    cons = ir.consumers()
    nodes = ir.nodes
    for i, n in ir.alive():
        if not _is_scatter(n):
            continue
        x, into = _before_transposes(ir, cons, n.inputs[0])
        update, via = _before_transposes(ir, cons, n.inputs[1])
        after = cons[i][0] if len(cons[i]) == 1 else None
        if not into or after is None or not _undoes([nodes[t].info["perm"] for t in into[::-1]],
                                                     _transpose_perm(nodes[after])):
            continue
        dead = [*into, *via]
        inner = nodes[update]
        if _is_scatter(inner) and cons[update] == [via[-1] if via else i]:
            sliced, inner_into = _before_transposes(ir, cons, inner.inputs[0])
            inner_update, inner_via = _before_transposes(ir, cons, inner.inputs[1])
            if nodes[sliced].op == "slice" and _before_transposes(ir, cons, nodes[sliced].inputs[0])[0] == x:
                dead += [update, *inner_into, *inner_via]
                update = inner_update
        ir.replace(after, i, cons)
        ir.set_inputs(i, [x, update], cons)
        n.out_shape = nodes[x].out_shape
        for d in dead:  # readers before what they read: each is unread when its turn comes
            if not cons[d]:
                ir.drop(d, cons)


def _is_scatter(n) -> bool:
    return n.op == "concat" and n.info.get("axis") == "ScatterND"


def _before_transposes(ir: IRGraph, cons, t: int) -> tuple[int, list[int]]:
    """``(source, transposes)``: what ``t`` is a transpose (or chain of them) of,
    each read only by the next, and those transposes, the reader first."""
    chain = []
    while _transpose_perm(ir.nodes[t]) and len(cons[t]) == 1:
        chain.append(t)
        t = ir.nodes[t].inputs[0]
    return t, chain


def _undoes(perms: list[tuple[int, ...]], last: tuple[int, ...] | None) -> bool:
    """Whether transposing by ``perms`` in order and then by ``last`` moves nothing."""
    if last is None or any(len(p) != len(last) for p in perms):
        return False
    order = tuple(range(len(last)))
    for perm in [*perms, last]:
        order = _compose(order, perm)
    return order == tuple(range(len(last)))


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
        ir.set_inputs(i, spliced, cons)
    for s in orphans:  # every reader spliced it in
        ir.drop(s, cons)


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


@rule(76, "self_products")
def drop_squares(ir: IRGraph) -> None:
    """A product of a tensor with itself, ``x * x`` (``torch.square`` as the legacy exporter writes
    it, or two equal reshapes of one tensor multiplied once the rule above made them one), is
    ``x ** 2``, which vanishes like ``Pow(x, 2)``, as the dynamo exporter writes it (rule
    ``drop_scalars``; timm's SquaredReLU is a relu). The norm patterns above take either."""
    cons = ir.consumers()
    for i, n in ir.alive():
        if (n.op == "mul" and n.info.get("fn") != "div" and len(n.inputs) == 2 and n.inputs[0] == n.inputs[1]
                and not n.params):
            ir.replace(i, n.inputs[0], cons)


@rule(77, "softmax_transposes")
def transposes_after_softmax(ir: IRGraph) -> None:
    """A Transpose read only by a softmax goes after it (a softmax over an axis of a transposed
    tensor is the transposed softmax over the axis it came from). Below opset 13 Softmax flattens
    the axes after its own, so the legacy exporter writes ``x.softmax(1)`` as Transpose, Softmax
    over the last axis, Transpose back (ResNeSt's and SKNet's split attention) and folds the one
    back into a Transpose after it (CoaT's ``k.softmax(2).transpose(-1, -2)``), where from opset
    13 it writes one Softmax; with each Transpose after its softmax, those that cancel vanish
    (next rule)."""
    cons = ir.consumers()
    nodes = ir.nodes
    moved = True
    while moved:  # a chain of transposes before a softmax moves one at a time
        moved = False
        for i, n in ir.alive():
            t = n.inputs[0] if n.op == "softmax" and len(n.inputs) == 1 else None
            if t is None or not (_transpose_perm(nodes[t]) and cons[t] == [i]):
                continue
            # Swap the two nodes' places, so that node ids stay in topological order.
            transpose, x = nodes[t], nodes[t].inputs[0]
            nodes[t], nodes[i] = n, transpose
            n.inputs, transpose.inputs = [x], [t]
            n.in_shape = n.out_shape = transpose.in_shape  # consumer lists stay right: ids keep their readers
            moved = True


@rule(78, "consecutive_transposes")
def compose_transposes(ir: IRGraph) -> None:
    """A Transpose of a Transpose is one Transpose of the first one's input, with the two
    permutations composed, whatever else reads the first; when they cancel it vanishes (the
    legacy exporter composes them so itself; the dynamo exporter keeps both, e.g. FocalNet's and
    GC ViT's NHWC <-> NCHW round trips)."""
    cons = ir.consumers()
    nodes = ir.nodes
    for i, n in ir.alive():
        outer, s = _transpose_perm(n), n.inputs[0] if n.inputs else None
        inner = _transpose_perm(nodes[s]) if outer and s is not None else None
        if not inner or len(inner) != len(outer):
            continue
        composed = _compose(inner, outer)
        x = nodes[s].inputs[0]
        if composed == tuple(range(len(composed))):
            ir.replace(i, x, cons)
        else:
            n.info["perm"], n.info["full"] = composed, (nodes[s].info["full"][0], n.info["full"][1])
            ir.set_inputs(i, [x], cons)
        if not cons[s]:  # the first one had no other reader
            ir.drop(s, cons)


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
        # a permuting chain may still keep the order: transposes that undo each other across reshapes
        if (n.in_shape == n.out_shape or feeds_linear) and (not n.info["permutes"] or _keeps_order(_trace(n))):
            ir.replace(i, n.inputs[0], cons)
        else:
            n.op = "reshape"
