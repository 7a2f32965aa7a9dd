"""benchmarks/size_proxies.py: the closed-form SynFlow equals SynFlow computed
the way NASLib does (abs weights, all-ones input, sum of theta * dR/dtheta) on
small networks whose convs have no padding (so every element of a tensor
carries the same value, the closed form's one assumption)."""

import importlib.util
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from gennape.cg.torch_import import from_module

_spec = importlib.util.spec_from_file_location(
    "_bench_size_proxies", Path(__file__).resolve().parent.parent / "benchmarks" / "size_proxies.py")
size_proxies = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(size_proxies)


class SkipNet(nn.Module):
    """conv -> relu -> (1x1 conv + skip) -> concat with a 3x3 branch -> pool -> linear."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3)
        self.inner = nn.Conv2d(8, 8, 1)
        self.branch = nn.Conv2d(8, 4, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(12, 5)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        x = torch.cat([x + self.inner(x), self.branch(x)], dim=1)
        return self.fc(torch.flatten(self.pool(x), 1))


def naslib_synflow(module, shape) -> float:
    """SynFlow with every weight at the *expected* |w| of its default init, so
    that it is comparable with the closed form's expectation."""
    module = module.double()
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = math.prod(m.weight.shape[1:])
                m.weight.fill_(1.0 / (2.0 * math.sqrt(fan_in)))
                m.bias.zero_()
    out = module(torch.ones((1, *shape), dtype=torch.float64)).sum()
    weights = [m.weight for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    grads = torch.autograd.grad(out, weights)
    return float(sum((w * g).sum() for w, g in zip(weights, grads)).detach())


@pytest.mark.parametrize("net", [SkipNet(), nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.Conv2d(6, 6, 3),
                                                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 2))])
def test_closed_form_synflow_equals_autograd(net):
    shape = (3, 9, 9)
    closed = size_proxies.log_synflow(from_module(net, shape))
    assert closed == pytest.approx(math.log(naslib_synflow(net, shape)), rel=1e-9)


def test_a_wider_network_scores_higher():
    narrow = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    wide = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 2))
    assert size_proxies.log_synflow(from_module(wide, (3, 8, 8))) > size_proxies.log_synflow(from_module(narrow, (3, 8, 8)))
