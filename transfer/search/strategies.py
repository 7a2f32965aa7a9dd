"""Search strategies: ``ask(n)`` proposes genotypes, ``tell(genotypes, scores)`` learns.

A score is higher-is-better, or ``None`` for a proposal that broke a limit
(FLOPs, params): evolution keeps it out of the population, local search never
moves to it, REINFORCE pays it the worst reward seen so far.

=============  ================================================================
``random``     uniform samples of the space
``evolution``  regularized evolution (Real et al., AAAI-19): a tournament of
               ``sample`` members of a population of ``population`` picks the
               parent, its mutation joins, the oldest member leaves
``local``      best-improvement local search over single changes, restarting
               from a random sample at a local optimum (White et al., 2021)
``reinforce``  REINFORCE on independent categorical logits, one per decision,
               with a moving-average baseline, rewards in units of their moving
               mean deviation (NAS-Bench-101's policy-gradient baseline)
=============  ================================================================

Every strategy draws from its own ``numpy.random.Generator`` seeded at
construction, so a seed fixes the proposals given the same scores.
"""

from __future__ import annotations

from collections import deque
from typing import Sequence

import numpy as np

from gennape.transfer.search.space import Genotype, Space


class Strategy:
    """Base class. Args: space; seed; start: genotypes to begin from (evolution's
    first population members, local search's first point)."""

    def __init__(self, space: Space, seed: int = 0, start: Sequence[Genotype] = ()):
        self.space, self.seed, self.start = space, seed, list(start)
        self.rng = np.random.default_rng(seed)

    def ask(self, n: int = 1) -> list[Genotype]:
        raise NotImplementedError

    def tell(self, genotypes: Sequence[Genotype], scores: Sequence[float | None]) -> None:
        pass

    def _initial(self) -> Genotype:
        return self.start.pop(0) if self.start else self.space.sample(self.rng)


class RandomSearch(Strategy):
    def ask(self, n=1):
        return [self._initial() for _ in range(n)]


class RegularizedEvolution(Strategy):
    """Args (besides the base class's): population; sample (tournament size)."""

    def __init__(self, space, seed=0, start=(), population: int = 50, sample: int = 10):
        super().__init__(space, seed, start)
        if not 1 <= sample <= population:
            raise ValueError(f"tournament sample must be in 1..population ({population}), got {sample}")
        self.population_size, self.sample_size = population, sample
        self.population: deque[tuple[Genotype, float]] = deque()
        self._pending_initial = 0

    def ask(self, n=1):
        out = []
        for _ in range(n):
            # Random members until the population is full (counting those asked, not yet told).
            if len(self.population) + self._pending_initial < self.population_size or not self.population:
                self._pending_initial += 1
                out.append(self._initial())
            else:
                members = [self.population[i] for i in
                           self.rng.choice(len(self.population), size=min(self.sample_size, len(self.population)),
                                           replace=False)]
                parent = max(members, key=lambda m: m[1])[0]
                out.append(self.space.mutate(parent, self.rng))
        return out

    def tell(self, genotypes, scores):
        self._pending_initial = 0  # every asked genotype is told now (Search enforces it)
        for g, s in zip(genotypes, scores):
            if s is None:
                continue
            self.population.append((g, float(s)))
            if len(self.population) > self.population_size:
                self.population.popleft()  # aging: the oldest leaves, not the worst


class LocalSearch(Strategy):
    def __init__(self, space, seed=0, start=()):
        super().__init__(space, seed, start)
        self.current: tuple[Genotype, float] | None = None
        self.queue: list[Genotype] = []
        self.best_neighbour: tuple[Genotype, float] | None = None
        self._starting = False

    def ask(self, n=1):
        if self.current is None:
            if self._starting:
                return []
            self._starting = True
            return [self._initial()]
        out, self.queue = self.queue[:n], self.queue[n:]
        return out

    def tell(self, genotypes, scores):
        for g, s in zip(genotypes, scores):
            if self.current is None:
                self._starting = False
                if s is None:
                    continue  # an infeasible start: draw another
                self._move(g, float(s))
            elif s is not None and (self.best_neighbour is None or s > self.best_neighbour[1]):
                self.best_neighbour = (g, float(s))
        if self.current is not None and not self.queue:
            if self.best_neighbour is not None and self.best_neighbour[1] > self.current[1]:
                self._move(*self.best_neighbour)
            else:
                self.current = None  # a local optimum: restart

    def _move(self, g: Genotype, s: float) -> None:
        self.current, self.best_neighbour = (g, s), None
        self.queue = self.space.neighbours(g)
        self.rng.shuffle(self.queue)


class Reinforce(Strategy):
    """Args (besides the base class's): lr (step on the logits); baseline_decay."""

    def __init__(self, space, seed=0, start=(), lr: float = 0.1, baseline_decay: float = 0.9):
        super().__init__(space, seed, start)
        self.lr, self.decay = lr, baseline_decay
        self.logits = [np.zeros(n) for n in space.decisions]
        self.baseline: float | None = None
        self.spread: float | None = None  # moving mean |reward - baseline|: rewards in units of it
        self.worst: float | None = None

    def probabilities(self) -> list[np.ndarray]:
        out = []
        for z in self.logits:
            p = np.exp(z - z.max())
            out.append(p / p.sum())
        return out

    def ask(self, n=1):
        probs = self.probabilities()
        out = []
        while len(out) < n:
            if self.start:
                out.append(self.start.pop(0))
                continue
            g = tuple(int(self.rng.choice(len(p), p=p)) for p in probs)
            g = self.space.project(g, self.rng)
            if g is not None:
                out.append(g)
        return out

    def tell(self, genotypes, scores):
        feasible = [s for s in scores if s is not None]
        if feasible:
            low = min(feasible)
            self.worst = low if self.worst is None else min(self.worst, low)
        if self.worst is None:
            return  # nothing feasible seen yet: no reward scale
        rewards = np.array([self.worst if s is None else s for s in scores], dtype=np.float64)
        if self.baseline is None:
            self.baseline = float(rewards.mean())
            self.spread = float(np.abs(rewards - self.baseline).mean())
        probs = self.probabilities()
        grads = [np.zeros_like(z) for z in self.logits]
        for g, r in zip(genotypes, rewards):
            advantage = (r - self.baseline) / (self.spread or 1.0)
            for i, v in enumerate(g):
                step = -probs[i] * advantage
                step[v] += advantage  # d log p(v) / d logits = onehot(v) - p
                grads[i] += step
            self.spread = self.decay * self.spread + (1 - self.decay) * abs(r - self.baseline)
            self.baseline = self.decay * self.baseline + (1 - self.decay) * r
        for z, grad in zip(self.logits, grads):
            z += self.lr * grad / len(rewards)


#: strategy name -> class.
STRATEGIES = {"evolution": RegularizedEvolution, "reinforce": Reinforce, "local": LocalSearch,
              "random": RandomSearch}


def make_strategy(name: str, space: Space, seed: int = 0, start: Sequence[Genotype] = (), **options) -> Strategy:
    """The strategy called ``name``; ``ValueError`` lists the valid names."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; valid strategies: {', '.join(STRATEGIES)}")
    return STRATEGIES[name](space, seed=seed, start=start, **options)


__all__ = ["Strategy", "RandomSearch", "RegularizedEvolution", "LocalSearch", "Reinforce", "STRATEGIES",
           "make_strategy"]
