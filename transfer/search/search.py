"""The ask/tell search, the cached batched evaluator and the run loop.

:class:`Search` is the user-facing ask/tell API over a strategy and a space::

    from gennape.transfer.search import Search
    search = Search("evolution", "nb201", seed=0)
    for _ in range(100):
        specs = search.ask(8)                         # family specs (NB201Spec, ...)
        search.tell(specs, [my_accuracy(s) for s in specs])
    best_spec, best_score = search.best()[0]

:class:`Evaluator` answers a strategy's proposals with the estimator: it
builds each new network's CG once (``family.to_cg``), checks the FLOPs
(MACs) and parameter limits on that exact CG, featurises and predicts the
feasible ones in one batch, and keeps every answer in a cache keyed by the
space's canonical key, so a proposal seen before costs a dictionary look-up.
:func:`run_search` joins the two for ``gennape search``.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from gennape.transfer.search.space import Genotype, Space, get_space
from gennape.transfer.search.strategies import Strategy, make_strategy


# ------------------------------------------------------------------ ask/tell
class Search:
    """Ask/tell over a strategy and a space, in the family's own specs.

    Args:
        strategy: a name of :data:`gennape.transfer.search.strategies.STRATEGIES`
            or a :class:`~gennape.transfer.search.strategies.Strategy`.
        space: a family name or a :class:`~gennape.transfer.search.space.Space`.
        seed: the strategy's seed (ignored for a strategy object).
        start: specs to begin from (evolution's first members, local search's start);
            ``ValueError`` for one outside the space (a dead cell, see ``Space.check``).
        **options: the strategy's own options (``population``, ``sample``, ``lr``, ...).
    """

    def __init__(self, strategy: str | Strategy, space: str | Space, seed: int = 0, start: Sequence[Any] = (),
                 **options):
        self.space = get_space(space) if isinstance(space, str) else space
        if isinstance(strategy, str):
            strategy = make_strategy(strategy, self.space, seed=seed,
                                     start=[self.space.encode(self.space.check(s)) for s in start], **options)
        self.strategy = strategy
        self.history: list[tuple[Any, float | None]] = []
        self._pending: list[tuple[Genotype, Any]] = []

    def ask(self, n: int = 1) -> list[Any]:
        """Up to ``n`` specs to evaluate (local search may give fewer)."""
        if self._pending:
            raise RuntimeError("tell() the scores of the last ask() first")
        genotypes = self.strategy.ask(n)
        self._pending = [(g, self.space.decode(g)) for g in genotypes]
        return [spec for _, spec in self._pending]

    def tell(self, specs: Sequence[Any], scores: Sequence[float | None]) -> None:
        """Scores (higher is better; ``None`` = infeasible) of the last ask's specs, in order."""
        if len(specs) != len(self._pending) or len(scores) != len(specs):
            raise ValueError(f"tell() needs the {len(self._pending)} specs of the last ask() and one score each")
        for (_, asked), spec in zip(self._pending, specs):
            if self.space.key(asked) != self.space.key(spec):
                raise ValueError("tell() got specs in another order than ask() gave them")
        genotypes = [g for g, _ in self._pending]
        self._pending = []
        scores = [None if s is None else float(s) for s in scores]
        self.strategy.tell(genotypes, scores)
        self.history.extend(zip(specs, scores))

    def best(self, k: int = 1) -> list[tuple[Any, float]]:
        """The ``k`` best distinct specs told so far, with their scores."""
        seen: dict[str, tuple[Any, float]] = {}
        for spec, score in self.history:
            if score is not None:
                seen.setdefault(self.space.key(spec), (spec, score))
        return sorted(seen.values(), key=lambda t: -t[1])[:k]


# ---------------------------------------------------------------- evaluation
@dataclass
class Candidate:
    """One distinct network met by a search.

    ``score`` ranks (higher is better; the estimator's unclipped score);
    ``accuracy`` is the predicted accuracy (fraction) and ``uncertainty`` the
    standard deviation of the ensemble members' predicted accuracies (None
    for a single estimator or a custom scorer). Infeasible networks (over a
    limit, or dead: output independent of the input) are not predicted: their
    score is None.
    """

    key: str
    spec: Any
    params: int
    macs: int
    feasible: bool
    score: float | None = None
    accuracy: float | None = None
    uncertainty: float | None = None
    ood: bool | None = None


@dataclass
class EvalStats:
    """Counts and seconds spent, for the profile ``gennape search`` prints."""

    queries: int = 0
    cache_hits: int = 0
    infeasible: int = 0
    predicted: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: {"cg": 0.0, "featurise": 0.0, "predict": 0.0})


class Evaluator:
    """Scores specs by prediction under limits, batched and cached.

    Args:
        space: the space whose ``key`` names networks (and whose family builds CGs).
        estimator: a fitted estimator or ensemble (``load_estimator``), or a distilled
            student (:func:`gennape.transfer.distill.load_student`, ~20x faster); or None with ``scorer``.
        scorer: instead of the estimator, ``scorer(cgs, specs) -> scores`` (higher is
            better), e.g. MACs for a FLOPs-ranked baseline or a synthetic test score.
        max_macs / max_params: limits checked on ``family.to_cg(spec)`` (None: no limit).
        members: predict with the first ``members`` members of an ensemble only
            (the GNN passes are most of the time, so ``members=1`` of the nine
            shipped is about nine times faster, and ranks like one seed does).
    """

    def __init__(self, space: Space, estimator=None, *, scorer: Callable | None = None,
                 max_macs: float | None = None, max_params: float | None = None, members: int | None = None):
        if (estimator is None) == (scorer is None):
            raise ValueError("give an estimator or a scorer, not both or neither")
        if members is not None and hasattr(estimator, "members_"):
            if not 1 <= members <= len(estimator.members_):
                raise ValueError(f"members must be in 1..{len(estimator.members_)}, got {members}")
            estimator = copy.copy(estimator)  # shallow: the members themselves are shared
            estimator.members_ = estimator.members_[:members]
        self.space, self.estimator, self.scorer = space, estimator, scorer
        self.max_macs, self.max_params = max_macs, max_params
        self.cache: dict[str, Candidate] = {}
        self.stats = EvalStats()

    def feasible(self, params: int, macs: int) -> bool:
        return ((self.max_macs is None or macs <= self.max_macs)
                and (self.max_params is None or params <= self.max_params))

    def __call__(self, specs: Sequence[Any]) -> list[Candidate]:
        """The candidates of ``specs`` (same order), predicting only the new feasible ones."""
        keys = [self.space.key(s) for s in specs]
        self.stats.queries += len(specs)
        new: dict[str, Any] = {}
        for k, s in zip(keys, specs):
            if k in self.cache or k in new:
                self.stats.cache_hits += 1
            else:
                new[k] = s
        if new:
            self._evaluate(list(new), list(new.values()))
        return [self.cache[k] for k in keys]

    def _evaluate(self, keys: list[str], specs: list[Any]) -> None:
        t = time.perf_counter()
        cgs = [self.space.family.to_cg(s) for s in specs]
        self.stats.seconds["cg"] += time.perf_counter() - t
        todo = []
        for i, (k, s, cg) in enumerate(zip(keys, specs, cgs)):
            params, macs = cg.params, cg.macs
            # A dead cell (constant output) is never a candidate, whoever proposes it.
            ok = self.feasible(params, macs) and self.space.family.output_depends_on_input(s)
            self.cache[k] = Candidate(k, s, params, macs, ok)
            if ok:
                todo.append(i)
            else:
                self.stats.infeasible += 1
        if not todo:
            return
        self.stats.predicted += len(todo)
        for i, values in zip(todo, self._score([cgs[i] for i in todo], [specs[i] for i in todo])):
            c = self.cache[keys[i]]
            c.score, c.accuracy, c.uncertainty, c.ood = values

    def _score(self, cgs: list, specs: list) -> list[tuple]:
        if self.scorer is not None:
            t = time.perf_counter()
            scores = np.asarray(self.scorer(cgs, specs), dtype=np.float64)
            self.stats.seconds["predict"] += time.perf_counter() - t
            return [(float(s), None, None, None) for s in scores]
        import torch

        from gennape.pretrain.estimator import as_pack

        t = time.perf_counter()
        pack = as_pack(cgs)
        t1 = time.perf_counter()
        with torch.inference_mode():  # no autograd bookkeeping: about twice as fast on CPU
            out = self.estimator.predict_details(pack)
        self.stats.seconds["featurise"] += t1 - t
        self.stats.seconds["predict"] += time.perf_counter() - t1
        spread = [None] * len(cgs)
        if "member_scores" in out:
            members = self.estimator.members_
            accs = np.stack([m.target_transform_.inverse(s) for m, s in zip(members, out["member_scores"])])
            spread = accs.std(axis=0).tolist()
        elif np.all(np.isfinite(out.get("accuracy_std", np.nan))):  # a distilled student's predicted spread
            spread = out["accuracy_std"].tolist()
        return [(float(s), float(a), u, bool(o))
                for s, a, u, o in zip(out["score"], out["accuracy"], spread, out["ood"])]

    def ranked(self, keys=None) -> list[Candidate]:
        """Feasible candidates (of ``keys``, default all met), best score
        first; ties: fewer MACs, then key."""
        pool = self.cache.values() if keys is None else (self.cache[k] for k in dict.fromkeys(keys))
        done = [c for c in pool if c.feasible and c.score is not None]
        return sorted(done, key=lambda c: (-c.score, c.macs, c.key))


# ------------------------------------------------------------------ run loop
@dataclass
class SearchResult:
    """What :func:`run_search` found: the distinct feasible networks it met,
    ``ranked`` best first, and the evaluator's (cumulative) stats."""

    ranked: list[Candidate]
    stats: EvalStats
    seconds: float
    search: Search


def run_search(space: Space, evaluator: Evaluator, strategy: str = "evolution", queries: int = 1000,
               seed: int = 0, batch_size: int = 32, start: Sequence[Any] = (), progress=None,
               **options) -> SearchResult:
    """Propose ``queries`` networks with ``strategy`` (seeded), ``batch_size``
    at a time, each answered by ``evaluator`` (repeats from its cache).

    Args:
        progress: optional ``update(n)``-able bar (:class:`gennape.pretrain.progress.Progress`).
        **options: the strategy's options.
    """
    search = Search(strategy, space, seed=seed, start=start, **options)
    t = time.perf_counter()
    done, idle = 0, 0
    while done < queries:
        specs = search.ask(min(batch_size, queries - done))
        if not specs:
            idle += 1
            if idle > 1000:
                raise RuntimeError(f"strategy {strategy!r} stopped proposing networks")
            continue
        idle = 0
        found = evaluator(specs)
        search.tell(specs, [c.score for c in found])
        done += len(specs)
        if progress is not None:
            progress.update(len(specs))
    seconds = time.perf_counter() - t
    ranked = evaluator.ranked([space.key(spec) for spec, _ in search.history])
    return SearchResult(ranked, evaluator.stats, seconds, search)


__all__ = ["Search", "Candidate", "EvalStats", "Evaluator", "SearchResult", "run_search"]
