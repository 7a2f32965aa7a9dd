"""gennape.pretrain.metrics against brute-force O(n^2) references."""

import itertools
import math

import numpy as np
import pytest

from gennape.pretrain.metrics import all_metrics, kendall, mae, ndcg_at_k, precision_at_top, rank_metrics, spearman


def _brute_kendall_b(x, y):
    conc = disc = tx = ty = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
        if dx == 0 and dy == 0:
            continue
        if dx == 0:
            tx += 1
        elif dy == 0:
            ty += 1
        elif dx == dy:
            conc += 1
        else:
            disc += 1
    denom = math.sqrt((conc + disc + tx) * (conc + disc + ty))
    return (conc - disc) / denom


def _brute_ranks(x):
    return np.array([sum(v < xi for v in x) + (sum(v == xi for v in x) + 1) / 2 for xi in x])


def _brute_spearman(x, y):
    return float(np.corrcoef(_brute_ranks(x), _brute_ranks(y))[0, 1])


def _samples():
    rng = np.random.default_rng(0)
    for n in (2, 3, 7, 40, 257):
        yield rng.normal(size=n), rng.normal(size=n)
        a = rng.integers(0, 4, n).astype(float)  # heavy ties in both
        yield a, a + rng.integers(0, 3, n)
        b = rng.normal(size=n)
        yield b, -b  # perfect anti-correlation


@pytest.mark.parametrize("x,y", list(_samples()))
def test_kendall_and_spearman_match_brute_force(x, y):
    assert kendall(x, y) == pytest.approx(_brute_kendall_b(x, y), abs=1e-12)
    assert spearman(x, y) == pytest.approx(_brute_spearman(x, y), abs=1e-12)
    assert rank_metrics(x, y) == pytest.approx({"spearman": spearman(x, y), "kendall": kendall(x, y), "n": len(x)})


def test_constant_input_gives_nan():
    assert math.isnan(kendall([1, 1, 1], [1, 2, 3]))
    assert math.isnan(spearman([1, 2, 3], [5, 5, 5]))
    assert math.isnan(all_metrics([1, 1, 1], [1, 2, 3])["spearman"])


def test_rank_metrics_says_nan_for_short_constant_or_nan_inputs():
    for pred, true in (([0.5], [0.5]), ([1, 1, 1], [1, 2, 3]), ([1, float("nan"), 3], [1, 2, 3])):
        m = rank_metrics(pred, true)
        assert math.isnan(m["spearman"]) and math.isnan(m["kendall"]) and m["n"] == len(pred)
    with pytest.raises(ValueError, match="length"):
        rank_metrics([1, 2], [1, 2, 3])


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="length"):
        spearman([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="at least 2"):
        kendall([1], [1])
    with pytest.raises(ValueError, match="NaN"):
        mae([1, float("nan")], [1, 2])


def test_ndcg_perfect_reversed_and_scale_free():
    true = np.linspace(0.5, 0.95, 50)
    assert ndcg_at_k(true, true) == pytest.approx(1.0)
    assert ndcg_at_k(-true, true) < 0.2
    # Gains are percentiles: percent and fraction labels agree.
    pred = np.random.default_rng(3).normal(size=50)
    assert ndcg_at_k(pred, true) == pytest.approx(ndcg_at_k(pred, true * 100))


def test_ndcg_matches_definition():
    pred = np.array([0.3, 0.9, 0.1, 0.5])
    true = np.array([10.0, 40.0, 20.0, 30.0])  # gains 0, 1, 1/3, 2/3
    k = 3
    disc = 1 / np.log2(np.arange(2, k + 2))
    dcg = np.array([1, 2 / 3, 0]) @ disc  # predicted order: idx 1, 3, 0
    idcg = np.array([1, 2 / 3, 1 / 3]) @ disc
    assert ndcg_at_k(pred, true, k) == pytest.approx(dcg / idcg)


def test_precision_at_top():
    true = np.arange(100.0)
    assert precision_at_top(true, true) == 1.0
    assert precision_at_top(-true, true) == 0.0
    pred = true.copy()
    pred[95:] = -1  # half of the true top 10 pushed out
    assert precision_at_top(pred, true) == pytest.approx(0.5)


def test_all_metrics_keys():
    m = all_metrics([1, 2, 3, 4], [1, 2, 4, 3])
    assert set(m) == {"n", "spearman", "kendall", "ndcg10", "precision_top10", "mae"}
    assert m["n"] == 4 and m["mae"] == pytest.approx(0.5)
