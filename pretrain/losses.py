"""Losses: NT-Xent for contrastive pretraining, pairwise ranking for regression."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """Normalised-temperature cross entropy (SimCLR).

    Row ``i`` of ``z1`` and row ``i`` of ``z2`` are two views of the same
    architecture (the positive pair); every other row of either matrix is a
    negative. Symmetric: both views act as anchors.

    Shapes:
        - z1, z2: ``[n, d]``
        - output: scalar
    """
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2], dim=0), dim=1)
    sim = z @ z.t() / temperature
    sim.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, target)


def pairwise_rank_loss(pred: torch.Tensor, target: torch.Tensor, scale: float = 1.0,
                       weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean logistic loss over all ordered pairs of the batch: for ``t_i > t_j``,
    ``softplus(-(p_i - p_j) * scale)``. Ties are skipped.

    Shapes:
        - pred, target: ``[n]``; weight: optional ``[n]`` per-sample weights
          (a pair weighs the product)
        - output: scalar
    """
    diff_t = target.unsqueeze(1) - target.unsqueeze(0)
    diff_p = pred.unsqueeze(1) - pred.unsqueeze(0)
    mask = (diff_t > 0).to(pred.dtype)
    if weight is not None:
        mask = mask * weight.unsqueeze(1) * weight.unsqueeze(0)
    total = mask.sum()
    if total == 0:
        return pred.sum() * 0.0
    return (F.softplus(-diff_p * scale) * mask).sum() / total


__all__ = ["nt_xent", "pairwise_rank_loss"]
