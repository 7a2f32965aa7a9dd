"""A small MLP regressor head."""

from __future__ import annotations

import torch
from torch import nn


class MLPHead(nn.Module):
    """Embedding -> one scalar.

    Args:
        in_channels: embedding size.
        hidden_channels: width of the hidden layers.
        num_layers: number of linear layers (>= 1).
        dropout: dropout after each hidden layer.

    Shapes:
        - input: ``[n, in_channels]``
        - output: ``[n]``
    """

    def __init__(self, in_channels: int, hidden_channels: int = 64, num_layers: int = 2, dropout: float = 0.0):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        layers: list[nn.Module] = []
        width = in_channels
        for _ in range(num_layers - 1):
            layers += [nn.Linear(width, hidden_channels), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden_channels
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.net:
            if isinstance(m, nn.Linear):
                m.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


__all__ = ["MLPHead"]
