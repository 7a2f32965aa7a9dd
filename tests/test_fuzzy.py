import numpy as np
import pytest

from gennape.pretrain.fuzzy import fit_fuzzy_clusters, initial_membership, predict_membership


def _blobs(seed=0):
    rng = np.random.default_rng(seed)
    means = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    return np.concatenate([m + rng.normal(0, 0.5, (40, 2)) for m in means]), means


def test_cmeans_finds_the_blobs():
    x, means = _blobs()
    fc = fit_fuzzy_clusters(x, 3, m=2.0, seed=0)
    assert fc.centers.shape == (3, 2) and fc.membership.shape == (120, 3)
    np.testing.assert_allclose(fc.membership.sum(1), 1.0, atol=1e-9)
    for mean in means:
        assert np.min(np.linalg.norm(fc.centers - mean, axis=1)) < 0.5
    assert fc.fpc > 0.8  # well-separated blobs: nearly crisp


def test_seeding_leaves_the_global_numpy_state_alone_and_is_reproducible():
    x, _ = _blobs()
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a = fit_fuzzy_clusters(x, 3, seed=7)
    assert np.array_equal(before, np.random.get_state()[1])
    b = fit_fuzzy_clusters(x, 3, seed=7)
    np.testing.assert_array_equal(a.centers, b.centers)
    assert np.allclose(initial_membership(5, 3, 1).sum(0), 1.0)


def test_membership_of_new_points_matches_skfuzzy():
    from skfuzzy.cluster import cmeans_predict

    x, _ = _blobs()
    fc = fit_fuzzy_clusters(x, 3, m=2.0, seed=0)
    new = np.array([[1.0, 1.0], [9.0, 1.0], [5.0, 5.0]])
    ours = predict_membership(new, fc.centers, 2.0)
    init = np.full((3, len(new)), 1 / 3)
    theirs = cmeans_predict(new.T, fc.centers, 2.0, error=1e-12, maxiter=2, init=init)[0].T
    np.testing.assert_allclose(ours, theirs, atol=1e-8)
    assert ours[0].argmax() != ours[1].argmax()


def test_fuzzier_m_spreads_membership():
    x, _ = _blobs()
    crisp = fit_fuzzy_clusters(x, 3, m=1.5, seed=0)
    fuzzy = fit_fuzzy_clusters(x, 3, m=3.0, seed=0)
    assert crisp.fpc > fuzzy.fpc


def test_one_cluster_and_bad_arguments():
    x, _ = _blobs()
    one = fit_fuzzy_clusters(x, 1)
    np.testing.assert_allclose(one.centers[0], x.mean(0))
    assert np.all(one.membership == 1)
    with pytest.raises(ValueError, match="fuzzifier"):
        fit_fuzzy_clusters(x, 2, m=1.0)
    with pytest.raises(ValueError, match="at least k"):
        fit_fuzzy_clusters(x[:2], 3)
