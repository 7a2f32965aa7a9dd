"""Canonical rules on networks as people write them in torch: each test
builds a pattern and its plain form, exports both as gennape exports
(:func:`gennape.cg.torch_import.export_module`: legacy exporter, opset 17) and
checks the CGs are equal (or, where no plain torch form exists, what the
pattern becomes)."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from gennape.cg.torch_import import from_module  # noqa: E402

IMAGE = (8, 6, 6)


class Lambda(nn.Module):
    """``forward`` given as a function of (module, x); layers as keyword args."""

    def __init__(self, fn, **layers):
        super().__init__()
        self.fn = fn
        for name, layer in layers.items():
            setattr(self, name, layer)

    def forward(self, x):
        return self.fn(self, x)


def cg(fn, shape=IMAGE, **layers):
    torch.manual_seed(0)
    return from_module(Lambda(fn, **layers), shape)


def ops(g):
    counts = g.op_counts()
    counts.pop("input"), counts.pop("output")
    return counts


def conv(c_in=8, c_out=8, k=3, stride=1):
    return nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2)


# ------------------------------------------------------- constants and dead code
@pytest.mark.parametrize("zero", [
    lambda m, x: m.b(x).mul(0.0),            # NB-201 / DARTS Zero
    lambda m, x: F.relu(m.b(x)) * 0,         # written as * 0
    lambda m, x: 0.0 * m.b(x),               # zero first
])
def test_product_with_zero_removes_the_branch(zero):
    pattern = cg(lambda m, x: m.a(x) + zero(m, x), a=conv(), b=conv())
    plain = cg(lambda m, x: m.a(x), a=conv(), b=conv())
    assert pattern == plain and pattern.params == 8 * 8 * 9 + 8


def test_darts_strided_zero():
    def zero(x):
        return x[:, :, ::2, ::2].mul(0.0)

    pattern = cg(lambda m, x: m.a(x) + zero(x), a=conv(stride=2))
    plain = cg(lambda m, x: m.a(x), a=conv(stride=2))
    assert pattern == plain


def test_a_layer_fed_only_by_zeros_is_a_constant_branch():
    """conv(x * 0) is a constant (the conv's bias): its layer leaves the CG and
    so do its parameters."""
    pattern = cg(lambda m, x: m.a(x) + m.b(F.relu(x).mul(0.0)), a=conv(), b=conv())
    plain = cg(lambda m, x: m.a(x), a=conv())
    assert pattern == plain


def test_a_constant_branch_between_batch_norms_keeps_no_norm_apart():
    """NB-201's last cell when its live output is one conv edge plus dead edges:
    conv-BN, a constant branch added in, then the network's closing BN. Both BNs
    merge into the conv, as with no constant branch at all."""
    pattern = cg(lambda m, x: m.n2(m.n1(m.a(x)) + m.b(torch.zeros(1, *IMAGE))),
                 a=conv(), b=conv(), n1=nn.BatchNorm2d(8), n2=nn.BatchNorm2d(8))
    plain = cg(lambda m, x: m.n2(m.n1(m.a(x))), a=conv(), n1=nn.BatchNorm2d(8), n2=nn.BatchNorm2d(8))
    assert pattern == plain and ops(plain) == {"conv": 1}


def test_folded_constant_branch_is_not_a_parameter():
    """A conv of a constant zero tensor (folded by the importer) added into a
    live sum: neither a node nor parameters."""
    def fn(m, x):
        return m.a(x) + m.bn(m.b(torch.zeros(1, 8, 6, 6)))

    pattern = cg(fn, a=conv(), b=conv(), bn=nn.BatchNorm2d(8))
    plain = cg(lambda m, x: m.a(x), a=conv())
    assert pattern == plain


def test_dead_code_through_a_shape_read_vanishes():
    """A layer whose output only a Shape reads is dead code."""
    pattern = cg(lambda m, x: m.fc(m.a(x).reshape(m.b(x).shape[0], -1)), a=conv(), b=conv(),
                 fc=nn.Linear(288, 10))
    plain = cg(lambda m, x: m.fc(m.a(x).reshape(1, -1)), a=conv(), fc=nn.Linear(288, 10))
    assert pattern == plain


# ------------------------------------------------------------- reductions
@pytest.mark.parametrize("squeeze", [
    lambda x: x.mean(3, keepdim=True).mean(2, keepdim=True),   # OFA's SE squeeze
    lambda x: x.mean(2, keepdim=True).mean(3, keepdim=True),
    lambda x: x.mean(3).mean(2).view(1, -1, 1, 1),
    lambda x: x.mean(-1).mean(-1, keepdim=True).unsqueeze(-1),
    lambda x: x.mean((2, 3), keepdim=True),
])
def test_chained_means_over_h_and_w_are_a_global_pool(squeeze):
    def se(m, x):
        h = m.a(x)
        return h * torch.sigmoid(m.fc2(F.relu(m.fc1(squeeze(h)))))

    def plain_se(m, x):
        h = m.a(x)
        return h * torch.sigmoid(m.fc2(F.relu(m.fc1(F.adaptive_avg_pool2d(h, 1)))))

    layers = dict(a=conv(), fc1=conv(8, 4, 1), fc2=conv(4, 8, 1))
    pattern, plain = cg(se, **layers), cg(plain_se, **layers)
    assert pattern == plain
    assert ops(plain)["global_avg_pool"] == 1


def test_chained_max_is_a_global_max_pool():
    pattern = cg(lambda m, x: m.a(x).amax(3, keepdim=True).amax(2, keepdim=True), a=conv())
    plain = cg(lambda m, x: F.adaptive_max_pool2d(m.a(x), 1), a=conv())
    assert pattern == plain


def test_reductions_that_are_not_pools_are_reduce():
    """CBAM's spatial attention: mean and max over channels."""
    g = cg(lambda m, x: m.s(torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)) * x,
           s=nn.Conv2d(2, 1, 7, padding=3))
    assert ops(g) == {"reduce": 2, "concat": 1, "conv": 1, "mul": 1}
    reduce = next(n for n in g.nodes if n.op == "reduce")
    assert reduce.in_shape == IMAGE and reduce.out_shape == (1, 6, 6)


def test_split_attention_sum_is_an_add():
    """timm's SplitAttn / SelectiveKernel: radix branches stacked, then summed."""
    def split_attn(m, x):
        h = m.a(x)                                    # (1, 2 * 8, H, W)
        h = h.reshape(1, 2, 8, 6, 6)
        gap = h.sum(1).mean((2, 3), keepdim=True)     # sum of the radix branches, then squeeze
        attn = torch.softmax(m.fc(gap).reshape(1, 2, 8, 1, 1), dim=1)
        return (h * attn).sum(1)

    g = cg(split_attn, a=conv(8, 16), fc=conv(8, 16, 1))
    counts = ops(g)
    assert counts["add"] == 2 and "reduce" not in counts and "other" not in counts
    assert counts["global_avg_pool"] == 1 and counts["softmax"] == 1


# ------------------------------------------------------- written-out layers
def _layer_norm(x, w, b, dim, eps=1e-6):
    u = x.mean(dim, keepdim=True)
    s = (x - u).pow(2).mean(dim, keepdim=True)
    return w * ((x - u) / torch.sqrt(s + eps)) + b


def test_layer_norm_written_out_is_layer_norm():
    class Written(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(32, 32)
            self.w, self.b = nn.Parameter(torch.ones(32)), nn.Parameter(torch.zeros(32))

        def forward(self, x):
            return self.fc(_layer_norm(x, self.w, self.b, -1))

    plain = cg(lambda m, x: m.fc(m.ln(x)), shape=(16, 32), ln=nn.LayerNorm(32, eps=1e-6), fc=nn.Linear(32, 32))
    assert from_module(Written(), (16, 32)) == plain
    assert ops(plain) == {"layer_norm": 1, "linear": 1}


def test_convnext_channels_first_layer_norm():
    class LayerNorm2d(nn.Module):
        """ConvNeXt's channels-first LayerNorm as the ConvNeXt repository writes it."""

        def __init__(self, c):
            super().__init__()
            self.weight, self.bias = nn.Parameter(torch.ones(c)), nn.Parameter(torch.zeros(c))

        def forward(self, x):
            return _layer_norm(x, self.weight[:, None, None], self.bias[:, None, None], 1)

    g = cg(lambda m, x: m.ln(m.a(x)), a=conv(), ln=LayerNorm2d(8))
    assert ops(g) == {"conv": 1, "layer_norm": 1}
    norm = next(n for n in g.nodes if n.op == "layer_norm")
    assert norm.params == 16 and norm.in_shape == norm.out_shape == IMAGE


@pytest.mark.parametrize("variance", ["pow", "var"])
def test_layer_norm_with_torch_var(variance):
    """``x.var(unbiased=False)`` exports as a self-product of the centred tensor."""
    def ln(m, x):
        u = x.mean(-1, keepdim=True)
        var = (x - u).pow(2).mean(-1, keepdim=True) if variance == "pow" else x.var(-1, unbiased=False, keepdim=True)
        return m.fc((x - u) / torch.sqrt(var + 1e-5))

    plain = cg(lambda m, x: m.fc(F.layer_norm(x, (32,))), shape=(16, 32), fc=nn.Linear(32, 32))
    assert cg(ln, shape=(16, 32), fc=nn.Linear(32, 32)) == plain


def test_evonorm_s0_maps_to_the_vocabulary():
    """timm's EvoNorm2dS0 as timm writes it: ``x * sigmoid(v * x) / group_std(x)``,
    then scale and shift."""
    def group_std(x, groups, eps=1e-5):
        b, c, h, w = x.shape
        x = x.reshape(b, groups, c // groups, h, w)
        std = x.float().var(dim=(2, 3, 4), unbiased=False, keepdim=True).add(eps).sqrt().to(x.dtype)
        return std.expand(x.shape).reshape(b, c, h, w)

    class EvoNorm2dS0(nn.Module):
        def __init__(self, c, groups=2):
            super().__init__()
            self.groups = groups
            self.weight, self.bias, self.v = (nn.Parameter(torch.ones(c)), nn.Parameter(torch.zeros(c)),
                                              nn.Parameter(torch.ones(c)))

        def forward(self, x):
            v_shape = (1, -1, 1, 1)
            x = x * (x * self.v.view(v_shape)).sigmoid() / group_std(x, self.groups)
            return x * self.weight.view(v_shape) + self.bias.view(v_shape)

    g = cg(lambda m, x: m.n(m.a(x)), a=conv(), n=EvoNorm2dS0(8))
    counts = ops(g)
    assert "other" not in counts and counts["layer_norm"] == 1 and counts["sigmoid"] == 1
    assert g.params == 8 * 8 * 9 + 8 + 3 * 8


@pytest.mark.parametrize("written", [
    lambda x, eps: x / torch.sqrt(x.pow(2).mean(1, keepdim=True) + eps),
    lambda x, eps: x * (1.0 / torch.sqrt(x.pow(2).mean(1, keepdim=True) + eps)),   # timm's RmsNorm2d
])
def test_rms_norm_written_out_is_a_norm(written):
    g = cg(lambda m, x: written(m.a(x), 1e-6) * m.w, a=conv(), w=nn.Parameter(torch.ones(8, 1, 1)))
    assert ops(g) == {"conv": 1, "layer_norm": 1}
    assert next(n for n in g.nodes if n.op == "layer_norm").params == 8


def test_l2_normalize_is_a_norm():
    g = cg(lambda m, x: m.fc(F.normalize(m.q(x), dim=-1)), shape=(16, 32), q=nn.Linear(32, 32), fc=nn.Linear(32, 32))
    assert ops(g) == {"linear": 2, "layer_norm": 1}
    norm = next(n for n in g.nodes if n.op == "layer_norm")
    assert norm.params == 0 and norm.in_shape == norm.out_shape == (16, 32)


def test_mean_of_stacked_heads_is_an_add():
    """CrossViT / distilled heads: ``torch.stack(logits).mean(0)``."""
    heads = dict(a=nn.Linear(32, 10), b=nn.Linear(32, 10))
    stacked = cg(lambda m, x: torch.stack([m.a(x), m.b(x)]).mean(0), shape=(32,), **heads)
    counts = ops(stacked)
    assert counts["linear"] == 2 and counts["add"] == 1 and "reduce" not in counts and "other" not in counts


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # torch's own batch-size check in group_norm
@pytest.mark.parametrize("groups", [2, 4])
def test_torch_group_norm_is_one_layer_norm(groups):
    """nn.GroupNorm exports as Reshape, InstanceNormalization, Reshape, Mul, Add."""
    torch.manual_seed(0)
    g = from_module(nn.Sequential(conv(), nn.GroupNorm(groups, 8), nn.ReLU()), IMAGE)
    assert ops(g) == {"conv": 1, "layer_norm": 1, "relu": 1}
    norm = next(n for n in g.nodes if n.op == "layer_norm")
    assert norm.params == 16 and norm.in_shape == norm.out_shape == IMAGE


def test_gelu_via_erf_is_gelu():
    pattern = cg(lambda m, x: (lambda h: h * 0.5 * (1.0 + torch.erf(h / math.sqrt(2.0))))(m.a(x)), a=conv())
    plain = cg(lambda m, x: F.gelu(m.a(x)), a=conv())
    assert pattern == plain and ops(plain) == {"conv": 1, "gelu": 1}


# -------------------------------------------------------------- attention
def test_attention_is_matmul_softmax_matmul():
    def attention(m, x):
        q, k, v = m.q(x), m.k(x), m.v(x)
        return m.o(torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(32), dim=-1) @ v)

    layers = {n: nn.Linear(32, 32) for n in "qkvo"}
    g = cg(attention, shape=(16, 32), **layers)
    assert ops(g) == {"linear": 4, "matmul": 2, "softmax": 1, "reshape": 1}
    scores = next(n for n in g.nodes if n.op == "matmul" and n.out_shape == (16, 16))
    assert scores.macs == 16 * 16 * 32


def test_einsum_that_is_a_matmul():
    layers = {n: nn.Linear(32, 32) for n in "qk"}
    pattern = cg(lambda m, x: torch.einsum("bij,bjk->bik", m.q(x), m.k(x).transpose(1, 2)), shape=(16, 32), **layers)
    plain = cg(lambda m, x: m.q(x) @ m.k(x).transpose(1, 2), shape=(16, 32), **layers)
    assert pattern == plain
    direct = cg(lambda m, x: torch.einsum("bqd,bkd->bqk", m.q(x), m.k(x)), shape=(16, 32), **layers)
    assert ops(direct) == {"linear": 2, "matmul": 1}


class _DecomposedRelPos(nn.Module):
    """SAM's and MViTv2's relative positions: a table of ``2 s - 1`` rows
    gathered by constant indices into one ``(k, c)`` weight per query row,
    ``einsum("bhwc,hkc->bhwk", q, R)``."""

    def __init__(self, c=8, s=4):
        super().__init__()
        self.stem, self.s = conv(3, c), s
        self.table = nn.Parameter(torch.randn(2 * s - 1, c))

    def forward(self, x):
        q = self.stem(x).permute(0, 2, 3, 1)
        rows = torch.arange(self.s)[:, None] - torch.arange(self.s)[None, :] + self.s - 1
        return torch.einsum("bhwc,hkc->bhwk", q, self.table[rows])


def test_einsum_with_a_gathered_table_is_a_matmul_counting_the_table():
    torch.manual_seed(0)
    net = _DecomposedRelPos().eval()
    g = from_module(net, (3, 4, 4))
    assert ops(g) == {"conv": 1, "matmul": 1, "reshape": 1}
    assert g.params == sum(p.numel() for p in net.parameters())  # the 7-row table, not the 4x4 gathered rows
    assert next(n for n in g.nodes if n.op == "matmul").macs == 4 * 4 * 4 * 8  # h w k outputs, c each


def _assigned(m, x, corner):
    """MViTv2's ``attn[:, :, c:, c:] = attn[:, :, c:, c:] + rel``: ScatterND."""
    a = m.a(x)
    a[:, :, corner:, corner:] = a[:, :, corner:, corner:] + m.b(x)[:, :, corner:, corner:]
    return a


def test_slice_assignment_is_a_concat_unless_it_overwrites_everything():
    layers = {"a": conv(), "b": conv()}
    assert ops(cg(lambda m, x: _assigned(m, x, 1), **layers)) == {"conv": 2, "slice": 4, "add": 1, "concat": 1}
    assert cg(lambda m, x: _assigned(m, x, 0), **layers) == cg(lambda m, x: m.a(x) + m.b(x), **layers)


def test_concat_with_an_empty_slice_is_the_other_operand():
    """Qwen3-ViT's ``cat([q[:, :n_prefix], rope(q[:, n_prefix:])])`` with no prefix tokens."""
    def prefixed(m, x, n_prefix):
        h = m.q(x)
        return m.o(torch.cat([h[:, :n_prefix], torch.tanh(h[:, n_prefix:])], dim=1))

    layers = {n: nn.Linear(32, 32) for n in "qo"}
    pattern = cg(lambda m, x: prefixed(m, x, 0), shape=(16, 32), **layers)
    plain = cg(lambda m, x: m.o(torch.tanh(m.q(x))), shape=(16, 32), **layers)
    assert pattern == plain
    assert ops(cg(lambda m, x: prefixed(m, x, 1), shape=(16, 32), **layers))["concat"] == 1


# ------------------------------------------------ a network as its code writes it
class _OFAMeanPool(nn.Module):
    """OFA's global pooling and SE squeeze."""

    def forward(self, x):
        return x.mean(3, keepdim=True).mean(2, keepdim=True)


class _OFAHswish(nn.Module):
    def forward(self, x):
        return x * F.relu6(x + 3.0) / 6.0


class _OFAHsigmoid(nn.Module):
    def forward(self, x):
        return F.relu6(x + 3.0) / 6.0


def _as_ofa_writes_it(module: nn.Module) -> nn.Module:
    """Swap in OFA's own spellings of pooling, hard swish and hard sigmoid."""
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.AdaptiveAvgPool2d):
                setattr(parent, name, _OFAMeanPool())
            elif isinstance(child, nn.Hardswish):
                setattr(parent, name, _OFAHswish())
            elif isinstance(child, nn.Hardsigmoid):
                setattr(parent, name, _OFAHsigmoid())
    return module


def test_ofa_subnet_as_ofa_writes_it_gives_the_spec_cg():
    """OFA's ``x.mean(3, keepdim=True).mean(2, keepdim=True)`` (SE squeeze and
    final pool) and ``x * relu6(x + 3) / 6``: the family's fast-path CG."""
    from gennape.cg.families import get_family

    family = get_family("ofa_mbv3")
    spec = family.parse('{"ks": [3, 5, 7, 3, 5, 7, 3, 5, 7, 3, 5, 7, 3, 5, 7, 3, 5, 7, 3, 5], '
                        '"e": [3, 4, 6, 3, 4, 6, 3, 4, 6, 3, 4, 6, 3, 4, 6, 3, 4, 6, 3, 4], '
                        '"d": [2, 3, 4, 2, 3], "r": 160}')
    module = _as_ofa_writes_it(family.to_module(spec))
    assert not any(isinstance(m, (nn.AdaptiveAvgPool2d, nn.Hardswish)) for m in module.modules())
    assert from_module(module, family.example_input_shape(spec)) == family.to_cg(spec)
