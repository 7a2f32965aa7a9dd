"""K predictor heads, one per fuzzy cluster, soft-aggregated by membership."""

from __future__ import annotations

import torch
from torch import nn

from gennape.heads.mlp import MLPHead


class FuzzyHeads(nn.Module):
    """One :class:`~gennape.heads.mlp.MLPHead` per cluster; the prediction is the
    membership-weighted mean of the heads' outputs.

    Training weights each head's loss on a sample by the sample's membership
    in that head's cluster (see :meth:`per_head`), so a head specialises in its
    region of the embedding space while still seeing every sample a little.

    Args:
        in_channels: embedding size.
        num_heads: number of clusters K (1 gives a single plain head).
        hidden_channels: width of each head.
        num_layers: linear layers per head.
        dropout: dropout inside the heads.

    Shapes:
        - input: embeddings ``[n, in_channels]``, memberships ``[n, K]``
          (rows sum to one)
        - output: ``[n]``
    """

    def __init__(self, in_channels: int, num_heads: int = 4, hidden_channels: int = 64,
                 num_layers: int = 2, dropout: float = 0.0):
        super().__init__()
        if num_heads < 1:
            raise ValueError(f"num_heads must be >= 1, got {num_heads}")
        self.heads = nn.ModuleList(
            MLPHead(in_channels, hidden_channels, num_layers, dropout) for _ in range(num_heads)
        )

    @property
    def num_heads(self) -> int:
        return len(self.heads)

    def reset_parameters(self) -> None:
        for head in self.heads:
            head.reset_parameters()

    def per_head(self, x: torch.Tensor) -> torch.Tensor:
        """Every head's prediction, ``[n, K]``."""
        return torch.stack([head(x) for head in self.heads], dim=1)

    def forward(self, x: torch.Tensor, membership: torch.Tensor) -> torch.Tensor:
        if membership.shape != (x.shape[0], self.num_heads):
            raise ValueError(
                f"membership has shape {tuple(membership.shape)}, expected ({x.shape[0]}, {self.num_heads})"
            )
        return (self.per_head(x) * membership).sum(dim=1)


__all__ = ["FuzzyHeads"]
