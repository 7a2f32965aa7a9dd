"""Multi-family pretraining (gennape.pretrain.multifamily): within-family targets, size prior, size-term fit."""

import numpy as np
import pytest

from gennape.cg.families import get_family
from gennape.pretrain.multifamily import (FamilySample, family_targets, fit_macs_size_term, pretrain_families, size_prior,
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


def test_macs_size_term_fit_recovers_within_family_slopes():
    rng = np.random.default_rng(0)
    n = 200
    family_of = np.repeat([0, 1], n // 2)
    head, logw, logm = rng.normal(size=(3, n))
    logw = logw + 10 * family_of  # family 1 is much bigger: a pooled fit would see that
    y = 0.5 * head + 0.2 * logw - 0.3 * logm + np.where(family_of == 1, -3.0, 1.0)
    np.testing.assert_allclose(fit_macs_size_term(head, logw, logm, y, family_of), [0.5, 0.2, -0.3], atol=1e-9)


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


def test_pretrain_families_fits_one_estimator_on_every_family(samples):
    est = pretrain_families(samples, epochs=1, head_epochs=2, batch_size=8, hidden_channels=8, embed_dim=8,
                            head_hidden=8, num_clusters=2)
    assert est.n_train_ == 22
    assert est.metadata_["training_data"]["families"] == {"nb201": 12, "nb301": 10}
    pack, _, _ = training_set(samples)
    assert np.isfinite(est.predict_score(pack)).all()


def test_residual_targets_are_what_the_size_prior_leaves_over(samples):
    s = samples[0]
    np.testing.assert_allclose(family_targets(s, "residual") + size_prior(s.params, s.macs),
                               within_family_quantiles(s.accuracy))
    with pytest.raises(ValueError, match="valid targets: quantile, residual"):
        family_targets(s, "rank")
