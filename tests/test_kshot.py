"""The k-shot correction chosen by leave-one-out (pretrain/kshot.py, pretrain/kshot_estimator.py), on synthetic data."""

import numpy as np
import pytest

from gennape.cg.errors import GennapeError
from gennape.pretrain.estimator import GennapeEstimator
from gennape.pretrain.kshot import KShotFeatures, KShotSelector, _loo_kernel_ridge, _Standardiser, candidates
from gennape.pretrain.kshot_estimator import KShotEstimator, frozen_features
from gennape.pretrain.metrics import spearman
from gennape.transfer.finetune import FinetuneConfig, finetune_estimator

from _synthetic import toy_dataset

TINY = dict(hidden_channels=16, embed_dim=16, num_layers=2, num_clusters=2, epochs=1, batch_size=32, head_epochs=40,
            head_hidden=16)


def synthetic_features(n: int, seed: int = 0, members: int = 3, dim: int = 8) -> KShotFeatures:
    rng = np.random.default_rng(seed)
    member_scores = rng.normal(size=(members, n))
    return KShotFeatures(member_scores.mean(axis=0), member_scores, rng.normal(size=(n, members * dim)),
                         rng.normal(12, 1, size=n), rng.normal(18, 1, size=n))


def test_leave_one_out_residuals_are_those_of_refitting_without_each_network():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 3))
    gram = 5.0 * (1 + x @ x.T) + np.exp(-((x[:, None] - x[None]) ** 2).sum(-1))
    y = rng.normal(size=12)
    loo, dual = _loo_kernel_ridge(gram, y, 0.3)
    np.testing.assert_allclose(gram @ dual, y - 0.3 * dual)  # the dual solves (K + noise I) a = y
    for i in range(12):
        keep = np.delete(np.arange(12), i)
        a = np.linalg.solve(gram[np.ix_(keep, keep)] + 0.3 * np.eye(11), y[keep])
        assert loo[i] == pytest.approx(y[i] - gram[i, keep] @ a, rel=1e-8, abs=1e-10)


def test_labels_the_zero_shot_score_explains_keep_its_ranking():
    feats = synthetic_features(300, seed=1)
    y = np.tanh(feats.score) + 0.01 * np.random.default_rng(2).normal(size=300)  # monotone in the score
    sel = KShotSelector().fit(feats.subset(np.arange(50)), y[:50])
    rest = feats.subset(np.arange(50, 300))
    assert spearman(sel.predict(rest), rest.score) > 0.97
    assert sel.loo_mse_[0] <= sel.zero_shot_loo_mse_  # the best candidate is never worse than zero-shot by LOO


def test_labels_the_embedding_explains_are_learned_beyond_zero_shot():
    feats = synthetic_features(300, seed=3)
    y = feats.embedding[:, 0] + 0.5 * feats.embedding[:, 5] + 0.1 * feats.score  # the score barely matters
    sel = KShotSelector().fit(feats.subset(np.arange(60)), y[:60])
    rest = feats.subset(np.arange(60, 300))
    assert spearman(sel.predict(rest), y[60:]) > spearman(rest.score, y[60:]) + 0.5
    assert all(c.kernel is not None for c in sel.chosen_)
    assert len(sel.chosen_) == len(sel.loo_mse_) == len(sel.dual_) == 10 and sel.loo_mse_ == sorted(sel.loo_mse_)



def test_cross_validated_predictions_never_see_their_own_fold():
    from gennape.pretrain.kshot import cross_val_predictions

    feats = synthetic_features(40, seed=5)
    y = feats.embedding[:, 0] + 0.1 * feats.score
    pred = cross_val_predictions(feats, y, folds=4, seed=1)
    assert pred.shape == (40,) and np.isfinite(pred).all()
    assert spearman(pred, y) > 0.5  # the embedding column is learned from the other folds
    fold_of = np.random.default_rng(1).permutation(40) % 4
    changed = y.copy()
    changed[fold_of == 0] += 100.0  # a fold's own labels do not move its predictions
    again = cross_val_predictions(feats, changed, folds=4, seed=1)
    np.testing.assert_allclose(again[fold_of == 0], pred[fold_of == 0])
    assert np.isnan(cross_val_predictions(feats.subset(np.arange(6)), y[:6], folds=3)).all()  # 4 left per fold < 5

def test_size_columns_do_not_extrapolate_beyond_the_labelled_networks():
    train = synthetic_features(20, seed=4)
    std = _Standardiser(train)
    far = train.subset([0, 1])._replace(log_weights=np.array([0.0, 100.0]), log_macs=np.array([-5.0, 50.0]))
    edge = train.subset([0, 1])._replace(log_weights=np.array([train.log_weights.min(), train.log_weights.max()]),
                                         log_macs=np.array([train.log_macs.min(), train.log_macs.max()]))
    np.testing.assert_array_equal(std.base(far, "zero-shot+size+macs"), std.base(edge, "zero-shot+size+macs"))
    # the zero-shot score itself is not clipped: it ranks beyond the labelled range too
    wide = train.subset([0])._replace(score=np.array([train.score.max() + 10]))
    assert std.base(wide, "zero-shot")[0, 0] > std.base(train, "zero-shot").max()


def test_a_network_scores_the_same_alone_and_among_others():
    feats = synthetic_features(200, seed=5)
    y = feats.embedding[:, 1] + feats.score
    sel = KShotSelector().fit(feats.subset(np.arange(40)), y[:40])
    rest = np.arange(40, 200)
    together = sel.predict(feats.subset(rest))
    assert sel.predict(feats.subset([rest[7]]))[0] == together[7]
    np.testing.assert_array_equal(sel.predict(feats.subset(rest[::-1])), together[::-1])


def test_the_grid_and_bad_input():
    assert all("members" not in (c.kernel or "") for c in candidates(1))  # one estimator: no member spread
    assert any("members" in (c.kernel or "") for c in candidates(9))
    assert candidates(9)[0].base == "zero-shot" and candidates(9)[0].kernel is None
    feats = synthetic_features(10)
    with pytest.raises(ValueError, match="at least 5"):
        KShotSelector().fit(feats.subset(np.arange(4)), np.arange(4.0))
    with pytest.raises(ValueError, match="labels"):
        KShotSelector().fit(feats, np.arange(9.0))
    with pytest.raises(ValueError, match="not fitted"):
        KShotSelector().predict(feats)


@pytest.fixture(scope="module")
def tiny():
    cgs, y = toy_dataset(60, seed=0, stages=2, cells_per_stage=1)
    new_cgs, new_y = toy_dataset(40, seed=1, stages=3, cells_per_stage=1)
    return GennapeEstimator(**TINY).fit(cgs, y), new_cgs, np.asarray(new_y) - 0.1


def test_select_mode_fits_a_checkpoint_that_predicts_the_same_after_loading(tiny, tmp_path):
    from gennape.transfer.model import load_estimator

    est, cgs, y = tiny
    tuned = finetune_estimator(est, cgs[:30], y[:30], FinetuneConfig(mode="select"))
    assert isinstance(tuned, KShotEstimator) and tuned.metadata_["finetune"]["mode"] == "select"
    twice = finetune_estimator(est, cgs[:30], y[:30], FinetuneConfig(mode="select"))
    np.testing.assert_array_equal(twice.predict_score(cgs[30:]), tuned.predict_score(cgs[30:]))  # deterministic
    assert tuned.label() == "your labels" and len(tuned.metadata_["finetune"]["chosen"]) == 10
    assert len(tuned.model_.reference_embeddings) == len(est.model_.reference_embeddings) + 30  # no longer unseen
    pred = tuned.predict(cgs[30:])
    assert y[:30].min() - 0.05 <= np.median(pred) <= y[:30].max() + 0.05  # on the labels' scale
    details = tuned.predict_details(cgs[30:])
    np.testing.assert_array_equal(details["accuracy"], pred)
    assert details["memberships"].shape == (10, 2) and np.all(details["accuracy_std"] >= 0)
    tuned.save(tmp_path / "ck")
    again = load_estimator(tmp_path / "ck")
    assert isinstance(again, KShotEstimator)
    np.testing.assert_array_equal(again.predict_score(cgs[30:]), tuned.predict_score(cgs[30:]))
    np.testing.assert_array_equal(again.ood_score(cgs[30:]), tuned.ood_score(cgs[30:]))
    # fine-tuning a select checkpoint again starts from its pretrained estimator
    retuned = finetune_estimator(again, cgs[:20], y[:20], FinetuneConfig(mode="heads", epochs=2))
    assert isinstance(retuned, GennapeEstimator)


def test_select_features_read_macs_from_cgs_or_packs(tiny):
    from gennape.pretrain import packed

    est, cgs, _ = tiny
    feats = frozen_features(est, cgs[:5])
    np.testing.assert_allclose(feats.log_macs, [np.log1p(c.macs) for c in cgs[:5]])
    np.testing.assert_array_equal(feats.score, est.predict_score(cgs[:5]))
    from_pack = frozen_features(est, packed.GraphPack.from_items(cgs[:5]))
    np.testing.assert_array_equal(from_pack.log_macs, feats.log_macs)
    np.testing.assert_array_equal(from_pack.embedding, feats.embedding)


def test_select_rejects_too_few_or_equal_labels(tiny):
    est, cgs, y = tiny
    with pytest.raises(GennapeError, match="at least 5"):
        KShotEstimator(est).fit(cgs[:4], y[:4])
    with pytest.raises(GennapeError, match="differ"):
        KShotEstimator(est).fit(cgs[:8], [0.5] * 8)
    with pytest.raises(ValueError, match="valid modes"):
        FinetuneConfig(mode="kernel")
