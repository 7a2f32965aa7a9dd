"""Which K of a search's ranked candidates to hand over (export, or evaluate for real).

A search that converges puts its predicted optimum and that optimum's
one-change neighbours at the head of its ranking: ten near copies of one
guess. When the guess is off, all ten miss together. The rules here spend the
K places differently:

=============  ================================================================
``score``      the K best predicted scores (the ranking as it is)
``diverse``    best score first, skipping any candidate fewer than
               ``min_distance`` changes from one already chosen (the space's
               edit distance), so the K come from K different neighbourhoods
``optimistic`` the K best predicted accuracy + ensemble spread (one standard
               deviation of the members' predictions: an upper confidence
               bound); the score where there is no spread
=============  ================================================================
"""

from __future__ import annotations

from typing import Sequence

from gennape.transfer.search.search import Candidate
from gennape.transfer.search.space import Space

SELECTIONS: tuple[str, ...] = ("score", "diverse", "optimistic")


def select_top(ranked: Sequence[Candidate], k: int, rule: str = "score", space: Space | None = None,
               min_distance: int = 2) -> list[Candidate]:
    """``k`` candidates of ``ranked`` (best score first) chosen by ``rule`` (:data:`SELECTIONS`).

    Args:
        ranked: feasible candidates, best score first (``Evaluator.ranked``).
        k: how many.
        rule: a name of :data:`SELECTIONS`; ``ValueError`` lists them.
        space: the space whose ``distance`` ``diverse`` uses.
        min_distance: ``diverse``: fewest changes between two chosen candidates.
    """
    if rule not in SELECTIONS:
        raise ValueError(f"unknown selection {rule!r}; valid selections: {', '.join(SELECTIONS)}")
    if rule == "score":
        return list(ranked[:k])
    if rule == "optimistic":
        def bound(c: Candidate) -> float:
            return c.score if c.uncertainty is None or c.accuracy is None else c.accuracy + c.uncertainty

        return sorted(ranked, key=lambda c: (-bound(c), -c.score, c.macs, c.key))[:k]
    if space is None:
        raise ValueError("the diverse selection needs the space (its edit distance)")
    chosen: list[Candidate] = []
    genotypes = []
    for c in ranked:
        g = space.encode(c.spec)
        if all(space.distance(g, h) >= min_distance for h in genotypes):
            chosen.append(c)
            genotypes.append(g)
            if len(chosen) == k:
                break
    return chosen


__all__ = ["SELECTIONS", "select_top"]
