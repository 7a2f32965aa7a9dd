import numpy as np
import pytest
import torch

from gennape.pretrain.estimator import GennapeEstimator, NotFittedError
from gennape.pretrain.metrics import rank_metrics

from _synthetic import toy_cg, toy_dataset

TINY = dict(hidden_channels=16, embed_dim=16, num_layers=2, num_clusters=2, epochs=3, batch_size=32,
            head_epochs=40, head_hidden=16, readout="mean+sum")


@pytest.fixture(scope="module")
def data():
    cgs, y = toy_dataset(160, seed=0, stages=2, cells_per_stage=1)
    return cgs[:120], y[:120], cgs[120:], y[120:]


@pytest.fixture(scope="module")
def fitted(data):
    cgs, y, _, _ = data
    return GennapeEstimator(**TINY).fit(cgs, y)


def test_unfitted_estimator_says_so():
    est = GennapeEstimator()
    for call in (lambda: est.predict([toy_cg(["conv3"])]), lambda: est.save("/nonexistent")):
        with pytest.raises(NotFittedError, match="not fitted yet; call fit"):
            call()


def test_init_only_stores_arguments_and_params_round_trip():
    est = GennapeEstimator(num_clusters=3, conv="gin")
    assert not [k for k in vars(est) if k.endswith("_")]
    assert est.get_params()["num_clusters"] == 3
    assert est.set_params(num_clusters=5).num_clusters == 5
    assert "num_clusters=5" in repr(est)
    with pytest.raises(ValueError, match="unknown parameter"):
        est.set_params(bogus=1)


def test_fit_returns_self_and_predicts_above_chance(data, fitted):
    _, _, test_cgs, test_y = data
    pred = fitted.predict(test_cgs)
    assert isinstance(pred, np.ndarray) and pred.shape == (len(test_cgs),)
    assert rank_metrics(pred, test_y)["spearman"] > 0.5
    # predict is monotone in predict_score and on the accuracy scale
    score = fitted.predict_score(test_cgs)
    assert np.all(np.diff(pred[np.argsort(score)]) >= -1e-12)
    assert 0.7 < np.median(pred) < 1.0


def test_memberships_embeddings_and_ood(data, fitted):
    _, _, test_cgs, _ = data
    u = fitted.memberships(test_cgs)
    assert u.shape == (len(test_cgs), 2)
    np.testing.assert_allclose(u.sum(1), 1.0, atol=1e-6)
    assert fitted.embed(test_cgs).shape == (len(test_cgs), TINY["embed_dim"])
    details = fitted.predict_details(test_cgs)
    np.testing.assert_allclose(details["accuracy"], fitted.predict(test_cgs))
    assert details["ood"].dtype == bool
    # A much deeper, wider network than anything in training lies farther away.
    far = toy_cg(["pool"] * 6, stem=128, stages=4, cells_per_stage=4)
    assert fitted.ood_score([far])[0] > np.median(fitted.ood_score(test_cgs))


def test_fit_is_reproducible_with_a_seed(data, fitted):
    cgs, y, test_cgs, _ = data
    again = GennapeEstimator(**TINY).fit(cgs, y)
    np.testing.assert_array_equal(fitted.predict(test_cgs), again.predict(test_cgs))


def test_fit_heads_moves_predictions_to_the_new_scale(data, fitted):
    import copy

    _, _, test_cgs, test_y = data
    est = copy.deepcopy(fitted)
    new_y = 0.3 + (test_y - test_y.min())  # a new family with another accuracy scale
    est.fit_heads(test_cgs[:30], new_y[:30], epochs=30)
    assert abs(np.median(est.predict(test_cgs[30:])) - np.median(new_y[30:])) < 0.05
    assert torch.equal(est.model_.cluster_centers, fitted.model_.cluster_centers)


def test_mismatched_targets_are_refused(data):
    cgs, y, _, _ = data
    with pytest.raises(ValueError, match="targets"):
        GennapeEstimator(**TINY).fit(cgs, y[:-1])


def test_predicted_accuracy_is_clipped_but_ranks_use_the_score(fitted, data, monkeypatch):
    """The inverse target transform extrapolates linearly; stretched here so that
    most predictions fall outside [0, 1], as for networks far from the training data."""
    from gennape.transfer.predict import assign_ranks, predict_cgs

    _, _, cgs, _ = data
    score = fitted.predict_score(cgs)
    middle = float(np.median(score))
    monkeypatch.setattr(fitted.target_transform_, "inverse", lambda s: 0.5 + 1000.0 * (np.asarray(s) - middle))
    details = fitted.predict_details(cgs)
    acc = fitted.predict(cgs)
    np.testing.assert_array_equal(details["accuracy"], acc)
    np.testing.assert_array_equal(details["score"], score)
    assert acc.min() == 0.0 and acc.max() == 1.0  # clipped at both ends
    assert ((acc >= 0.0) & (acc <= 1.0)).all()

    preds = predict_cgs(fitted, cgs, [f"n{i}" for i in range(len(cgs))])
    assign_ranks(preds)
    assert [p.predicted_accuracy for p in preds] == acc.tolist()
    # Rank = 1 + how many score strictly higher: only equal scores (identical graphs) tie.
    assert [p.rank for p in preds] == [1 + int((score > s).sum()) for s in score]
    assert len({p.rank for p in preds}) == len(set(score.tolist())) > len(set(acc.tolist()))
    assert "score" not in preds[0].to_dict()  # outputs are unchanged
