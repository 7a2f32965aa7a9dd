"""How far the size term trusts the heads on a network unlike the training networks.

The heads of a model pretrained on some families rank a family whose graphs
they have never seen far worse than their own (leave one family out, OFA held
out: heads alone -0.08 Spearman, against 0.976 when only OFA's labels, not its
CGs, were held out), while network size ranks every family about as well as it
ranks the training ones. So with ``head_trust="ood"`` a network's head score is
pulled toward the heads' training mean by its out-of-distribution score ``d``
(distance of its embedding to the nearest training embedding, in units of the
95th percentile of training nearest-neighbour distances)::

    head_used = head_mean + min(1, 1 / d) * (head - head_mean)

so a network like the training data (``d <= 1``) is scored as before and one
far from it mostly by its size. The rule has no parameter: ``d = 1`` is where
the OOD scale already puts "as far as a typical training network from its
neighbour". ``constant`` trusts the heads the same everywhere (every checkpoint
made before the option existed).

Shapes: ``head``, ``d``: ``[n]``.
"""

from __future__ import annotations

#: ``head_trust`` choices.
HEAD_TRUSTS = ("constant", "ood")


def check_head_trust(name: str) -> str:
    """``name`` if it is one of :data:`HEAD_TRUSTS`, else a ValueError listing them."""
    if name not in HEAD_TRUSTS:
        raise ValueError(f"unknown head trust {name!r}; valid: {', '.join(HEAD_TRUSTS)}")
    return name


def trusted_head(head, ood, head_mean):
    """``head_mean + min(1, 1 / ood) * (head - head_mean)``, ``[n]`` (torch tensors)."""
    trust = (1.0 / ood.clamp_min(1e-12)).clamp(max=1.0)
    return head_mean + trust * (head - head_mean)


__all__ = ["HEAD_TRUSTS", "check_head_trust", "trusted_head"]
