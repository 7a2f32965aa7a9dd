"""Many featurised graphs packed into a few flat arrays.

A ``Data`` object per graph costs memory (30k NB-101 networks x ~250 nodes x
45 float32 features is 1.3 GB) and time (``Batch.from_data_list`` is Python
per graph). A :class:`GraphPack` stores each node's op index (uint8) and its
numeric features (float16: every numeric feature is O(1), and half precision
keeps 3 significant digits) plus int32 edges, ~10x less, and collates a batch
with a few array slices. The one-hot op columns are rebuilt at collate time,
so a batch's ``x`` equals :func:`gennape.encoder.features.featurize` up to float16
rounding of the numeric columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import torch

from gennape.cg.graph import RAW_ATTRS
from gennape.cg.ops import OPS
from gennape.encoder.features import featurize

_N_OPS = len(OPS)

#: Graph-level attributes of every packed graph, in the column order of
#: ``GraphPack.graph_attr`` / ``PackedBatch.graph_attr``: ``log(1 + total
#: weight count)`` and ``log(1 + total MACs)``. The node features are scale-free
#: (:mod:`gennape.encoder.features`), so these columns are how a model sees size.
#: A new graph-level input is one more entry here and its use in the model's forward.
GRAPH_ATTRS: tuple[str, ...] = ("log_weights", "log_macs")
_GRAPH_SOURCES = tuple(RAW_ATTRS.index(c) for c in ("weight_numel", "macs"))


@dataclass(frozen=True)
class PackedBatch:
    """Graphs collated by :meth:`GraphPack.collate`: node-level tensors as PyG
    has them plus the graph-level attributes, by name.

    Shapes:
        - x: ``[num_nodes, NUM_FEATURES]`` float32, edge_index: ``[2, num_edges]``
          int64, batch: ``[num_nodes]`` int64 (graph of each node)
        - graph_attr: ``[num_graphs, len(GRAPH_ATTRS)]`` float64, the graph-level
          attributes named by :data:`GRAPH_ATTRS`
    """

    x: torch.Tensor
    edge_index: torch.Tensor
    batch: torch.Tensor
    graph_attr: torch.Tensor

    @property
    def log_weights(self) -> torch.Tensor:
        """``[num_graphs]``: the ``log_weights`` column of :attr:`graph_attr`."""
        return self.graph_attr[:, 0]


class GraphPack:
    """Featurised graphs in flat arrays.

    Build with :meth:`from_items` (CGs and/or PyG ``Data`` from ``CG.to_pyg``);
    :meth:`collate` collates graphs by index into a :class:`PackedBatch`,
    :meth:`batch` into the ``(x, edge_index, batch)`` the encoder takes.

    Shapes:
        - ``op``: ``[total_nodes]`` uint8, ``num``: ``[total_nodes, F_num]`` float16
        - ``edges``: ``[2, total_edges]`` int32, local (per graph) node ids
        - ``node_ptr``: ``[n_graphs + 1]``, ``edge_ptr``: ``[n_graphs + 1]`` int64
        - ``graph_attr``: ``[n_graphs, len(GRAPH_ATTRS)]`` float64, the graph-level
          attributes of :data:`GRAPH_ATTRS` (sizes, for :mod:`gennape.pretrain.capacity`)
    """

    def __init__(self, op, num, edges, node_ptr, edge_ptr, graph_attr):
        self.op, self.num, self.edges = op, num, edges
        self.node_ptr, self.edge_ptr = node_ptr, edge_ptr
        self.graph_attr = np.asarray(graph_attr, dtype=np.float64).reshape(len(node_ptr) - 1, len(GRAPH_ATTRS))

    def graph_column(self, name: str) -> np.ndarray:
        """``[n_graphs]``: graph-level attribute ``name`` (one of :data:`GRAPH_ATTRS`)."""
        if name not in GRAPH_ATTRS:
            raise ValueError(f"unknown graph attribute {name!r}; valid: {', '.join(GRAPH_ATTRS)}")
        return self.graph_attr[:, GRAPH_ATTRS.index(name)]

    @property
    def log_weights(self) -> np.ndarray:
        """``[n_graphs]``: ``log(1 + total weight count)`` of each graph."""
        return self.graph_column("log_weights")

    def __len__(self) -> int:
        return len(self.node_ptr) - 1

    @classmethod
    def from_items(cls, items: Iterable, progress=None) -> "GraphPack":
        """Pack CGs or raw PyG ``Data`` (``CG.to_pyg()``), converting one at a
        time so that only the packed arrays stay in memory.

        Args:
            items: an iterable of :class:`gennape.cg.graph.CG` or ``Data``.
            progress: optional callable called once per graph (progress bars).
        """
        ops, nums, edges, n_nodes, n_edges, graph_attr = [], [], [], [0], [0], []

        def add(op, x, edge_index, attrs):
            ops.append(op.astype(np.uint8))
            nums.append(x[:, _N_OPS:].astype(np.float16))
            edges.append(edge_index.astype(np.int32))
            n_nodes.append(len(op))
            n_edges.append(edge_index.shape[1])
            graph_attr.append(np.log1p(attrs[:, _GRAPH_SOURCES].sum(axis=0)))
            if progress is not None:
                progress()

        chunk: list = []
        for item in _chunks_of_cgs(items, chunk):
            if item is chunk:  # CGs: featurised together, 3-5x faster (gennape.encoder.batch_features)
                for op, x, edge_index, attrs in _featurize_cgs(chunk):
                    add(op, x, edge_index, attrs)
                chunk.clear()
            else:
                data = item.to_pyg() if hasattr(item, "to_pyg") else item
                add(data.op.numpy(), featurize(data).numpy(), data.edge_index.numpy(), data.attrs.double().numpy())
        if not ops:
            raise ValueError("no graphs to pack")
        return cls(
            np.concatenate(ops), np.concatenate(nums), np.concatenate(edges, axis=1),
            np.cumsum(n_nodes), np.cumsum(n_edges), np.array(graph_attr, dtype=np.float64),
        )

    @classmethod
    def concat(cls, packs: Sequence["GraphPack"]) -> "GraphPack":
        """One pack of the graphs of ``packs``, in order (the packs are unchanged)."""
        if not packs:
            raise ValueError("no packs to concatenate")
        node_counts = np.concatenate([np.diff(p.node_ptr) for p in packs])
        edge_counts = np.concatenate([np.diff(p.edge_ptr) for p in packs])
        return cls(
            np.concatenate([p.op for p in packs]), np.concatenate([p.num for p in packs]),
            np.concatenate([p.edges for p in packs], axis=1),
            np.concatenate([[0], np.cumsum(node_counts)]), np.concatenate([[0], np.cumsum(edge_counts)]),
            np.concatenate([p.graph_attr for p in packs]),
        )

    def subset(self, index) -> "GraphPack":
        """A new pack holding graphs ``index`` (in that order)."""
        index = np.asarray(index, dtype=np.int64)
        parts = [self._slices(i) for i in index]
        node_sizes = [p[0].stop - p[0].start for p in parts]
        edge_sizes = [p[1].stop - p[1].start for p in parts]
        return GraphPack(
            np.concatenate([self.op[a] for a, _ in parts]),
            np.concatenate([self.num[a] for a, _ in parts]),
            np.concatenate([self.edges[:, b] for _, b in parts], axis=1),
            np.concatenate([[0], np.cumsum(node_sizes)]),
            np.concatenate([[0], np.cumsum(edge_sizes)]),
            self.graph_attr[index],
        )

    def _slices(self, i: int) -> tuple[slice, slice]:
        return slice(self.node_ptr[i], self.node_ptr[i + 1]), slice(self.edge_ptr[i], self.edge_ptr[i + 1])

    def batch(self, index, device: str | torch.device = "cpu"):
        """Collate graphs ``index`` into ``(x, edge_index, batch)`` tensors."""
        b = self.collate(index, device)
        return b.x, b.edge_index, b.batch

    def collate(self, index, device: str | torch.device = "cpu") -> PackedBatch:
        """Collate graphs ``index`` (in that order) into a :class:`PackedBatch`."""
        index = np.asarray(index, dtype=np.int64)
        ops, nums, edges, batch = [], [], [], []
        offset = 0
        for g, i in enumerate(index):
            nodes, es = self._slices(int(i))
            n = nodes.stop - nodes.start
            ops.append(self.op[nodes])
            nums.append(self.num[nodes])
            edges.append(self.edges[:, es] + offset)
            batch.append(np.full(n, g, dtype=np.int64))
            offset += n
        op = torch.from_numpy(np.concatenate(ops).astype(np.int64))
        x = torch.cat([torch.nn.functional.one_hot(op, _N_OPS).float(),
                       torch.from_numpy(np.concatenate(nums).astype(np.float32))], dim=1)
        edge_index = torch.from_numpy(np.concatenate(edges, axis=1).astype(np.int64))
        b = torch.from_numpy(np.concatenate(batch))
        graph_attr = torch.from_numpy(self.graph_attr[index])
        return PackedBatch(x.to(device), edge_index.to(device), b.to(device), graph_attr.to(device))

    def feature_presence(self) -> np.ndarray:
        """``[NUM_FEATURES]`` bool: which featuriser columns are non-zero in
        some node of the pack (op columns: the op occurs at all)."""
        ops = np.zeros(_N_OPS, dtype=bool)
        ops[np.unique(self.op)] = True
        return np.concatenate([ops, (self.num != 0).any(axis=0)])

    def numeric_range(self) -> tuple[np.ndarray, np.ndarray]:
        """``(low, high)``, each ``[F_num]`` float32: the smallest and largest
        value of every numeric featuriser column over all nodes of the pack."""
        if len(self.num) == 0:
            raise ValueError("an empty pack has no feature range")
        return self.num.min(axis=0).astype(np.float32), self.num.max(axis=0).astype(np.float32)

    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.op, self.num, self.edges, self.node_ptr, self.edge_ptr, self.graph_attr))


#: CGs featurised together by :meth:`GraphPack.from_items`.
CG_CHUNK = 256


def _chunks_of_cgs(items: Iterable, chunk: list):
    """``items`` in order, but CGs with nodes gathered into ``chunk``, which is
    yielded (itself) whenever it holds :data:`CG_CHUNK` of them or the next
    item is something else; the caller empties it."""
    from gennape.cg.graph import CG

    for item in items:
        if isinstance(item, CG) and item.nodes:
            chunk.append(item)
            if len(chunk) >= CG_CHUNK:
                yield chunk
        else:
            if chunk:
                yield chunk
            yield item
    if chunk:
        yield chunk


def _featurize_cgs(cgs: list):
    """``(op, features, edge_index, attrs)`` NumPy arrays of each CG, featurised in one pass."""
    from gennape.encoder.batch_features import cg_arrays, featurize_graphs

    arrays = [cg_arrays(cg) for cg in cgs]
    node_ptr = np.cumsum([0] + [len(a[0]) for a in arrays])
    x = featurize_graphs(np.concatenate([a[0] for a in arrays]), np.concatenate([a[1] for a in arrays]),
                         node_ptr, np.array([a[3] for a in arrays], dtype=np.float64))
    for (op, attrs, edge_index, _), start, stop in zip(arrays, node_ptr[:-1], node_ptr[1:]):
        yield op, x[start:stop], edge_index, attrs


__all__ = ["CG_CHUNK", "GRAPH_ATTRS", "GraphPack", "PackedBatch"]
