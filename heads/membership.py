"""Fuzzy c-means membership of points against fixed cluster centres.

The closed form of fuzzy c-means (Bezdek): a point at distance ``d_k`` from
centre ``k`` belongs to cluster ``k`` with

    u_k = 1 / sum_j (d_k / d_j) ** (2 / (m - 1))

so memberships are positive and sum to one; a point on a centre belongs to it
alone. It is what ``skfuzzy.cluster.cmeans_predict`` converges to for fixed
centres, computed here in one step (and differentiably, in torch).
"""

from __future__ import annotations

import torch

#: Distances are clamped here so that a point sitting on a centre stays finite.
_EPS = 1e-12


def fcm_membership(x: torch.Tensor, centers: torch.Tensor, m: float) -> torch.Tensor:
    """Membership of each row of ``x`` in each cluster.

    Args:
        x: points.
        centers: cluster centres.
        m: fuzzifier, > 1 (2 is the usual choice; larger is fuzzier).

    Shapes:
        - x: ``[n, d]``, centers: ``[k, d]``
        - output: ``[n, k]``, rows sum to one
    """
    if m <= 1:
        raise ValueError(f"the fuzzifier m must be > 1, got {m}")
    # Each distance from its own difference: cdist's matrix-product formula
    # (used above 25 rows) rounds a row differently depending on the row count,
    # and a graph's membership must not depend on the graphs batched with it.
    d = torch.cdist(x.to(centers.dtype), centers, compute_mode="donot_use_mm_for_euclid_dist").clamp_min(_EPS)
    # Softmax over -(2/(m-1)) log d is the closed form written stably.
    return torch.softmax(-(2.0 / (m - 1.0)) * torch.log(d), dim=1)


__all__ = ["fcm_membership"]
