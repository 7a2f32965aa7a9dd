"""Contrastive pretraining of the encoder (with an optional supervised term).

Why these pairs
---------------
The encoder must place networks by what decides their accuracy (the cell's
topology and ops), not by things that change between benchmark families but
not between good and bad cells. So the positive pair of an architecture is two
*views* of it that differ only in such things:

* graph-level views, when the caller supplies them (``views``): the same
  NB-101 cell built with another stem width, number of stacked cells or input
  resolution (``nb101.to_cg(spec, stem_channels=..., ...)``). These are the
  changes NB-201, DARTS and OFA networks differ by, so invariance to them is
  what zero-shot transfer needs;
* node-feature masking (each feature of each node zeroed with probability
  ``feature_mask_p``): no single attribute may carry the identity;
* edge dropping (probability ``edge_drop_p``): a small perturbation of the
  wiring, GraphCL-style, so that near-identical topologies embed near each other.

Negatives are every other architecture in the batch (NT-Xent), so the
embedding spreads distinct topologies apart, which the fuzzy clustering then
partitions. A supervised term (a probe head regressing the transformed
accuracy with MSE plus a pairwise ranking loss) keeps the embedding aware of
what matters for accuracy; ``supervised_weight=0`` gives pure contrastive
pretraining (the ablation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from gennape.heads.mlp import MLPHead
from gennape.pretrain import distributed
from gennape.pretrain.losses import nt_xent, pairwise_rank_loss
from gennape.pretrain.packed import GraphPack


@dataclass
class ContrastiveConfig:
    """Hyperparameters of encoder pretraining (see the module docstring)."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    temperature: float = 0.2
    feature_mask_p: float = 0.15
    edge_drop_p: float = 0.1
    contrastive_weight: float = 1.0
    supervised_weight: float = 1.0
    rank_weight: float = 1.0


def augment(x: torch.Tensor, edge_index: torch.Tensor, feature_mask_p: float, edge_drop_p: float,
            gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask node features and drop edges of a collated batch.

    Shapes:
        - x: ``[N, F]``, edge_index: ``[2, E]``
        - output: ``[N, F]``, ``[2, E']`` with ``E' <= E``
    """
    if feature_mask_p > 0:
        keep = torch.rand(x.shape, generator=gen) >= feature_mask_p
        x = x * keep.to(x.dtype)
    if edge_drop_p > 0:
        keep = torch.rand(edge_index.shape[1], generator=gen) >= edge_drop_p
        edge_index = edge_index[:, keep]
    return x, edge_index


class PretrainModel(nn.Module):
    """The encoder plus the two throw-away heads used only while pretraining:
    a projection for NT-Xent (SimCLR keeps the contrastive geometry out of the
    embedding itself) and a probe regressing the transformed accuracy."""

    def __init__(self, encoder: nn.Module, embed_dim: int):
        super().__init__()
        self.encoder = encoder
        self.projector = nn.Sequential(nn.Linear(embed_dim, embed_dim), nn.ReLU(), nn.Linear(embed_dim, embed_dim))
        self.probe = MLPHead(embed_dim, embed_dim, 2)


def pretrain_epoch(model: PretrainModel, opt: torch.optim.Optimizer, packs: list[GraphPack],
                   y: np.ndarray, cfg: ContrastiveConfig, gen: torch.Generator, device="cpu",
                   on_batch=None) -> dict[str, float]:
    """One epoch over ``packs[0]`` in a seeded random order.

    Args:
        model: encoder + projector + probe.
        opt: the optimiser (its state carries over between epochs).
        packs: the canonical graphs first, then aligned graph-level views
            (``packs[j][i]`` is a variant of architecture ``i``).
        y: transformed targets aligned with the packs (NaN = unlabelled).
        cfg: hyperparameters.
        gen: the torch generator driving order, views and masks.
        on_batch: optional callable after each batch (progress bars).

    Under torchrun each rank embeds its part of every batch and the loss and
    gradients are those of the whole batch (:mod:`gennape.pretrain.distributed`).

    Returns:
        mean losses of the epoch: ``loss``, ``contrastive``, ``supervised``.
    """
    model.train()
    dp = distributed.current()
    n = len(packs[0])
    order = torch.randperm(n, generator=gen).numpy()
    aug = gen if dp is None else distributed.augmentation_generator(gen, dp)
    totals = {"loss": 0.0, "contrastive": 0.0, "supervised": 0.0}
    n_batches = 0
    for start in range(0, n, cfg.batch_size):
        idx = order[start:start + cfg.batch_size]
        if len(idx) < distributed.min_batch(dp):
            continue
        rows = idx if dp is None else distributed.local_part(idx, dp)
        z = []
        for _ in range(2):
            pick = int(torch.randint(len(packs), (1,), generator=gen)) if len(packs) > 1 else 0
            x, ei, b = packs[pick].batch(rows)
            x, ei = augment(x, ei, cfg.feature_mask_p, cfg.edge_drop_p, aug)
            emb = model.encoder(x.to(device), ei.to(device), b.to(device))
            z.append(emb if dp is None else distributed.gather_rows(emb, len(idx), dp))
        loss_c = nt_xent(model.projector(z[0]), model.projector(z[1]), cfg.temperature)
        loss = cfg.contrastive_weight * loss_c
        loss_s = torch.zeros((), device=device)
        if cfg.supervised_weight > 0:
            target = torch.as_tensor(y[idx], dtype=torch.float32, device=device)
            labelled = ~torch.isnan(target)
            if int(labelled.sum()) >= 2:
                pred = model.probe(z[0])[labelled]
                t = target[labelled]
                loss_s = nn.functional.mse_loss(pred, t) + cfg.rank_weight * pairwise_rank_loss(pred, t)
                loss = loss + cfg.supervised_weight * loss_s
        opt.zero_grad()
        loss.backward()
        if dp is not None:
            distributed.average_gradients(model.parameters(), dp)
        opt.step()
        totals["loss"] += float(loss.detach())
        totals["contrastive"] += float(loss_c.detach())
        totals["supervised"] += float(loss_s.detach())
        n_batches += 1
        if on_batch is not None:
            on_batch()
    return {k: v / max(n_batches, 1) for k, v in totals.items()}


@torch.no_grad()
def embed_pack(encoder: nn.Module, pack: GraphPack, batch_size: int = 256, device="cpu") -> np.ndarray:
    """Embeddings ``[n_graphs, embed_dim]`` of every graph of ``pack`` (eval mode)."""
    was_training = encoder.training
    encoder.eval()
    out = []
    for start in range(0, len(pack), batch_size):
        x, ei, b = pack.batch(np.arange(start, min(start + batch_size, len(pack))))
        out.append(encoder(x.to(device), ei.to(device), b.to(device)).cpu())
    encoder.train(was_training)
    return torch.cat(out).numpy().astype(np.float64)


__all__ = ["ContrastiveConfig", "PretrainModel", "augment", "pretrain_epoch", "embed_pack"]
