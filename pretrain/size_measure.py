"""Which graph-level size the size term of :mod:`gennape.pretrain.capacity` reads.

The size term is linear in one *size* column, a fixed mix of the packed
graph-level attributes (:data:`gennape.pretrain.packed.GRAPH_ATTRS`):

- ``weights``: ``log(1 + weight count)``, the paper-protocol NB-101 checkpoint's
  size (every checkpoint written before the option existed reads it);
- ``macs``: ``log(1 + MACs)``, the multi-family default checkpoint's size;
- ``weights_macs``: their mean, the log of their geometric mean.

Which of weights and MACs ranks a family better differs by family (on
TransNAS-Bench-101 macro MACs rank at Spearman 0.72 and weights at 0.07,
because its networks differ in where they downsample; on NB-101 they are
equal). The measure is not fitted: fitted weights follow whichever measure the
training families happen to prefer, and turn to the wrong one on the family
where the two part. It is chosen among these fixed mixes by the
leave-one-family-out mean (``benchmarks/lofo.py``; docs/results.md).
"""

from __future__ import annotations

import numpy as np

#: Size measure name -> its weight on graph-level attributes, by name
#: (:data:`gennape.pretrain.packed.GRAPH_ATTRS`; the rest weigh 0). Plain data,
#: so the CLI lists the choices without importing torch.
SIZE_MEASURES: dict[str, dict[str, float]] = {
    "weights": {"log_weights": 1.0},
    "weights_macs": {"log_weights": 0.5, "log_macs": 0.5},
    "macs": {"log_macs": 1.0},
}


def size_mix(name: str) -> np.ndarray:
    """``[len(GRAPH_ATTRS)]`` float64: the column weights of size measure ``name``."""
    from gennape.pretrain.packed import GRAPH_ATTRS

    if name not in SIZE_MEASURES:
        raise ValueError(f"unknown size measure {name!r}; valid: {', '.join(SIZE_MEASURES)}")
    return np.array([SIZE_MEASURES[name].get(column, 0.0) for column in GRAPH_ATTRS], dtype=np.float64)


def pack_size(pack, name: str) -> np.ndarray:
    """``[n_graphs]``: size measure ``name`` of every graph of a :class:`GraphPack`."""
    return pack.graph_attr @ size_mix(name)


__all__ = ["SIZE_MEASURES", "pack_size", "size_mix"]
