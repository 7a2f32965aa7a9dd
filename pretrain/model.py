"""GennapeModel: a batch of featurised CGs -> the estimator's score, as one ``nn.Module``.

The forward pass (GENNAPE, Mills et al., AAAI-23, with the size term of
:mod:`gennape.pretrain.capacity`):

1. the GNN encoder embeds each graph (:class:`gennape.encoder.gnn.CGEncoder`);
2. the embedding is standardised by the training embeddings' mean and std;
3. its fuzzy membership in each of the K cluster centres is computed
   (:func:`gennape.heads.membership.fcm_membership`);
4. the K heads' outputs are averaged by membership
   (:class:`gennape.heads.fuzzy_heads.FuzzyHeads`);
5. ``score = a * heads + b * size + c``, ``size`` being the graph-level size
   measure of each network (:mod:`gennape.pretrain.size_measure`: a fixed mix of
   the ``graph_attr`` columns, e.g. ``log(1 + total weight count)``).

Predicting, :meth:`GennapeEstimator.fit_heads` and fine-tuning all run this
module. Standardisation and membership are computed in float64 (the buffers
are float64), the encoder and heads in float32. In eval mode the dense layers
run in fixed row blocks (:mod:`gennape.pretrain.batch_invariance`), so a
graph's outputs are the same bits whichever graphs share its batch.
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from gennape.heads.fuzzy_heads import FuzzyHeads
from gennape.heads.membership import fcm_membership
from gennape.pretrain.batch_invariance import FixedRowBlocks
from gennape.pretrain.batch_invariance import pairwise_distance
from gennape.pretrain.capacity import NO_CAPACITY
from gennape.pretrain.head_trust import check_head_trust, trusted_head
from gennape.pretrain.size_measure import size_mix


class ModelOutput(NamedTuple):
    """What one pass of :class:`GennapeModel` computes.

    Shapes:
        - embedding: ``[n, embed_dim]`` (standardised), membership: ``[n, K]``
        - head_score, score: ``[n]``
    """

    embedding: torch.Tensor
    membership: torch.Tensor
    head_score: torch.Tensor
    score: torch.Tensor


class GennapeModel(nn.Module):
    """Encoder, standardisation, fuzzy membership, heads and size term.

    Args:
        encoder: the GNN, an :class:`gennape.encoder.gnn.CGEncoder` embedding into ``embed_dim``.
        heads: the K per-cluster heads on ``embed_dim`` inputs.
        fuzzifier: c-means fuzzifier m of the memberships (> 1).
        size_measure: the size the size term reads, by name
            (:data:`gennape.pretrain.size_measure.SIZE_MEASURES`).
        head_trust: how far the size term trusts the heads on networks unlike the
            training ones (:mod:`gennape.pretrain.head_trust`: ``constant`` or ``ood``).

    Buffers (set by :meth:`GennapeEstimator.fit`; all but ``capacity`` are in
    the ``state_dict``, ``capacity`` is kept in ``config.json``):
        - ``cluster_centers``: ``[K, embed_dim]`` float64
        - ``embedding_mean``, ``embedding_std``: ``[embed_dim]`` float64
        - ``reference_embeddings``: ``[n_ref, embed_dim]`` float32, standardised
          embeddings of training graphs (out-of-distribution reference)
        - ``capacity``: ``[3]`` float64, the size term's ``(a, b, c)``
        - ``size_mix``: ``[len(GRAPH_ATTRS)]`` float64, the size measure's column
          weights (not in the ``state_dict``: it follows from ``size_measure``)
        - ``ood_scale``, ``head_mean``: ``[]`` float64, the OOD distance unit and the
          heads' training mean (kept in ``config.json``; used by ``head_trust="ood"``)

    Shapes:
        - input: ``x`` ``[num_nodes, F]``, ``edge_index`` ``[2, num_edges]``,
          ``batch`` ``[num_nodes]`` (``None`` for one graph), keyword
          ``graph_attr`` ``[num_graphs, len(GRAPH_ATTRS)]`` (graph-level
          attributes, :class:`gennape.pretrain.packed.PackedBatch`; may be left
          out only when the size slope ``b`` is 0)
        - output: ``[num_graphs]`` float64 score (higher = better)
    """

    def __init__(self, encoder: nn.Module, heads: FuzzyHeads, embed_dim: int, fuzzifier: float = 2.0,
                 size_measure: str = "weights", head_trust: str = "constant"):
        super().__init__()
        self.head_trust = check_head_trust(head_trust)
        self.encoder = encoder
        self.heads = heads
        self.fuzzifier = fuzzifier
        f64 = torch.float64
        self.register_buffer("cluster_centers", torch.zeros(heads.num_heads, embed_dim, dtype=f64))
        self.register_buffer("embedding_mean", torch.zeros(embed_dim, dtype=f64))
        self.register_buffer("embedding_std", torch.ones(embed_dim, dtype=f64))
        self.register_buffer("reference_embeddings", torch.zeros(0, embed_dim))
        self.register_buffer("capacity", torch.tensor(NO_CAPACITY, dtype=f64), persistent=False)
        self.register_buffer("size_mix", torch.as_tensor(size_mix(size_measure)), persistent=False)
        self.register_buffer("ood_scale", torch.tensor(1.0, dtype=f64), persistent=False)
        self.register_buffer("head_mean", torch.tensor(0.0, dtype=f64), persistent=False)

    def embed(self, x: torch.Tensor, edge_index: torch.Tensor, batch: torch.Tensor | None = None) -> torch.Tensor:
        """Standardised embeddings ``[num_graphs, embed_dim]`` (float64)."""
        with self._batch_invariant():
            return self.standardise(self.encoder(x, edge_index, batch))

    def _batch_invariant(self):
        """:class:`FixedRowBlocks` in eval mode; training forwards (dropout,
        gradients) keep the plain, faster products."""
        return contextlib.nullcontext() if self.training else FixedRowBlocks()

    def standardise(self, raw: torch.Tensor) -> torch.Tensor:
        """Encoder outputs ``[n, embed_dim]`` standardised, as float64."""
        return (raw.double() - self.embedding_mean) / self.embedding_std

    def membership(self, embedding: torch.Tensor) -> torch.Tensor:
        """Fuzzy memberships ``[n, K]`` of standardised embeddings (rows sum to one)."""
        return fcm_membership(embedding, self.cluster_centers, self.fuzzifier)

    def head_score(self, embedding: torch.Tensor, membership: torch.Tensor) -> torch.Tensor:
        """The heads' membership-weighted score ``[n]`` (float64), before the size term."""
        with self._batch_invariant():
            return self.heads(embedding.float(), membership.float()).double()

    def ood(self, embedding: torch.Tensor) -> torch.Tensor:
        """OOD scores ``[n]`` of standardised embeddings: distance to the nearest
        reference embedding in units of ``ood_scale``."""
        reference = self.reference_embeddings.to(embedding)
        return pairwise_distance(embedding, reference).min(dim=1).values / self.ood_scale

    def size(self, graph_attr: torch.Tensor) -> torch.Tensor:
        """The size measure ``[n]`` of graph-level attributes ``[n, len(GRAPH_ATTRS)]``."""
        return graph_attr.to(self.size_mix) @ self.size_mix

    def size_term(self, head_score: torch.Tensor, size: torch.Tensor | None) -> torch.Tensor:
        """``a * head_score + b * size + c``, ``[n]`` (``size``: :meth:`size` of the graphs)."""
        a, b, c = self.capacity
        if size is None:
            if b != 0:
                raise ValueError("this model has a size term: pass graph_attr (PackedBatch.graph_attr)")
            return a * head_score + c
        return a * head_score + b * size.to(head_score) + c

    def outputs(self, x: torch.Tensor, edge_index: torch.Tensor, batch: torch.Tensor | None = None, *,
                graph_attr: torch.Tensor | None = None) -> ModelOutput:
        """Every intermediate of :meth:`forward` (see :class:`ModelOutput`)."""
        emb = self.embed(x, edge_index, batch)
        u = self.membership(emb)
        head = self.head_score(emb, u)
        used = trusted_head(head, self.ood(emb), self.head_mean) if self.head_trust == "ood" else head
        return ModelOutput(emb, u, head, self.size_term(used, None if graph_attr is None else self.size(graph_attr)))

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, batch: torch.Tensor | None = None, *,
                graph_attr: torch.Tensor | None = None) -> torch.Tensor:
        return self.outputs(x, edge_index, batch, graph_attr=graph_attr).score

    def set_capacity(self, coef) -> None:
        """Set the size term's ``(a, b, c)``."""
        self.capacity = torch.tensor(tuple(float(v) for v in coef), dtype=torch.float64,
                                     device=self.capacity.device)

    def load_fitted_state(self, state: dict[str, torch.Tensor]) -> None:
        """``load_state_dict`` for a state whose buffers may differ in shape
        from this module's (the OOD reference grows when fine-tuning); the
        buffers take the saved dtypes, so saving again writes the same tensors."""
        for name, _ in self.named_buffers(recurse=False):
            if name in state:
                setattr(self, name, state[name].to(self.capacity.device))
        self.load_state_dict(state)


@torch.no_grad()
def run_model(model: GennapeModel, pack, batch_size: int = 256, device="cpu") -> ModelOutput:
    """:meth:`GennapeModel.outputs` of every graph of a
    :class:`gennape.pretrain.packed.GraphPack`, in batches, as float64 NumPy
    arrays (eval mode; the module's mode is restored)."""
    was_training = model.training
    model.eval()
    parts = []
    for start in range(0, len(pack), batch_size):
        b = pack.collate(np.arange(start, min(start + batch_size, len(pack))), device=device)
        parts.append(model.outputs(b.x, b.edge_index, b.batch, graph_attr=b.graph_attr))
    model.train(was_training)
    return ModelOutput(*(torch.cat(column).cpu().numpy().astype(np.float64) for column in zip(*parts)))


__all__ = ["GennapeModel", "ModelOutput", "run_model"]
