"""The importer's intermediate representation (IR): mutable nodes that the
canonicalisation passes rewrite before the CG is built.

Besides the op types of :data:`gennape.cg.ops.OPS`, IR nodes may carry the
*pseudo ops* of :data:`PSEUDO_OPS`, which the canonical rules
(:mod:`gennape.cg.onnx_import.canonical`, table in ``docs/canonical_rules.md``)
always resolve.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Pseudo op -> what it holds (the rules say what it becomes).
PSEUDO_OPS: dict[str, str] = {
    "bn": "a BatchNormalization",
    "affine": "Add / Sub / Mul / Div of an activation and a non-scalar parameter",
    "scalar": "arithmetic with a scalar constant (info: fn, value, const_first)",
    "pad": "a Pad",
    "move": "data movement: Reshape, Flatten, Transpose, Squeeze, ...",
    "reduction": "a reduction (info: fn, axes of the input, its rank, keepdims)",
    "part": "an op known only inside a pattern (info: onnx, its ONNX op type), e.g. Erf, Sqrt",
}


@dataclass(eq=False)
class IRNode:
    """One IR node; ``inputs`` are IR node ids in input-slot order."""

    op: str
    inputs: list[int]
    in_shape: tuple[int, ...] = ()
    out_shape: tuple[int, ...] = ()
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    weight_shape: tuple[int, ...] = ()
    params: int = 0
    name: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    alive: bool = True


class IRGraph:
    """IR nodes in creation order (a topological order) with consumer lists."""

    def __init__(self) -> None:
        self.nodes: list[IRNode] = []
        #: (ONNX op type, node name) of nodes the rules found unsupported.
        self.unsupported: list[tuple[str, str]] = []

    def add(self, node: IRNode) -> int:
        self.nodes.append(node)
        return len(self.nodes) - 1

    def alive(self):
        """(id, node) for every live node, in topological order."""
        return ((i, n) for i, n in enumerate(self.nodes) if n.alive)

    def consumers(self) -> list[list[int]]:
        """Consumer ids per node (one entry per input slot that reads it)."""
        cons: list[list[int]] = [[] for _ in self.nodes]
        for i, n in enumerate(self.nodes):
            if n.alive:
                for s in n.inputs:
                    cons[s].append(i)
        return cons

    def drop(self, i: int, cons: list[list[int]]) -> None:
        """Delete node ``i``, whose readers are gone; ``cons`` is kept up to date."""
        for s in set(self.nodes[i].inputs):
            cons[s] = [c for c in cons[s] if c != i]
        cons[i] = []
        self.nodes[i].alive = False

    def set_inputs(self, i: int, inputs: list[int], cons: list[list[int]]) -> None:
        """Make node ``i`` read ``inputs`` (its ``in_shape`` the first one's output);
        ``cons`` is kept up to date."""
        for s in set(self.nodes[i].inputs):
            cons[s] = [c for c in cons[s] if c != i]
        self.nodes[i].inputs, self.nodes[i].in_shape = list(inputs), self.nodes[inputs[0]].out_shape
        for s in inputs:
            cons[s].append(i)

    def replace(self, old: int, new: int, cons: list[list[int]]) -> None:
        """Make every consumer of ``old`` read ``new`` instead and drop ``old``.

        ``cons`` (from :meth:`consumers`) is kept up to date.
        """
        for c in cons[old]:
            node = self.nodes[c]
            node.inputs = [new if s == old else s for s in node.inputs]
        cons[new].extend(cons[old])
        self.drop(old, cons)
