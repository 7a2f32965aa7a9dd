import math

import numpy as np
import pytest

from gennape.pretrain.capacity import (MIN_REFIT_NETWORKS, choose_size_term, size_term_choice, NO_CAPACITY, apply_capacity, fit_capacity, head_target,
                               refit_size_term)
from gennape.pretrain.estimator import GennapeEstimator
from gennape.pretrain.heads_training import predict_heads
from gennape.pretrain.packed import GraphPack

from _synthetic import toy_cg, toy_dataset

TINY = dict(hidden_channels=16, embed_dim=16, num_layers=2, num_clusters=2, epochs=1, batch_size=32, head_epochs=40,
            head_hidden=16)


def test_fit_recovers_a_linear_relation_and_head_target_inverts_it():
    rng = np.random.default_rng(0)
    score, size = rng.normal(size=200), rng.normal(10, 2, size=200)
    y = 0.8 * score + 0.3 * size - 2.0
    coef = fit_capacity(score, size, y)
    np.testing.assert_allclose(coef, (0.8, 0.3, -2.0), atol=1e-9)
    np.testing.assert_allclose(apply_capacity(score, size, coef), y)
    np.testing.assert_allclose(head_target(y, size, coef), score, atol=1e-9)


def test_a_fit_where_the_heads_carry_nothing_is_refused():
    rng = np.random.default_rng(1)
    size = rng.normal(size=100)
    assert fit_capacity(rng.normal(size=100), size, size) == NO_CAPACITY


def test_size_shift_of_a_whole_family_changes_no_rank():
    rng = np.random.default_rng(2)
    score, size = rng.normal(size=50), rng.normal(size=50)
    coef = (0.9, 0.2, 0.1)
    small, large = apply_capacity(score, size, coef), apply_capacity(score, size + 5.0, coef)
    assert np.array_equal(np.argsort(small), np.argsort(large))


def test_pack_records_log_weight_count_per_graph():
    cgs = [toy_cg(["conv3"], stem=8), toy_cg(["conv3", "conv1"], stem=16)]
    pack = GraphPack.from_items(cgs)
    expected = [np.log1p(sum(math.prod(n.weight_shape) for n in c.nodes if n.weight_shape)) for c in cgs]
    np.testing.assert_allclose(pack.log_weights, expected)
    np.testing.assert_allclose(pack.subset([1, 0]).log_weights, expected[::-1])


@pytest.mark.parametrize("enabled", [True, False])
def test_estimator_fits_the_term_only_when_asked(enabled, tmp_path):
    cgs, y = toy_dataset(60, seed=0, stages=2, cells_per_stage=1)
    est = GennapeEstimator(**TINY, capacity_term=enabled).fit(cgs, y)
    if enabled:  # the least-squares fit of the heads' training-set score, size and target
        pack = GraphPack.from_items(cgs)
        heads = predict_heads(est.model_.heads, est.embed(pack), est.memberships(pack))
        expected = fit_capacity(heads, pack.log_weights, est.target_transform_.transform(y))
        assert expected != NO_CAPACITY
        np.testing.assert_allclose(est.capacity_, expected, atol=1e-3)
    else:
        assert est.capacity_ == NO_CAPACITY
    loaded = GennapeEstimator.load(est.save(tmp_path / "ck"))
    assert loaded.capacity_ == est.capacity_
    np.testing.assert_allclose(loaded.predict_score(cgs), est.predict_score(cgs), rtol=1e-6)


def test_refit_keeps_the_head_weight_and_finds_the_new_family_slope():
    rng = np.random.default_rng(3)
    score, size = rng.normal(size=30), rng.normal(12, 1, size=30)
    y = 0.8 * score + 0.5 * size + 1.0
    np.testing.assert_allclose(refit_size_term(score, size, y, (0.8, 0.3, -2.0)), (0.8, 0.5, 1.0), atol=1e-9)


@pytest.mark.parametrize("case", ["no term", "too few", "one size"])
def test_refit_keeps_the_term_when_no_slope_can_be_estimated(case):
    n = MIN_REFIT_NETWORKS - 1 if case == "too few" else 30
    rng = np.random.default_rng(4)
    score, y = rng.normal(size=n), rng.normal(size=n)
    size = np.full(n, 12.0) if case == "one size" else rng.normal(12, 1, size=n)
    coef = NO_CAPACITY if case == "no term" else (0.8, 0.3, -2.0)
    assert refit_size_term(score, size, y, coef) == coef


@pytest.mark.parametrize("refit", [True, False])
def test_finetune_refits_the_size_term_only_when_asked(refit):
    from gennape.transfer.finetune import FinetuneConfig, finetune_estimator

    cgs, y = toy_dataset(60, seed=0, stages=2, cells_per_stage=1)
    est = GennapeEstimator(**TINY).fit(cgs, y)
    new_cgs, new_y = toy_dataset(20, seed=1, stages=3, cells_per_stage=1)
    tuned = finetune_estimator(est, new_cgs, new_y - 0.1, FinetuneConfig(mode="encoder", epochs=2, refit_size_term=refit))
    assert tuned.metadata_["finetune"]["refit_size_term"] is refit
    assert tuned.metadata_["finetune"]["size_term"] == size_term_choice(refit)
    assert tuned.capacity_[0] == est.capacity_[0]
    if refit:  # least squares on the new labels (new scale), with the pretrained heads
        pack = GraphPack.from_items(new_cgs)
        heads = predict_heads(est.model_.heads, est.embed(pack), est.memberships(pack))
        expected = refit_size_term(heads, pack.log_weights, tuned.target_transform_.transform(new_y - 0.1),
                                   est.capacity_)
        np.testing.assert_allclose(tuned.capacity_, expected, atol=1e-6)
        assert tuned.capacity_ != est.capacity_
    else:
        assert tuned.capacity_ == est.capacity_


def test_auto_refits_a_slope_that_differs_and_keeps_one_that_holds():
    rng = np.random.default_rng(5)
    score, size = rng.normal(size=50), rng.normal(12, 1, size=50)
    coef = (0.8, 0.3, -2.0)
    noise = 0.1 * rng.normal(size=50)
    choice, errors = choose_size_term(score, size, 0.8 * score - 0.6 * size + noise, coef)  # the slope flips
    assert choice == "refit" and errors["refit_loo_mse"] < errors["keep_loo_mse"]
    choice, errors = choose_size_term(score, size, 0.8 * score + 0.3 * size + 4.0 + noise, coef)  # offset only
    assert choice == "keep" and errors["keep_loo_mse"] <= errors["refit_loo_mse"]
    # where refit_size_term would not refit, nothing is estimated
    assert choose_size_term(score[:5], size[:5], score[:5], coef) == ("keep", {})


def test_leave_one_out_errors_are_those_of_refitting_without_each_network():
    rng = np.random.default_rng(6)
    score, size, y = rng.normal(size=15), rng.normal(12, 1, size=15), rng.normal(size=15)
    coef = (0.8, 0.3, -2.0)
    _, errors = choose_size_term(score, size, y, coef)
    refit, keep = [], []
    for i in range(15):
        rest = np.arange(15) != i
        _, b, c = refit_size_term(score[rest], size[rest], y[rest], coef)
        refit.append(y[i] - (0.8 * score[i] + b * size[i] + c))
        offset = np.mean(y[rest] - 0.8 * score[rest] - 0.3 * size[rest])
        keep.append(y[i] - (0.8 * score[i] + 0.3 * size[i] + offset))
    assert errors["refit_loo_mse"] == pytest.approx(np.mean(np.square(refit)))
    assert errors["keep_loo_mse"] == pytest.approx(np.mean(np.square(keep)))


def test_size_term_choices():
    assert [size_term_choice(v) for v in (True, False, "auto", "keep")] == ["refit", "keep", "auto", "keep"]
    with pytest.raises(ValueError, match="valid: auto, refit, keep"):
        size_term_choice("sometimes")
