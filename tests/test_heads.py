import numpy as np
import pytest
import torch

from gennape.heads import FuzzyHeads, MLPHead, fcm_membership
from gennape.pretrain.heads_training import HeadsConfig, predict_heads, train_heads
from gennape.pretrain.losses import nt_xent, pairwise_rank_loss
from gennape.pretrain.metrics import rank_metrics
from gennape.pretrain.targets import TRANSFORMS, TargetTransform


def test_membership_closed_form():
    centers = torch.tensor([[0.0, 0.0], [4.0, 0.0]])
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    u = fcm_membership(x, centers, m=2.0)
    assert torch.allclose(u.sum(1), torch.ones(3))
    assert u[0, 0] > 0.999  # on a centre
    # d = (1, 3): u_0 = 1 / (1 + (1/3)^2) = 0.9
    assert torch.allclose(u[1], torch.tensor([0.9, 0.1]))
    assert torch.allclose(u[2], torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match="fuzzifier"):
        fcm_membership(x, centers, m=1.0)


def test_heads_aggregate_by_membership():
    torch.manual_seed(0)
    heads = FuzzyHeads(6, num_heads=3, hidden_channels=8)
    x = torch.randn(5, 6)
    per = heads.per_head(x)
    assert per.shape == (5, 3)
    onehot = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 1, 0]), 3).float()
    assert torch.allclose(heads(x, onehot), per[torch.arange(5), torch.tensor([0, 1, 2, 1, 0])])
    u = torch.softmax(torch.randn(5, 3), 1)
    assert torch.allclose(heads(x, u), (per * u).sum(1))
    with pytest.raises(ValueError, match="membership has shape"):
        heads(x, u[:, :2])
    assert MLPHead(6, num_layers=1)(x).shape == (5,)


def test_losses():
    y = torch.arange(6.0)
    assert pairwise_rank_loss(10 * y, y) < 1e-3 < pairwise_rank_loss(-y, y)
    assert pairwise_rank_loss(y, torch.zeros(6)) == 0  # only ties
    z = torch.randn(8, 4)
    assert nt_xent(z, z + 0.01 * torch.randn(8, 4)) < nt_xent(z, torch.randn(8, 4))


def test_heads_learn_per_cluster_targets():
    # Two clusters whose target depends on x with opposite signs: one head each.
    gen = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (200, 2)) + [5, 0], rng.normal(0, 1, (200, 2)) - [5, 0]])
    y = np.concatenate([x[:200, 1], -x[200:, 1]])
    u = fcm_membership(torch.tensor(x), torch.tensor([[5.0, 0.0], [-5.0, 0.0]]), 2.0).numpy()
    torch.manual_seed(0)
    heads = FuzzyHeads(2, num_heads=2, hidden_channels=16)
    info = train_heads(heads, x, u, y, HeadsConfig(epochs=60, batch_size=64, lr=1e-2), gen, val=(x, u, y))
    assert info["val_spearman"] > 0.9
    assert rank_metrics(predict_heads(heads, x, u), y)["spearman"] > 0.9


@pytest.mark.parametrize("kind", TRANSFORMS)
def test_target_transforms_are_monotone_and_invertible(kind):
    rng = np.random.default_rng(0)
    acc = np.concatenate([rng.uniform(0.9, 0.95, 500), [0.1, 0.5]])
    t = TargetTransform(kind).fit(acc)
    z = t.transform(acc)
    assert np.all(np.diff(z[np.argsort(acc)]) >= 0)
    np.testing.assert_allclose(t.inverse(z), acc, atol=1e-3)
    assert abs(np.median(z)) < 1.0
    back = TargetTransform.from_dict(t.to_dict())
    np.testing.assert_allclose(back.transform(acc), z)
    # Beyond the training range predictions keep their order (no clipping into ties).
    far = t.inverse(np.array([z.max() + 1, z.max() + 2]))
    assert far[1] > far[0]
    with pytest.raises(ValueError, match="valid choices"):
        TargetTransform("boxcox2")
