"""The computation graph (CG): atomic-operation nodes, data-flow edges, JSON form.

Canonical form
--------------
One network gives one CG however it was exported. Every producer of CGs (the
ONNX importer, the benchmark-family builders) follows these rules, and
:class:`GraphBuilder` puts the nodes in one canonical order:

* Shapes exclude the batch dimension: ``(C, H, W)`` for feature maps,
  ``(F,)`` for vectors. Global pools always give ``(C, 1, 1)``; a linear
  layer's ``in_shape`` is always its flattened ``(F,)``.
* Parameters are the weights, biases and scales that layers on a path from a
  network input to a network output read (initializers, ConstantOfShape
  outputs in weightless files, and what is computed from them alone, such as
  a standardised weight). Scalars and Constant-node values are never
  parameters, and neither is a *constant branch*: a value no network input
  reaches that layers compute (a conv of a zero tensor, a branch multiplied by
  0). Its layers leave the CG, as do layers whose result no output uses. So a
  CG's ``params`` is the trainable-parameter count minus exactly the layers
  that are not on an input-to-output path.
* Batch norms, biases and per-channel scales merge into the layer producing
  their input; scalar arithmetic, pads, no-op reshapes and constant
  branches vanish; written-out patterns (ReLU6, hard sigmoid / swish, SiLU,
  GELU, layer norm, chained reductions, ``x * 0``) collapse into one op.
  Each of these canonical rules is described once, in the importer's rule
  registry (:mod:`gennape.cg.onnx_import.canonical`), whose generated table
  is ``docs/canonical_rules.md``; the benchmark-family builders follow it.
* One ``input`` node per network input and one ``output`` node per output.
  ``kernel``, ``stride`` and ``dilation`` are ``(1, 1)`` and ``groups`` is 1
  for ops that have no such attribute.
* MACs: conv ``Cout*Hout*Wout*(Cin/groups)*kh*kw``; transposed conv
  ``Cin*Hin*Win*(Cout/groups)*kh*kw``; linear ``in*out``; rnn
  ``seq*directions*gates*hidden*(input+hidden)``;
  matmul the product's multiply-adds; every other op 0.

Edges are ``(src, dst)`` pairs listed in the order of ``dst``'s input slots, so
the operand order of ``concat`` survives.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from gennape.cg.atomic import write_text_atomic
from gennape.cg.ops import OP_INDEX, OPS, check_op

#: Bumped whenever the CG's meaning changes (vocabulary, canonical rules, JSON
#: layout); caches and checkpoints record it and refuse a mismatch.
FORMAT_VERSION = 2  # 2: ops reduce, conv_transpose, rnn; constant branches leave the CG

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Node:
    """One atomic operation.

    Args:
        op: op type from :data:`gennape.cg.ops.OPS`.
        in_shape: shape of the (first) input tensor, batch dimension excluded.
        out_shape: shape of the output tensor, batch dimension excluded.
        kernel: ``(kh, kw)`` of a conv / pool window.
        stride: ``(sh, sw)``.
        dilation: ``(dh, dw)``.
        groups: conv groups.
        weight_shape: shape of the main weight (conv ``(Cout, Cin/g, kh, kw)``,
            linear ``(out, in)``), ``()`` for ops without one.
        params: every parameter the node owns (weight, bias, merged BN affine).
        macs: multiply-accumulates for one sample.
        name: where the node came from (ONNX node name); not part of equality.
    """

    op: str
    in_shape: Shape = ()
    out_shape: Shape = ()
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    weight_shape: Shape = ()
    params: int = 0
    macs: int = 0
    name: str = field(default="", compare=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("in_shape", "out_shape", "kernel", "stride", "dilation", "weight_shape"):
            d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Node":
        return cls(
            op=check_op(d["op"]),
            in_shape=tuple(d.get("in_shape", ())),
            out_shape=tuple(d.get("out_shape", ())),
            kernel=tuple(d.get("kernel", (1, 1))),
            stride=tuple(d.get("stride", (1, 1))),
            dilation=tuple(d.get("dilation", (1, 1))),
            groups=int(d.get("groups", 1)),
            weight_shape=tuple(d.get("weight_shape", ())),
            params=int(d.get("params", 0)),
            macs=int(d.get("macs", 0)),
            name=str(d.get("name", "")),
        )

    def structural_key(self) -> tuple:
        """Everything but the name, hashable: what makes two nodes the same."""
        return (*self.order_key(), self.params)

    def order_key(self) -> tuple:
        """The structural key without ``params``, which BN folding may change;
        used to order nodes so that folded and unfolded exports agree."""
        return (
            self.op, self.in_shape, self.out_shape, self.kernel, self.stride,
            self.dilation, self.groups, self.weight_shape, self.macs,
        )


@dataclass(frozen=True)
class CG:
    """A computation graph: nodes in canonical topological order plus edges.

    Build one with :class:`GraphBuilder` (which fixes the canonical order), or
    load one with :meth:`from_json`. Equality compares nodes and edges, not names.
    """

    nodes: tuple[Node, ...]
    edges: tuple[tuple[int, int], ...]
    name: str = field(default="", compare=False)

    # ---------------------------------------------------------------- totals
    @property
    def num_nodes(self) -> int:
        return len(self.nodes)

    @property
    def num_edges(self) -> int:
        return len(self.edges)

    @property
    def params(self) -> int:
        return sum(n.params for n in self.nodes)

    @property
    def macs(self) -> int:
        return sum(n.macs for n in self.nodes)

    @property
    def input_shape(self) -> Shape:
        """Shape of the first network input, e.g. ``(3, 224, 224)``."""
        for n in self.nodes:
            if n.op == "input":
                return n.out_shape
        return ()

    @property
    def input_resolution(self) -> int:
        """Spatial size (height) of the first input; 0 for non-image inputs."""
        shape = self.input_shape
        return int(shape[1]) if len(shape) >= 3 else 0

    def op_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(n.op for n in self.nodes).items()))

    def summary(self) -> dict[str, Any]:
        return {
            "num_nodes": self.num_nodes,
            "num_edges": self.num_edges,
            "params": self.params,
            "macs": self.macs,
            "input_shape": list(self.input_shape),
            "ops": self.op_counts(),
        }

    def predecessors(self) -> list[list[int]]:
        preds: list[list[int]] = [[] for _ in self.nodes]
        for s, d in self.edges:
            preds[d].append(s)
        return preds

    def successors(self) -> list[list[int]]:
        succ: list[list[int]] = [[] for _ in self.nodes]
        for s, d in self.edges:
            succ[s].append(d)
        return succ

    def fingerprint(self, with_params: bool = True) -> str:
        """A stable hash of the structure (names excluded; ``with_params=False``:
        parameter counts too, which batch-norm folding and exporters change)."""
        h = hashlib.sha256()
        h.update(repr([n.structural_key() if with_params else n.order_key() for n in self.nodes]).encode())
        h.update(repr(list(self.edges)).encode())
        return h.hexdigest()[:16]

    # ----------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "summary": self.summary(),
            "nodes": [n.to_dict() for n in self.nodes],
            "edges": [list(e) for e in self.edges],
        }

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CG":
        version = d.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(
                f"CG format version {version} is not the supported version {FORMAT_VERSION}"
            )
        nodes = tuple(Node.from_dict(n) for n in d["nodes"])
        edges = tuple((int(s), int(t)) for s, t in d["edges"])
        cg = cls(nodes=nodes, edges=edges, name=str(d.get("name", "")))
        cg.validate()
        return cg

    @classmethod
    def from_json(cls, text: str) -> "CG":
        return cls.from_dict(json.loads(text))

    def save(self, path: str | Path) -> None:
        """Write JSON atomically (temporary file, then rename)."""
        write_text_atomic(Path(path), self.to_json(indent=1))

    @classmethod
    def load(cls, path: str | Path) -> "CG":
        return cls.from_json(Path(path).read_text())

    # ------------------------------------------------------------ checking
    def validate(self) -> None:
        """Raise ``ValueError`` unless edges are in range and point forward."""
        n = len(self.nodes)
        for s, d in self.edges:
            if not (0 <= s < n and 0 <= d < n):
                raise ValueError(f"edge ({s}, {d}) out of range for {n} nodes")
            if s >= d:
                raise ValueError(f"edge ({s}, {d}) does not follow topological order")

    # ------------------------------------------------------------- PyG form
    def to_pyg(self):
        """A ``torch_geometric.data.Data`` holding what the encoder needs.

        Shapes:
            - ``op``: ``[num_nodes]`` long, index into :data:`gennape.cg.ops.OPS`
            - ``attrs``: ``[num_nodes, len(RAW_ATTRS)]`` float64, raw node
              attributes in the order of :data:`RAW_ATTRS`
            - ``edge_index``: ``[2, num_edges]`` long
            - ``input_resolution``: ``[1]`` long

        The encoder's featuriser turns ``attrs`` into scale-free features.
        """
        import torch
        from torch_geometric.data import Data

        op = torch.tensor([OP_INDEX[n.op] for n in self.nodes], dtype=torch.long)
        attrs = torch.tensor([raw_attrs(n) for n in self.nodes], dtype=torch.float64)
        attrs = attrs.reshape(len(self.nodes), len(RAW_ATTRS))
        edge_index = torch.tensor(list(self.edges), dtype=torch.long).reshape(-1, 2).t().contiguous()
        return Data(
            op=op,
            attrs=attrs,
            edge_index=edge_index,
            num_nodes=len(self.nodes),
            input_resolution=torch.tensor([self.input_resolution], dtype=torch.long),
        )


#: Raw numeric attributes per node, in the column order of ``to_pyg().attrs``.
RAW_ATTRS: tuple[str, ...] = (
    "in_channels", "in_h", "in_w", "out_channels", "out_h", "out_w",
    "kernel_h", "kernel_w", "stride_h", "stride_w", "dilation_h", "dilation_w",
    "groups", "weight_numel", "params", "macs",
)


def _chw(shape: Shape) -> tuple[int, int, int]:
    """(C, H, W) of a shape; vectors count as C x 1 x 1; other ranks use the
    first dim as channels and the product of the rest as one spatial axis."""
    if len(shape) == 0:
        return (1, 1, 1)
    if len(shape) == 1:
        return (shape[0], 1, 1)
    if len(shape) == 3:
        return (shape[0], shape[1], shape[2])
    rest = 1
    for s in shape[1:]:
        rest *= s
    return (shape[0], rest, 1)


def raw_attrs(n: Node) -> list[float]:
    numel = 1
    for s in n.weight_shape:
        numel *= s
    if not n.weight_shape:
        numel = 0
    return [
        *_chw(n.in_shape), *_chw(n.out_shape), *n.kernel, *n.stride, *n.dilation,
        n.groups, numel, n.params, n.macs,
    ]


class GraphBuilder:
    """Collects nodes and edges in any order and builds a canonical :class:`CG`.

    The canonical order is a topological order in which, among the nodes ready
    at each step, the one with the smallest *ancestry key* comes first (a hash of
    the node's attributes and, in input-slot order, its predecessors' keys),
    and insertion order breaks the remaining ties. So two producers that build
    the same network in different orders give the same CG, provided structurally
    identical parallel branches are inserted in the same relative order.

    Example::

        b = GraphBuilder()
        x = b.add(Node("input", out_shape=(3, 32, 32)))
        y = b.add(Node("relu", in_shape=(3, 32, 32), out_shape=(3, 32, 32)), [x])
        cg = b.build()
    """

    def __init__(self, name: str = ""):
        self.name = name
        self.nodes: list[Node] = []
        self.inputs: list[list[int]] = []

    def add(self, node: Node, inputs: Iterable[int] = ()) -> int:
        """Add ``node`` fed by the nodes ``inputs`` (in input-slot order); return its id."""
        self.nodes.append(node)
        self.inputs.append(list(inputs))
        return len(self.nodes) - 1

    def build(self) -> CG:
        n = len(self.nodes)
        succ: list[list[int]] = [[] for _ in range(n)]
        indeg = [0] * n
        for d, srcs in enumerate(self.inputs):
            for s in srcs:
                if not 0 <= s < n:
                    raise ValueError(f"node {d} reads from unknown node {s}")
                succ[s].append(d)
                indeg[d] += 1
        keys = self._ancestry_keys(succ, list(indeg))
        ready = [(keys[i], i) for i in range(n) if indeg[i] == 0]
        heapq.heapify(ready)
        order: list[int] = []
        while ready:
            _, i = heapq.heappop(ready)
            order.append(i)
            for d in succ[i]:
                indeg[d] -= 1
                if indeg[d] == 0:
                    heapq.heappush(ready, (keys[d], d))
        if len(order) != n:
            raise ValueError("the graph has a cycle")
        new_id = {old: new for new, old in enumerate(order)}
        nodes = tuple(self.nodes[i] for i in order)
        edges = tuple(
            (new_id[s], new_id[d]) for d in order for s in self.inputs[d]
        )
        return CG(nodes=nodes, edges=edges, name=self.name)

    def _ancestry_keys(self, succ: list[list[int]], indeg: list[int]) -> list[bytes]:
        n = len(self.nodes)
        keys: list[bytes] = [b""] * n
        stack = [i for i in range(n) if indeg[i] == 0]
        done = 0
        while stack:
            i = stack.pop()
            done += 1
            h = hashlib.blake2b(repr(self.nodes[i].order_key()).encode(), digest_size=8)
            for s in self.inputs[i]:
                h.update(keys[s])
            keys[i] = h.digest()
            for d in succ[i]:
                indeg[d] -= 1
                if indeg[d] == 0:
                    stack.append(d)
        if done != n:
            raise ValueError("the graph has a cycle")
        return keys


__all__ = ["CG", "Node", "GraphBuilder", "FORMAT_VERSION", "RAW_ATTRS", "OPS", "write_text_atomic"]
