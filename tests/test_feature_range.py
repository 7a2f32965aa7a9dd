import numpy as np
import pytest
import torch

from gennape.cg.ops import OPS
from gennape.encoder.feature_range import FeatureRange
from gennape.encoder.features import NUM_FEATURES, NUMERIC_FEATURES, featurize
from gennape.encoder.gnn import CGEncoder
from gennape.pretrain.estimator import GennapeEstimator
from gennape.pretrain.packed import GraphPack

from _synthetic import toy_cg, toy_dataset

WIDTH = len(OPS) + NUMERIC_FEATURES.index("log_width_vs_stem")
TINY = dict(hidden_channels=16, embed_dim=16, num_layers=2, num_clusters=2, epochs=1, batch_size=32,
            head_epochs=20, head_hidden=16, seed=3)


def test_unbounded_until_set_then_clamps_only_numeric_columns():
    rng = torch.Generator().manual_seed(0)
    x = torch.randn(20, NUM_FEATURES, generator=rng) * 5
    clamp = FeatureRange(NUM_FEATURES, len(NUMERIC_FEATURES))
    assert torch.equal(clamp(x), x)
    clamp.set_range(-torch.ones(len(NUMERIC_FEATURES)), torch.ones(len(NUMERIC_FEATURES)))
    out = clamp(x)
    assert torch.equal(out[:, :len(OPS)], x[:, :len(OPS)])
    assert torch.equal(out[:, len(OPS):], x[:, len(OPS):].clamp(-1, 1))


def test_bad_ranges_are_refused():
    clamp = FeatureRange(NUM_FEATURES, len(NUMERIC_FEATURES))
    with pytest.raises(ValueError, match="expected"):
        clamp.set_range(torch.zeros(3), torch.ones(3))
    with pytest.raises(ValueError, match="low must not exceed high"):
        clamp.set_range(torch.ones(len(NUMERIC_FEATURES)), torch.zeros(len(NUMERIC_FEATURES)))
    with pytest.raises(ValueError, match="num_numeric"):
        FeatureRange(4, 5)


def test_pack_range_covers_every_node():
    cgs = [toy_cg(["conv3"], stages=2), toy_cg(["conv1", "pool"], stages=3)]
    low, high = GraphPack.from_items(cgs).numeric_range()
    x = torch.cat([featurize(c.to_pyg()) for c in cgs])[:, len(OPS):].numpy()
    np.testing.assert_allclose(low, x.min(0), atol=1e-3)  # the pack stores float16
    np.testing.assert_allclose(high, x.max(0), atol=1e-3)


def test_bounds_are_saved_with_the_encoder():
    assert {"feature_range.low", "feature_range.high"} <= set(CGEncoder(NUM_FEATURES).state_dict())


@pytest.fixture(scope="module")
def fitted():
    cgs, y = toy_dataset(60, seed=0, stages=2, cells_per_stage=1)
    return cgs, GennapeEstimator(**TINY).fit(cgs, y), GennapeEstimator(**TINY, feature_clamp=False).fit(cgs, y)


def test_clamp_changes_nothing_the_encoder_trains_on(fitted):
    cgs, clamped, free = fitted  # same seed: identical training, masked views included
    np.testing.assert_array_equal(clamped.predict_score(cgs), free.predict_score(cgs))
    low, high = GraphPack.from_items(cgs).numeric_range()
    assert (low > 0).any()  # a column whose training values exclude 0 (the mask value) ...
    # ... keeps 0 in range: masking zeroes features of the contrastive views.
    assert torch.equal(clamped.model_.encoder.feature_range.low, torch.as_tensor(np.minimum(low, 0)))
    assert torch.equal(clamped.model_.encoder.feature_range.high, torch.as_tensor(np.maximum(high, 0)))
    assert torch.isinf(free.model_.encoder.feature_range.high).all()


def test_a_network_wider_than_any_training_network_counts_as_the_widest_seen(fitted, tmp_path):
    cgs, clamped, free = fitted
    wide = [toy_cg(["conv3"], stages=4, cells_per_stage=1)]  # 8x the stem width; training saw at most 2x
    x = featurize(wide[0].to_pyg())
    top = clamped.model_.encoder.feature_range.high[WIDTH - len(OPS)]
    assert x[:, WIDTH].max() > top
    assert not np.array_equal(clamped.predict_score(wide), free.predict_score(wide))
    enc = clamped.model_.encoder
    capped = x.clone()
    capped[:, WIDTH] = capped[:, WIDTH].clamp(max=float(top))
    edges = torch.as_tensor(wide[0].to_pyg().edge_index)
    with torch.no_grad():
        assert torch.allclose(enc(x, edges), enc(capped, edges))
    loaded = GennapeEstimator.load(clamped.save(tmp_path / "ck"))
    np.testing.assert_allclose(loaded.predict_score(wide), clamped.predict_score(wide), rtol=1e-6)
