"""Layer-level CG building for the cell-based families (NB-201, NB-301).

:class:`LayerGraph` speaks in torch layers (``conv``, ``bn``, ``relu``, ...)
and produces the canonical CG the ONNX importer builds from the same network
exported with the legacy exporter (``dynamo=False``). Two things the exporter
does are mirrored here so that both paths agree:

* **Common-subexpression elimination.** The legacy exporter merges identical
  parameter-free ops on the same input (two ReLUs reading one tensor become
  one Relu; so do two equal pools, slices or sums). :meth:`LayerGraph._shared`
  reuses a node when op, attributes and inputs repeat. Ops owning parameters
  (conv, linear, batch norm) are never merged: their tensors differ.
* **Batch-norm merging** (canonical rule of :mod:`gennape.cg.graph`): a BN whose
  input is a conv / linear output consumed by nothing else is merged into that
  node (``params += 2C`` when affine, ``+0`` otherwise); any other BN stays a
  ``batch_norm`` node. Decided in :meth:`build`, once all consumers are known.
* **Dead-code elimination.** Layers whose result no output uses vanish.

Pure Python: no torch, no onnx. For speed, nodes are interned (each distinct
node is one object, its hashed bytes computed once per process) and
:meth:`LayerGraph.build` computes :class:`gennape.cg.graph.GraphBuilder`'s canonical
order directly (``build(reference=True)`` uses GraphBuilder; tests compare).
"""

from __future__ import annotations

import hashlib
import heapq
from functools import lru_cache
from typing import Any, Callable, Sequence

from gennape.cg.graph import CG, GraphBuilder, Node
from gennape.cg.ops import WEIGHTED_OPS, conv_op_for, weighted_macs

Shape = tuple[int, ...]


def conv_out(size: int, k: int, stride: int, pad: int, dilation: int = 1) -> int:
    """Output length of a convolution / pooling window along one axis."""
    return (size + 2 * pad - dilation * (k - 1) - 1) // stride + 1


# Interned nodes: each distinct node is one object, created once per process,
# with the bytes GraphBuilder hashes for it computed once (keyed by ``id``).
_ORDER_BYTES: dict[int, bytes] = {}


def intern_node(node: Node) -> Node:
    """Register ``node``'s ordering bytes for :func:`canonical_cg`; returns it.
    Callers keep the node alive (``lru_cache``), so its ``id`` stays unique."""
    _ORDER_BYTES[id(node)] = repr(node.order_key()).encode()
    return node


def order_bytes(node: Node) -> bytes:
    """The bytes GraphBuilder hashes for an interned ``node``."""
    return _ORDER_BYTES[id(node)]


def canonical_cg(nodes: Sequence[Node], keys: Sequence[bytes], inputs: Sequence[Sequence[int]],
                 name: str = "") -> CG:
    """``GraphBuilder.build()``'s CG, computed faster for nodes added in topological order.

    GraphBuilder's order: ancestry keys (node bytes, then the inputs' keys in
    slot order), ready nodes popped smallest key first, ties by insertion
    index. Insertion order is topological, so keys need no traversal.

    Args:
        nodes: the nodes, inputs before their consumers.
        keys: ``order_bytes`` of the node each key stands for (may differ from
            ``nodes[i]`` where a merge changed only parameter counts).
        inputs: ``inputs[i]``: the indices of node ``i``'s inputs, in slot order.
        name: the CG's name.
    """
    n = len(nodes)
    blake = hashlib.blake2b
    hashed: list[bytes] = []
    succ: list[list[int]] = [[] for _ in range(n)]
    indeg = [0] * n
    for i in range(n):
        h = blake(keys[i], digest_size=8)
        srcs = inputs[i]
        for s in srcs:
            h.update(hashed[s])
            succ[s].append(i)
        indeg[i] = len(srcs)
        hashed.append(h.digest())
    ready = [(hashed[i], i) for i in range(n) if indeg[i] == 0]
    heapq.heapify(ready)
    order: list[int] = []
    pop, push = heapq.heappop, heapq.heappush
    while ready:
        i = pop(ready)[1]
        order.append(i)
        for d in succ[i]:
            indeg[d] -= 1
            if indeg[d] == 0:
                push(ready, (hashed[d], d))
    new_id = [0] * n
    for new, old in enumerate(order):
        new_id[old] = new
    return CG(
        nodes=tuple([nodes[i] for i in order]),
        edges=tuple([(new_id[s], new_id[d]) for d in order for s in inputs[d]]),
        name=name,
    )


@lru_cache(maxsize=None)
def _node(op: str, in_shape: Shape, out_shape: Shape, kernel: tuple[int, int] = (1, 1),
          stride: tuple[int, int] = (1, 1), dilation: tuple[int, int] = (1, 1), groups: int = 1,
          weight_shape: Shape = (), params: int = 0, macs: int = 0) -> Node:
    """The interned node with these fields (one call site per op type, so equal
    nodes are the same object and CSE can key on ``id``)."""
    return intern_node(Node(op, in_shape, out_shape, kernel, stride, dilation, groups, weight_shape, params, macs))


class LayerGraph:
    """Collects layers, then :meth:`build` gives the canonical :class:`CG`.

    Every method takes and returns layer ids (ints); ``shape(i)`` is the
    output shape (batch excluded) of layer ``i``.
    """

    def __init__(self, name: str = ""):
        self.name = name
        self.nodes: list[Node] = []
        self.inputs: list[list[int]] = []
        self.bn_affine: dict[int, bool] = {}
        self._memo: dict[tuple, int] = {}

    # ------------------------------------------------------------ plumbing
    def shape(self, i: int) -> Shape:
        return self.nodes[i].out_shape

    def _add(self, node: Node, inputs: list[int]) -> int:
        self.nodes.append(node)
        self.inputs.append(inputs)
        return len(self.nodes) - 1

    def _shared(self, node: Node, inputs: list[int]) -> int:
        """Add a parameter-free node, or reuse the identical one (exporter CSE)."""
        key = (id(node), tuple(inputs))
        if key not in self._memo:
            self._memo[key] = self._add(node, inputs)
        return self._memo[key]

    # -------------------------------------------------------------- layers
    def input(self, shape: Shape) -> int:
        return self._add(_node("input", (), tuple(shape)), [])

    def output(self, x: int | None, shape: Shape) -> int:
        """The output node; ``x=None`` when the output depends on no input."""
        return self._add(_node("output", tuple(shape), tuple(shape)), [] if x is None else [x])

    def conv(self, x: int, c_out: int, k: int, stride: int = 1, pad: int = 0,
             dilation: int = 1, groups: int = 1, bias: bool = False) -> int:
        c, h, w = self.shape(x)
        ho, wo = conv_out(h, k, stride, pad, dilation), conv_out(w, k, stride, pad, dilation)
        weight = (c_out, c // groups, k, k)
        numel = c_out * (c // groups) * k * k
        node = _node(conv_op_for(groups, c), (c, h, w), (c_out, ho, wo), (k, k), (stride, stride),
                     (dilation, dilation), groups, weight, numel + (c_out if bias else 0),
                     weighted_macs((c_out, ho, wo), weight))
        return self._add(node, [x])

    def bn(self, x: int, affine: bool = True) -> int:
        s = self.shape(x)
        i = self._add(_node("batch_norm", s, s, params=2 * s[0] if affine else 0), [x])
        self.bn_affine[i] = affine
        return i

    def relu(self, x: int) -> int:
        s = self.shape(x)
        return self._shared(_node("relu", s, s), [x])

    def pool(self, kind: str, x: int, k: int, stride: int, pad: int) -> int:
        """``kind`` is ``max_pool`` or ``avg_pool``."""
        c, h, w = self.shape(x)
        out = (c, conv_out(h, k, stride, pad), conv_out(w, k, stride, pad))
        return self._shared(_node(kind, (c, h, w), out, (k, k), (stride, stride)), [x])

    def add(self, a: int, b: int) -> int:
        s = self.shape(a)
        return self._shared(_node("add", s, s), [a, b])

    def sum(self, terms: list[int]) -> int:
        """``((t0 + t1) + t2) + ...``: the chain of binary Adds a Python loop exports."""
        acc = terms[0]
        for t in terms[1:]:
            acc = self.add(acc, t)
        return acc

    def concat(self, xs: list[int]) -> int:
        c = sum(self.shape(x)[0] for x in xs)
        s0 = self.shape(xs[0])
        return self._shared(_node("concat", s0, (c, *s0[1:])), list(xs))

    def crop(self, x: int, start: int) -> int:
        """``x[:, :, start:, start:]``: the exporter writes one Slice per axis."""
        c, h, w = self.shape(x)
        y = self._shared(_node("slice", (c, h, w), (c, h - start, w)), [x])
        return self._shared(_node("slice", (c, h - start, w), (c, h - start, w - start)), [y])

    def global_avg_pool(self, x: int) -> int:
        c, h, w = self.shape(x)
        return self._shared(_node("global_avg_pool", (c, h, w), (c, 1, 1)), [x])

    def linear(self, x: int, out: int) -> int:
        """A linear layer with bias on the flattened input (the flatten vanishes)."""
        f = 1
        for d in self.shape(x):
            f *= d
        node = _node("linear", (f,), (out,), weight_shape=(out, f), params=out * f + out,
                     macs=weighted_macs((out,), (out, f)))
        return self._add(node, [x])

    # -------------------------------------------------------------- build
    def build(self, reference: bool = False) -> CG:
        """Drop unused layers, merge BNs, order canonically
        (with :class:`gennape.cg.graph.GraphBuilder` itself when ``reference``)."""
        n = len(self.nodes)
        # The exporter drops computations no output uses (e.g. an NB-201 node
        # whose out-edges are all ``none``); so do we. Inputs always stay.
        used = [node.op in ("output", "input") for node in self.nodes]
        for i in range(n - 1, -1, -1):
            if used[i]:
                for s in self.inputs[i]:
                    used[s] = True
        consumers = [0] * n
        for i in range(n):
            if used[i]:
                for s in self.inputs[i]:
                    consumers[s] += 1
        # One pass in topological order, as the importer's canonicaliser: a
        # merge makes the merged node's consumers read the producer.
        nodes = list(self.nodes)
        redirect = list(range(n))
        bns = set(self.bn_affine)
        for i in range(n):
            if not used[i] or i not in bns:
                continue
            (src,) = self.inputs[i]
            j = redirect[src]
            sole = consumers[src] == 1
            if sole and nodes[j].op in WEIGHTED_OPS:
                p = nodes[j]
                nodes[j] = _node(p.op, p.in_shape, p.out_shape, p.kernel, p.stride, p.dilation,
                                 p.groups, p.weight_shape, p.params + nodes[i].params, p.macs)
                redirect[i] = j
        kept = [i for i in range(n) if used[i] and redirect[i] == i]
        new_id = {old: new for new, old in enumerate(kept)}
        ins = [[new_id[redirect[s]] for s in self.inputs[i]] for i in kept]
        if reference:
            b = GraphBuilder(self.name)
            for i, srcs in zip(kept, ins):
                b.add(nodes[i], srcs)
            return b.build()
        # Merges change parameter counts only, so keys are those of the original nodes.
        return canonical_cg([nodes[i] for i in kept], [order_bytes(self.nodes[i]) for i in kept], ins, self.name)


def sum_cell(g: LayerGraph, x: int, edges: Sequence[tuple[int, int, Any]],
             apply: Callable[[int, Any, int], int], last: int) -> int | None:
    """A cell whose node ``j`` sums one op per earlier node; node 0 is ``x``, the last node its output.

    The NB-201 and TransNAS-Bench-101 micro cells. Zero edges are no edge (they add
    zeros). A node is *live* when some edge comes from a live node; a *dead* node
    is input-independent (zero, or a constant such as the BN shift of a conv of
    zeros): a constant branch, which by the canonical rules leaves the CG with
    every term it adds into a live node, parameters included.

    Args:
        g: the graph being built.
        x: the live cell input (node 0).
        edges: ``(node, source node, op)`` of the non-zero edges, in summation order.
        apply: ``apply(layer, op, source)`` builds the op on a live layer.
        last: the output node (all of whose edges may be zero edges).

    Returns:
        the live output layer, or None when the output node is dead.
    """
    nodes: list[int | None] = [x]
    for node in range(1, last + 1):
        live = [apply(nodes[src], op, src) for n, src, op in edges if n == node and nodes[src] is not None]
        nodes.append(g.sum(live) if live else None)
    return nodes[-1]
