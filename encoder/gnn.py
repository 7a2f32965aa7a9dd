"""The GNN encoder: featurised CG nodes -> one embedding per graph.

Node features first pass through :class:`gennape.encoder.feature_range.FeatureRange`
(numeric columns clamped to the training range) and
:class:`gennape.encoder.op_encoding.OpEncoding` (op types merged into op classes,
columns unseen in training zeroed).

Message passing follows the data flow (``forward``), runs against it
(``backward``: a node learns what consumes it) or both ways (``both``: each
layer sums one convolution per direction, so the two directions have their
own weights). Layers are residual with LayerNorm, so depth can grow without
the embedding collapsing. The readout pools node states into one vector that
a two-layer MLP (Linear, ReLU, Linear) projects to ``out_channels``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric import nn as pygnn

from gennape.encoder.feature_range import FeatureRange
from gennape.encoder.op_encoding import OpEncoding


def _graph(i: int, o: int) -> nn.Module:
    return pygnn.GraphConv(i, o, aggr="add")


def _gcn(i: int, o: int) -> nn.Module:
    return pygnn.GCNConv(i, o, add_self_loops=True)


def _gin(i: int, o: int) -> nn.Module:
    return pygnn.GINConv(nn.Sequential(nn.Linear(i, o), nn.ReLU(), nn.Linear(o, o)), train_eps=True)


def _sage(i: int, o: int) -> nn.Module:
    return pygnn.SAGEConv(i, o, aggr="mean")


def _gat(i: int, o: int) -> nn.Module:
    return pygnn.GATConv(i, o, heads=1, add_self_loops=True)


#: convolution name -> factory ``(in_channels, out_channels) -> MessagePassing``.
CONVS = {"graph": _graph, "gcn": _gcn, "gin": _gin, "sage": _sage, "gat": _gat}
DIRECTIONS = ("forward", "backward", "both")
READOUTS = ("mean", "sum", "max", "mean+max", "mean+sum", "sum+max", "mean+sum+max")
#: The sum readout is divided by this typical node count, so that pooled
#: sums of ~100-node networks stay O(1) like means.
SUM_SCALE = 100.0
_POOLS = {
    "mean": pygnn.global_mean_pool,
    "sum": lambda h, b: pygnn.global_add_pool(h, b) / SUM_SCALE,
    "max": pygnn.global_max_pool,
}


def _choose(kind: str, value: str, valid) -> str:
    if value not in valid:
        raise ValueError(f"unknown {kind} {value!r}; valid choices: {', '.join(valid)}")
    return value


class CGEncoder(nn.Module):
    """Embeds a batch of featurised computation graphs.

    Every argument but ``in_channels`` is a keyword, and its default is that
    of :class:`gennape.pretrain.estimator.GennapeEstimator` (``out_channels``:
    its ``embed_dim``), which builds the encoder from its own parameters.

    Args:
        in_channels: node feature size (``gennape.encoder.features.NUM_FEATURES``).
        hidden_channels: width of the node states.
        out_channels: embedding size.
        num_layers: message-passing layers.
        conv: convolution type, one of :data:`CONVS` (default ``graph``, the
            k-GNN ``GraphConv`` of the GENNAPE paper).
        direction: ``forward``, ``backward`` or ``both``.
        readout: ``mean``, ``sum``, ``max`` or a ``+``-joined combination
            (concatenated), see :data:`READOUTS`. Sums grow with network
            size, which within a family tracks capacity.
        dropout: dropout on node states between layers.
        op_encoding: how op types enter (``class`` or ``op``), see
            :mod:`gennape.encoder.op_encoding`; its ``seen`` mask and the
            :mod:`gennape.encoder.feature_range` bounds are set by the trainer.

    Shapes:
        - input: ``x`` ``[num_nodes, in_channels]``, ``edge_index`` ``[2, num_edges]``,
          ``batch`` ``[num_nodes]`` (graph of each node; ``None`` for one graph)
        - output: ``[num_graphs, out_channels]``
    """

    def __init__(
        self,
        in_channels: int,
        *,
        hidden_channels: int = 64,
        out_channels: int = 64,
        num_layers: int = 4,
        conv: str = "graph",
        direction: str = "both",
        readout: str = "sum",
        dropout: float = 0.0,
        op_encoding: str = "class",
    ):
        super().__init__()
        _choose("convolution", conv, tuple(CONVS))
        self.direction = _choose("direction", direction, DIRECTIONS)
        self.readout = _choose("readout", readout, READOUTS)
        self.dropout = dropout
        self.op_encoding = OpEncoding(in_channels, op_encoding)
        self.feature_range = FeatureRange(in_channels, self.op_encoding.num_numeric)
        self.input = nn.Linear(self.op_encoding.out_channels, hidden_channels)
        n_dir = 2 if direction == "both" else 1
        self.convs = nn.ModuleList(
            nn.ModuleList(CONVS[conv](hidden_channels, hidden_channels) for _ in range(n_dir))
            for _ in range(num_layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(hidden_channels) for _ in range(num_layers))
        pooled = hidden_channels * len(readout.split("+"))
        self.project = nn.Sequential(nn.Linear(pooled, out_channels), nn.ReLU(), nn.Linear(out_channels, out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.input.reset_parameters()
        for layer in self.convs:
            for conv in layer:
                conv.reset_parameters()
        for norm in self.norms:
            norm.reset_parameters()
        for m in self.project:
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def node_states(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """Node states after message passing, ``[num_nodes, hidden_channels]``."""
        if self.direction == "forward":
            edge_sets = (edge_index,)
        elif self.direction == "backward":
            edge_sets = (edge_index.flip(0),)
        else:
            edge_sets = (edge_index, edge_index.flip(0))
        h = torch.relu(self.input(self.op_encoding(self.feature_range(x))))
        for layer, norm in zip(self.convs, self.norms):
            msg = sum(conv(h, e) for conv, e in zip(layer, edge_sets))
            h = h + torch.relu(norm(msg))
            h = nn.functional.dropout(h, self.dropout, self.training)
        return h

    def pool(self, h: torch.Tensor, batch: torch.Tensor | None) -> torch.Tensor:
        return torch.cat([_POOLS[name](h, batch) for name in self.readout.split("+")], dim=1)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, batch: torch.Tensor | None = None) -> torch.Tensor:
        return self.project(self.pool(self.node_states(x, edge_index), batch))


__all__ = ["CGEncoder", "CONVS", "DIRECTIONS", "READOUTS"]
