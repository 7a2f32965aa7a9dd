"""Exporter equivalence: one torch module exported three ways (legacy with and
without constant folding, dynamo) gives the same CG node for node; only params
differ, by exactly the batch-norm vectors folding removes."""

from __future__ import annotations

import contextlib
import io
import warnings

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from gennape.cg.onnx_import import from_onnx  # noqa: E402
from gennape.cg.torch_import import from_module  # noqa: E402


class SE(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(c, c // 4, 1), nn.Conv2d(c // 4, c, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x):
        return x * self.gate(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))


class Net(nn.Module):
    """conv+BN+relu, depthwise conv, SE with hardsigmoid, hardswish, silu,
    relu6, residual add, concat, max/avg pool, global pool, flatten+linear."""

    def __init__(self):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16)
        self.dw, self.b2 = nn.Conv2d(16, 16, 3, 1, 1, groups=16, bias=False), nn.BatchNorm2d(16)
        self.se = SE(16)
        self.pw = nn.Conv2d(16, 16, 1)
        self.mp, self.ap = nn.MaxPool2d(2), nn.AvgPool2d(2)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = F.relu(self.b1(self.c1(x)))
        y = self.se(F.hardswish(self.b2(self.dw(x))))
        y = F.silu(self.pw(y))
        x = F.relu6(x + y)
        x = torch.cat([self.mp(x), self.ap(x)], 1)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def make_net() -> nn.Module:
    torch.manual_seed(0)
    net = Net()
    for m in net.modules():  # non-trivial BN statistics, so folding leaves a bias
        if isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight)
            nn.init.uniform_(m.bias)
            m.running_mean.uniform_()
            m.running_var.uniform_(1, 2)
    return net.eval()


def export(module, dynamo: bool, fold: bool = False, shape=(1, 3, 32, 32)):
    x = torch.randn(*shape)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporters' own deprecation / progress chatter
        if dynamo:
            return torch.onnx.export(module, (x,), dynamo=True, verbose=False).model_proto
        buf = io.BytesIO()
        torch.onnx.export(module, (x,), buf, dynamo=False, do_constant_folding=fold)
        return buf.getvalue()


@pytest.fixture(scope="module")
def exports():
    pytest.importorskip("onnxscript")
    net = make_net()
    return net, {
        "folded": from_onnx(export(net, dynamo=False, fold=True)),
        "unfolded": from_onnx(export(net, dynamo=False, fold=False)),
        "dynamo": from_onnx(export(net, dynamo=True)),
    }


def keys(cg):
    return [n.order_key() for n in cg.nodes]


@pytest.mark.parametrize("other", ["folded", "dynamo"])
def test_exports_give_identical_graphs(exports, other):
    _, cgs = exports
    assert keys(cgs[other]) == keys(cgs["unfolded"])
    assert cgs[other].edges == cgs["unfolded"].edges


def test_params_differ_by_folded_bn_vectors(exports):
    net, cgs = exports
    assert cgs["unfolded"].params == sum(p.numel() for p in net.parameters())
    # Folding a BN into a bias-free conv leaves a C-vector bias: of the BN's two
    # C-vectors one disappears (c1 -> b1 and dw -> b2, 16 channels each).
    diffs = [u.params - f.params for f, u in zip(cgs["folded"].nodes, cgs["unfolded"].nodes)]
    assert sorted(d for d in diffs if d) == [16, 16]
    assert cgs["dynamo"].params == cgs["folded"].params


def test_expected_ops(exports):
    _, cgs = exports
    ops = cgs["unfolded"].op_counts()
    assert ops == {
        "input": 1, "conv": 4, "depthwise_conv": 1, "relu": 2, "hard_swish": 1,
        "global_avg_pool": 2, "hard_sigmoid": 1, "mul": 1, "silu": 1, "add": 1, "relu6": 1,
        "max_pool": 1, "avg_pool": 1, "concat": 1, "linear": 1, "output": 1,
    }


class Decomposed(nn.Module):
    """Activations written out by hand, a view-based flatten and channel shuffle,
    versus the library calls in :class:`Library`."""

    def __init__(self, manual: bool):
        super().__init__()
        torch.manual_seed(0)
        self.manual = manual
        self.c = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 8, 1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        x = self.c(x)
        if self.manual:
            x = x * F.relu6(x + 3) / 6
            x = x * (F.relu6(x + 3) / 6)
            x = x * torch.sigmoid(x)
            x = torch.clamp(x, 0, 6)
            b, c, h, w = x.shape
            x = x.view(b, 2, c // 2, h, w).transpose(1, 2).contiguous().view(b, c, h, w)
            x = x * 0.5 * (1 + torch.erf(x / 1.4142135623730951))
            x = self.c2(x).mean((2, 3), keepdim=True)
            x = x.view(x.size(0), -1)
        else:
            x = F.hardswish(x)
            x = x * F.hardsigmoid(x)
            x = F.silu(x)
            x = F.relu6(x)
            x = x.reshape(1, 2, 4, 32, 32).permute(0, 2, 1, 3, 4).reshape(1, 8, 32, 32)
            x = F.gelu(x)
            x = F.adaptive_avg_pool2d(self.c2(x), 1).flatten(1)
        return self.fc(x)


@pytest.mark.parametrize("opset", [9, 13, 17])
def test_decompositions_equal_library_ops(opset):
    ref = from_onnx(export(Decomposed(False).eval(), dynamo=False))
    got = from_onnx(export(Decomposed(True).eval(), dynamo=False) if opset == 17 else _legacy(Decomposed(True), opset))
    assert keys(got) == keys(ref) and got.edges == ref.edges and got.params == ref.params
    assert ref.op_counts()["reshape"] == 1 and ref.op_counts()["gelu"] == 1


def _legacy(module, opset):
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (torch.randn(1, 3, 32, 32),), buf, dynamo=False, opset_version=opset)
    return buf.getvalue()


def test_from_module_matches_torch_param_count():
    net = make_net().train()
    cg = from_module(net, input_shape=(3, 32, 32))
    assert net.training  # mode restored
    assert cg.params == sum(p.numel() for p in net.parameters())
    assert cg.input_shape == (3, 32, 32) and cg.name == "Net"
    assert "batch_norm" not in cg.op_counts()


class TinyViT(nn.Module):
    """Patch embedding, class token, one attention block, GELU MLP, head."""

    def __init__(self, d: int = 32):
        super().__init__()
        torch.manual_seed(0)
        self.patch, self.ln = nn.Conv2d(3, d, 8, 8), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 64), nn.GELU(), nn.Linear(64, d))
        self.head = nn.Linear(d, 10)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1)
        q, k, v = self.qkv(self.ln(x)).chunk(3, -1)
        x = x + self.proj((q @ k.transpose(-2, -1) / 5.66).softmax(-1) @ v)
        x = x + self.mlp(self.ln(x))
        return self.head(x[:, 0])


def legacy_and_dynamo(module, shape=(1, 3, 32, 32)):
    """The CGs of ``module``'s legacy and dynamo exports."""
    pytest.importorskip("onnxscript")
    return from_onnx(export(module, dynamo=False, shape=shape)), from_onnx(export(module, dynamo=True, shape=shape))


def test_attention_block_legacy_equals_dynamo():
    net = TinyViT().eval()
    legacy, dynamo = legacy_and_dynamo(net)
    assert keys(legacy) == keys(dynamo) and legacy.edges == dynamo.edges
    assert legacy.params == dynamo.params == sum(p.numel() for p in net.parameters())
    assert legacy.op_counts() == {
        "input": 1, "conv": 1, "reshape": 2, "concat": 1, "layer_norm": 2, "linear": 5, "slice": 4,
        "matmul": 2, "softmax": 1, "add": 2, "gelu": 1, "output": 1,
    }


class InceptionE(nn.Module):
    """Inception-v3's last block: two of its four branches are themselves a
    concat of two convs. The legacy exporter combines the nested concats into
    one; the dynamo exporter keeps them nested."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.b1 = nn.Conv2d(8, 4, 1)
        self.b3, self.b3a, self.b3b = nn.Conv2d(8, 4, 1), nn.Conv2d(4, 4, (1, 3), padding=(0, 1)), \
            nn.Conv2d(4, 4, (3, 1), padding=(1, 0))
        self.d3a, self.d3b = nn.Conv2d(8, 4, (1, 3), padding=(0, 1)), nn.Conv2d(8, 4, (3, 1), padding=(1, 0))
        self.fc = nn.Linear(20, 10)

    def forward(self, x):
        x = F.relu(self.stem(x))
        b3 = self.b3(x)
        branches = [self.b1(x), torch.cat([self.b3a(b3), self.b3b(b3)], 1),
                    torch.cat([self.d3a(x), self.d3b(x)], 1)]
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(torch.cat(branches, 1), 1), 1))


def test_nested_concats_legacy_equals_dynamo():
    legacy, dynamo = legacy_and_dynamo(InceptionE().eval())
    assert keys(legacy) == keys(dynamo) and legacy.edges == dynamo.edges
    assert legacy.op_counts()["concat"] == 1


class EvoNormS0(nn.Module):
    """timm's EvoNorm2dS0: ``x * sigmoid(v * x) / group_std(x)``; the dynamo
    exporter writes the variance with ``keepdims=0`` and a Reshape after it."""

    def __init__(self, c=8, groups=2):
        super().__init__()
        self.stem, self.groups = nn.Conv2d(3, c, 3, padding=1), groups
        self.v = nn.Parameter(torch.rand(c))

    def forward(self, x):
        x = self.stem(x)
        b, c, h, w = x.shape
        g = x.reshape(b, self.groups, c // self.groups, h, w)
        std = g.var(dim=(2, 3, 4), unbiased=False, keepdim=True).add(1e-5).sqrt().expand(g.shape).reshape(b, c, h, w)
        return x * (x * self.v.view(1, -1, 1, 1)).sigmoid() / std


class ChannelsLastRoundTrip(nn.Module):
    """FocalNet / GC ViT: NCHW -> NHWC for a layer norm, back to NCHW for a
    conv, and the NHWC tensor read again (the legacy exporter composes the two
    transposes; the dynamo exporter keeps both); GELU's tanh approximation,
    which the legacy exporter writes out below opset 20."""

    def __init__(self, c=8):
        super().__init__()
        self.stem, self.ln1, self.ln2 = nn.Conv2d(3, c, 3, padding=1), nn.LayerNorm(c), nn.LayerNorm(c)
        self.dw = nn.Conv2d(c, c, 3, padding=1, groups=c)

    def forward(self, x):
        t = self.ln1(self.stem(x).permute(0, 2, 3, 1))
        y = F.gelu(self.dw(t.permute(0, 3, 1, 2)), approximate="tanh")
        return y + self.ln2(t.permute(0, 3, 1, 2).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class AsymmetricPad(nn.Module):
    """HGNetV2's stem: ``F.pad(x, [0, 1, 0, 1])`` before a 2x2 conv and a 2x2 max pool."""

    def __init__(self):
        super().__init__()
        self.stem, self.conv = nn.Conv2d(3, 8, 3, 2, 1), nn.Conv2d(8, 8, 2)

    def forward(self, x):
        x = F.pad(F.relu(self.stem(x)), [0, 1, 0, 1])
        return torch.cat([self.conv(x), F.max_pool2d(x, 2, 1)], 1)


@pytest.mark.parametrize("net", [EvoNormS0, ChannelsLastRoundTrip, AsymmetricPad], ids=lambda c: c.__name__)
def test_timm_patterns_legacy_equals_dynamo(net):
    torch.manual_seed(0)
    legacy, dynamo = legacy_and_dynamo(net().eval())
    assert keys(legacy) == keys(dynamo) and legacy.edges == dynamo.edges
    assert "other" not in legacy.op_counts()


def test_relative_position_einsum_legacy_equals_dynamo():
    """SAM / MViTv2: dynamo folds the gathered table into a constant, so only
    the legacy export still holds the table itself (params differ, the graph
    does not)."""
    from tests.test_torch_patterns import _DecomposedRelPos

    torch.manual_seed(0)
    net = _DecomposedRelPos().eval()
    legacy, dynamo = legacy_and_dynamo(net, shape=(1, 3, 4, 4))
    assert keys(legacy) == keys(dynamo) and legacy.edges == dynamo.edges
    assert legacy.params == sum(p.numel() for p in net.parameters())


class AdaptivePool(nn.Module):
    def __init__(self, out):
        super().__init__()
        self.conv, self.out = nn.Conv2d(3, 8, 3, padding=1), out

    def forward(self, x):
        return F.adaptive_avg_pool2d(F.relu(self.conv(x)), self.out)


@pytest.mark.parametrize("size, out, kernel, stride", [
    ((8, 8), (3, 3), (4, 4), (2, 2)),  # windows of 3 and 4: masks, a sum of Gathers, a division
    ((5, 5), (2, 2), (3, 3), (2, 2)),  # overlapping windows of one size: a mean over the window axes
    ((7, 8), (7, 3), (1, 4), (1, 2)),  # one axis divides: windows one high
])
def test_adaptive_pool_over_unequal_windows_is_one_avg_pool(size, out, kernel, stride):
    """The dynamo exporter writes an adaptive average pool whose output does not
    divide its input as a GatherND of every window (the legacy exporter cannot
    export it); with an output that divides, both write AveragePool."""
    pytest.importorskip("onnxscript")
    cg = from_onnx(export(AdaptivePool(out).eval(), dynamo=True, shape=(1, 3, *size)))
    assert cg.op_counts() == {"input": 1, "conv": 1, "relu": 1, "avg_pool": 1, "output": 1}
    pool = next(n for n in cg.nodes if n.op == "avg_pool")
    assert (pool.kernel, pool.stride, pool.out_shape, pool.params) == (kernel, stride, (8, *out), 0)
    assert cg.params == 8 * 3 * 9 + 8


def test_adaptive_pool_whose_output_divides_legacy_equals_dynamo():
    legacy, dynamo = legacy_and_dynamo(AdaptivePool((3, 3)).eval(), shape=(1, 3, 9, 9))
    assert keys(legacy) == keys(dynamo) and legacy.edges == dynamo.edges
    assert legacy.op_counts()["avg_pool"] == 1


class SliceAssignment(nn.Module):
    """``a[index] = a[index] + b[index]``: one axis, or two (MViTv2's attention behind its class token)."""

    def __init__(self, index):
        super().__init__()
        self.a, self.b, self.index = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 4, 1), index

    def forward(self, x):
        a = self.a(x)
        a[self.index] = a[self.index] + self.b(x)[self.index]
        return a


@pytest.mark.parametrize("index", [
    (slice(None), slice(1, None)), (slice(None), slice(None), slice(1, None)),
    (slice(None), slice(None), slice(None), slice(1, None)), (slice(None), slice(None), slice(1, None), slice(1, None)),
], ids=["channels", "rows", "columns", "rows_and_columns"])
def test_slice_assignment_legacy_equals_dynamo(index):
    """Dynamo writes a slice assignment along a transposed axis (Transposes
    around its ScatterND), a 2-D one as two nested ScatterNDs; the legacy
    exporter writes one ScatterND over every index: one concat either way."""
    legacy, dynamo = legacy_and_dynamo(SliceAssignment(index).eval(), shape=(1, 3, 5, 5))
    assert keys(legacy) == keys(dynamo) and legacy.edges == dynamo.edges
    assert dynamo.op_counts()["concat"] == 1 and "reshape" not in dynamo.op_counts()


class SoftmaxOverAnAxis(nn.Module):
    """ResNeSt's split attention (a softmax over axis 1) and CoaT's factorised
    attention (``k.softmax(2).transpose(-1, -2)``)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=4)

    def forward(self, x):
        a = self.conv(x).reshape(1, 2, 4, 64)
        radix = a.transpose(1, 2).softmax(1)
        k = a.softmax(2).transpose(-1, -2)
        return torch.cat([radix.flatten(1), (k @ a).flatten(1)], 1)


@pytest.mark.parametrize("opset", [9, 11])
def test_softmax_over_an_axis_is_one_graph_at_every_opset(opset):
    """Below opset 13 the legacy exporter writes a softmax over another axis
    than the last between Transposes (and folds the one after it into a
    following Transpose): the CG is opset 17's."""
    ref = from_onnx(_legacy(SoftmaxOverAnAxis(), 17))
    got = from_onnx(_legacy(SoftmaxOverAnAxis(), opset))
    assert keys(got) == keys(ref) and got.edges == ref.edges
