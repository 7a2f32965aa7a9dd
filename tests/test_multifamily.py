"""Multi-family pretraining (gennape.pretrain.multifamily): within-family targets, size prior, size-term fit."""

import numpy as np
import pytest

from gennape.cg.families import get_family
from gennape.pretrain.capacity import MIN_HEAD_WEIGHT
from gennape.pretrain.multifamily import (FamilySample, family_targets, fit_size_term_across_families,
                                          label_sets, out_of_family_head_scores, pretrain_families, size_prior,
                                          training_set, within_family_quantiles)


def test_within_family_quantiles_ignore_the_accuracy_scale():
    low = within_family_quantiles([0.30, 0.10, 0.20])
    high = within_family_quantiles([0.95, 0.91, 0.93])
    np.testing.assert_allclose(low, [5 / 6, 1 / 6, 3 / 6])
    np.testing.assert_array_equal(low, high)
    np.testing.assert_allclose(within_family_quantiles([0.5, 0.5, 0.7]), [1 / 3, 1 / 3, 5 / 6])  # ties share


def test_size_prior_is_the_rank_mean_of_params_and_macs():
    prior = size_prior([1, 2, 3, 4], [10, 40, 30, 20])
    np.testing.assert_allclose(prior, [0.25, 0.75, 0.75, 0.75])


def test_size_term_fit_recovers_within_family_slopes_and_never_goes_negative():
    rng = np.random.default_rng(0)
    n = 200
    family_of = np.repeat([0, 1], n // 2)
    head, size = rng.normal(size=(2, n))
    size = size + 10 * family_of  # family 1 is much bigger: a pooled fit would see that
    y = 0.5 * head + 0.2 * size + np.where(family_of == 1, -3.0, 1.0)
    a, b, c = fit_size_term_across_families(head, size, y, family_of)
    np.testing.assert_allclose([a, b], [0.5, 0.2], atol=1e-9)
    assert np.isclose(np.mean(a * head + b * size + c), np.mean(y))
    a, b, _ = fit_size_term_across_families(head, size, 0.5 * head - 0.2 * size, family_of)
    assert abs(b) < 1e-12 and np.isclose(a, 0.5, atol=0.05)  # a smaller network scoring better is not followed
    a, _, _ = fit_size_term_across_families(head, size, 0.2 * size, family_of)
    assert np.isclose(a, MIN_HEAD_WEIGHT)  # heads that explain nothing keep the floor fine-tuning needs


def test_head_shrink_scales_the_head_to_size_ratio_and_keeps_the_floor():
    rng = np.random.default_rng(1)
    family_of = np.repeat([0, 1], 100)
    head, size = rng.normal(size=(2, 200))
    y = 0.8 * head + 0.2 * size
    a1, b1, _ = fit_size_term_across_families(head, size, y, family_of)
    a, b, c = fit_size_term_across_families(head, size, y, family_of, head_shrink=0.5)
    assert np.isclose(a / b, 0.5 * a1 / b1) and a >= MIN_HEAD_WEIGHT
    assert np.isclose(np.mean(a * head + b * size + c), np.mean(y))
    a, b, _ = fit_size_term_across_families(head, size, 0.2 * head + 0.8 * size, family_of, head_shrink=0.1)
    assert np.isclose(a, MIN_HEAD_WEIGHT) and b > 0.8  # below the floor: the same ratio, scaled up
    with pytest.raises(ValueError, match="head_shrink must be in"):
        fit_size_term_across_families(head, size, y, family_of, head_shrink=0.0)


def _sample(name: str, n: int, seed: int) -> FamilySample:
    fam = get_family(name)
    specs = fam.random_specs(n, seed)
    cgs = [fam.to_cg(s) for s in specs]
    acc = np.random.default_rng(seed).uniform(0.2, 0.9, n)
    return FamilySample(name, [s.to_arch() for s in specs], cgs, acc,
                        np.array([c.params for c in cgs], float), np.array([c.macs for c in cgs], float))


@pytest.fixture(scope="module")
def samples():
    return [_sample("nb201", 12, 0), _sample("nb301", 10, 1)]


def test_training_set_concatenates_families_with_their_own_quantiles(samples):
    pack, targets, family_of = training_set(samples)
    assert len(pack) == len(targets) == len(family_of) == 22
    np.testing.assert_array_equal(family_of, [0] * 12 + [1] * 10)
    np.testing.assert_allclose(targets[:12], within_family_quantiles(samples[0].accuracy))
    np.testing.assert_allclose(targets[12:], within_family_quantiles(samples[1].accuracy))


TINY = dict(epochs=1, head_epochs=2, batch_size=8, hidden_channels=8, embed_dim=8, head_hidden=8, num_clusters=2)


def test_pretrain_families_fits_one_estimator_on_every_family(samples):
    est = pretrain_families(samples, size_measure="weights_macs", **TINY)
    assert est.n_train_ == 22
    assert est.metadata_["training_data"]["families"] == {"nb201": 12, "nb301": 10}
    pack, targets, family_of = training_set(samples)
    assert np.isfinite(est.predict_score(pack)).all()
    a, b, _ = est.capacity_
    assert a >= 0 and b >= 0
    heads = out_of_family_head_scores(est, samples)
    expected = fit_size_term_across_families(heads, est.size_of(pack), est.target_transform_.transform(targets),
                                             family_of)
    np.testing.assert_allclose(est.capacity_, expected)
    with pytest.raises(ValueError, match="valid: out_of_family, in_sample, none"):
        pretrain_families(samples, size_term_fit="pooled", **TINY)


def test_residual_targets_are_what_the_size_prior_leaves_over(samples):
    s = samples[0]
    np.testing.assert_allclose(family_targets(s, "residual") + size_prior(s.params, s.macs),
                               within_family_quantiles(s.accuracy))
    with pytest.raises(ValueError, match="valid targets: quantile, residual"):
        family_targets(s, "rank")


def test_label_sets_are_every_combination_of_a_familys_label_options():
    assert label_sets("nb101") == [{}]
    assert label_sets("nb201") == [{"dataset": "cifar10"}, {"dataset": "cifar100"}, {"dataset": "imagenet16_120"}]
    assert label_sets("tnb101_micro") == [{"task": "class_object"}, {"task": "class_scene"}]


def test_members_make_a_seed_ensemble(samples):
    from gennape.pretrain.ensemble import GennapeEnsemble

    ens = pretrain_families(samples, members=2, **TINY)
    assert isinstance(ens, GennapeEnsemble) and [m.seed for m in ens.members_] == [0, 1]
    assert ens.metadata_["training_data"]["families"] == {"nb201": 12, "nb301": 10}
