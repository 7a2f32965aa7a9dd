"""Numeric node features clamped to the range the encoder was trained on.

A GNN extrapolates linearly, and with no constraint on the sign, outside the
range of its training inputs. NAS-Bench-101 networks widen at most 4x over
their stem (``log_width_vs_stem`` <= 0.5) and use 1x1 and 3x3 kernels; a
MobileNetV3 widens 60x (up to 1.58) and uses 5x5 and 7x7 kernels, so 84 % of
an OFA network's nodes lie outside NB-101's range on that one column. The
pretrained heads then answer in directions NB-101 never constrained: of nine
pretraining seeds, two ranked OFA-MobileNetV3 *backwards* (Spearman -0.30 and
-0.52) although every seed ranked NB-101 alike. :class:`FeatureRange` clamps
each numeric column to ``[low, high]``, set from the training graphs
(:meth:`FeatureRange.set_range`): a node wider than anything seen counts as the
widest seen. On the training graphs it changes nothing, so it costs nothing in
domain.

Measured on the nine-seed shipped ensemble and the same ensemble pretrained
with ``--no-feature-clamp`` (bit-identical weights; ``python
benchmarks/transfer.py --no-finetune --checkpoint ...``, whole families; without
-> with the clamp): OFA-MobileNetV3 0.942 -> 0.969 (worst member -0.52 ->
0.35), NB-201 0.856 -> 0.856, NB-301 0.623 -> 0.621, NB-101 test 0.665 -> 0.665.
"""

from __future__ import annotations

import torch
from torch import nn


class FeatureRange(nn.Module):
    """Clamp the last ``num_numeric`` columns of the node features to a range.

    Until :meth:`set_range` is called the range is unbounded (identity).

    Args:
        in_channels: featuriser width (``gennape.encoder.features.NUM_FEATURES``).
        num_numeric: how many trailing columns are numeric
            (``len(gennape.encoder.features.NUMERIC_FEATURES)``); the others (the op
            one-hot) pass unchanged.

    Shapes:
        - input: ``[num_nodes, in_channels]``
        - output: ``[num_nodes, in_channels]``
    """

    def __init__(self, in_channels: int, num_numeric: int):
        super().__init__()
        if not 0 <= num_numeric <= in_channels:
            raise ValueError(f"num_numeric must be in [0, {in_channels}], got {num_numeric}")
        self.num_numeric = num_numeric
        self.register_buffer("low", torch.full((num_numeric,), -torch.inf))
        self.register_buffer("high", torch.full((num_numeric,), torch.inf))

    @torch.no_grad()
    def set_range(self, low, high) -> None:
        """Set the per-column bounds, e.g. from
        :meth:`gennape.pretrain.packed.GraphPack.numeric_range` of the training graphs.

        Args:
            low, high: ``[num_numeric]``, ``low <= high``.
        """
        low = torch.as_tensor(low, dtype=torch.float32, device=self.low.device)
        high = torch.as_tensor(high, dtype=torch.float32, device=self.high.device)
        for name, value in (("low", low), ("high", high)):
            if value.shape != (self.num_numeric,):
                raise ValueError(f"{name} has shape {tuple(value.shape)}, expected ({self.num_numeric},)")
        if bool((low > high).any()):
            raise ValueError("low must not exceed high in any column")
        self.low.copy_(low)
        self.high.copy_(high)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        split = x.shape[1] - self.num_numeric
        return torch.cat([x[:, :split], torch.clamp(x[:, split:], self.low, self.high)], dim=1)


__all__ = ["FeatureRange"]
