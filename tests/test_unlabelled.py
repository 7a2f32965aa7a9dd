"""Unlabelled graphs in the contrastive stage (``GennapeEstimator.fit(unlabelled=...)``)."""

import numpy as np
import pytest

from gennape.encoder.op_encoding import OP_CLASSES
from gennape.pretrain.estimator import GennapeEstimator
from gennape.pretrain.packed import GraphPack

from _synthetic import toy_cg, toy_dataset

TINY = dict(hidden_channels=16, embed_dim=16, num_layers=2, num_clusters=2, epochs=1, batch_size=32,
            head_epochs=10, head_hidden=16, readout="mean")


def _pools_free(n, seed):
    rng = np.random.default_rng(seed)
    ops = [list(rng.choice(["conv3", "conv1"], size=int(rng.integers(1, 4)))) for _ in range(n)]
    return [toy_cg(o, stages=2, cells_per_stage=1) for o in ops], np.array([0.8 + 0.02 * o.count("conv3") for o in ops])


@pytest.fixture(scope="module")
def labelled():
    return _pools_free(64, seed=0)


@pytest.fixture(scope="module")
def unlabelled():
    return toy_dataset(64, seed=1, stages=2, cells_per_stage=1)[0]  # these have pools


def test_concat_equals_packing_the_graphs_together(labelled, unlabelled):
    a, b = GraphPack.from_items(labelled[0][:5]), GraphPack.from_items(unlabelled[:7])
    joined, direct = GraphPack.concat([a, b]), GraphPack.from_items(labelled[0][:5] + unlabelled[:7])
    for name in ("op", "num", "edges", "node_ptr", "edge_ptr", "graph_attr"):
        np.testing.assert_array_equal(getattr(joined, name), getattr(direct, name))
    with pytest.raises(ValueError, match="no packs"):
        GraphPack.concat([])


def test_unlabelled_graphs_train_the_encoder_but_not_the_heads(labelled, unlabelled):
    cgs, y = labelled
    plain = GennapeEstimator(**TINY).fit(cgs, y)
    adapted = GennapeEstimator(**TINY).fit(cgs, y, unlabelled=unlabelled)
    pool = list(OP_CLASSES).index("pool")
    seen = lambda est: est.model_.encoder.op_encoding.seen  # noqa: E731
    # Only the unlabelled graphs have pools: the encoder learns that column from them alone.
    assert seen(plain)[pool] == 0 and seen(adapted)[pool] == 1
    assert not np.allclose(plain.embed(unlabelled), adapted.embed(unlabelled))
    # Clusters, heads, the size term and the OOD reference come from the labelled graphs.
    assert adapted.n_train_ == len(cgs)
    assert len(adapted.model_.reference_embeddings) == len(plain.model_.reference_embeddings)
    assert np.isfinite(adapted.predict_score(unlabelled)).all()


def test_unlabelled_graphs_and_views_are_refused_together(labelled, unlabelled):
    cgs, y = labelled
    with pytest.raises(ValueError, match="cannot be combined with views"):
        GennapeEstimator(**TINY).fit(cgs, y, views=[cgs], unlabelled=unlabelled)
