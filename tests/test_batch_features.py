"""The batched NumPy featuriser equals the per-graph one to the bit, and GraphPack uses it for CGs."""

import numpy as np
import pytest

from gennape.cg.families import family_names, get_family
from gennape.encoder.batch_features import cg_arrays, featurize_graphs
from gennape.encoder.features import featurize
from gennape.pretrain.packed import GraphPack

from _synthetic import toy_dataset


def _random_cgs(name, n):
    from gennape.transfer.distill import random_family_specs

    family = get_family(name)
    return [family.to_cg(s) for s in random_family_specs(name, n, seed=5)]


@pytest.mark.parametrize("family", family_names())
def test_featurize_graphs_equals_featurize_on_every_family(family):
    cgs = _random_cgs(family, 12)
    arrays = [cg_arrays(cg) for cg in cgs]
    ptr = np.cumsum([0] + [len(a[0]) for a in arrays])
    x = featurize_graphs(np.concatenate([a[0] for a in arrays]), np.concatenate([a[1] for a in arrays]), ptr,
                         np.array([a[3] for a in arrays]))
    for cg, (op, attrs, edges, _), a, b in zip(cgs, arrays, ptr[:-1], ptr[1:]):
        data = cg.to_pyg()
        assert np.array_equal(op, data.op.numpy()) and np.array_equal(attrs, data.attrs.numpy())
        assert np.array_equal(edges, data.edge_index.numpy())
        assert x[a:b].tobytes() == featurize(data).numpy().tobytes()


def test_pack_of_cgs_equals_pack_of_their_data_in_any_mix():
    cgs = toy_dataset(40, seed=1)[0] + _random_cgs("nb201", 30) + _random_cgs("ofa_mbv3", 5)
    fast = GraphPack.from_items(cgs)
    mixed = GraphPack.from_items([cg.to_pyg() if i % 3 == 0 else cg for i, cg in enumerate(cgs)])
    slow = GraphPack.from_items([cg.to_pyg() for cg in cgs])
    for pack in (fast, mixed):
        for k in ("op", "num", "edges", "node_ptr", "edge_ptr", "log_weights"):
            assert getattr(pack, k).dtype == getattr(slow, k).dtype
            assert np.array_equal(getattr(pack, k), getattr(slow, k)), k
