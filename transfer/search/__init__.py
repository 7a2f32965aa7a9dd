"""Predictor-guided architecture search over the benchmark families.

:mod:`~gennape.transfer.search.space` (genotypes of each family's space),
:mod:`~gennape.transfer.search.strategies` (random, regularized evolution,
local search, REINFORCE), :mod:`~gennape.transfer.search.search` (the ask/tell
:class:`Search`, the cached batched :class:`Evaluator` and the run loop),
:mod:`~gennape.transfer.search.select` (which top K to hand over),
:mod:`~gennape.transfer.search.output` (candidates.csv, top-K ONNX, pareto.png),
:mod:`~gennape.transfer.search.landscape` and
:mod:`~gennape.transfer.search.embedding_map` (pictures).
"""

from gennape.transfer.search.search import Evaluator, Search, SearchResult, run_search
from gennape.transfer.search.space import PoolSpace, Space, get_space
from gennape.transfer.search.strategies import STRATEGIES, make_strategy

__all__ = ["Search", "Evaluator", "SearchResult", "run_search", "Space", "PoolSpace", "get_space",
           "STRATEGIES", "make_strategy"]
