"""Small torch modules written the way people write them predict through
``gennape.transfer.predict_module``: attention (``nn.MultiheadAttention``,
``nn.TransformerEncoder`` in eval mode, whose fused fast paths have no ONNX
export), interpolation and upsampling whose sizes the exporter computes,
pixel shuffle, a ConvNeXt block (channels-last LayerNorm with layer scale),
channel shuffle, a squeeze-and-excitation gate, TF-"same" and Swin-window
padding computed from the input's size. They stand in for the real-model
patterns of ``benchmarks/zoo_coverage.py`` in CI, which has no torchvision.
"""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from gennape.cg.errors import GennapeError  # noqa: E402
from gennape.cg.torch_import import from_module  # noqa: E402
from gennape.transfer import predict_module  # noqa: E402

SHAPE = (3, 32, 32)


class PatchEmbed(nn.Module):
    """4x4 patches -> (B, 64 tokens, 16)."""

    def __init__(self, dim=16):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, 4, 4)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class TokenHead(nn.Module):
    """Tokens back to a (B, C, 8, 8) map, pooled, classified."""

    def __init__(self, dim=16, classes=10):
        super().__init__()
        self.fc = nn.Linear(dim, classes)

    def forward(self, tokens):
        b, n, c = tokens.shape
        side = int(math.isqrt(n))
        x = tokens.transpose(1, 2).reshape(b, c, side, side)
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class Attention(nn.Module):
    def __init__(self, batch_first=True):
        super().__init__()
        self.batch_first = batch_first
        self.embed, self.head = PatchEmbed(), TokenHead()
        self.norm = nn.LayerNorm(16)
        self.mha = nn.MultiheadAttention(16, 4, batch_first=batch_first)

    def forward(self, x):
        t = self.embed(x)
        y = self.norm(t) if self.batch_first else self.norm(t).transpose(0, 1)
        y, _ = self.mha(y, y, y)
        return self.head(t + (y if self.batch_first else y.transpose(0, 1)))


class Transformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed, self.head = PatchEmbed(), TokenHead()
        layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)

    def forward(self, x):
        return self.head(self.encoder(self.embed(x)))


class ViTAttention(nn.Module):
    """timm's Attention: qkv reshaped with the sizes read from the tensor."""

    def __init__(self, dim=16, heads=4):
        super().__init__()
        self.embed, self.head, self.heads = PatchEmbed(dim), TokenHead(dim), heads
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x):
        t = self.embed(x)
        b, n, c = t.shape
        qkv = self.qkv(t).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = (q @ k.transpose(-2, -1) * (c // self.heads) ** -0.5).softmax(dim=-1)
        return self.head(t + self.proj((attn @ v).transpose(1, 2).reshape(b, n, c)))


class Interpolate(nn.Module):
    def __init__(self):
        super().__init__()
        self.down, self.out = nn.Conv2d(3, 8, 3, 2, 1), nn.Conv2d(8, 4, 3, 1, 1)

    def forward(self, x):
        return self.out(F.interpolate(self.down(x), scale_factor=2))


class Upsample(nn.Module):
    def __init__(self):
        super().__init__()
        self.down, self.out = nn.Conv2d(3, 8, 3, 2, 1), nn.Conv2d(8, 4, 3, 1, 1)
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)

    def forward(self, x):
        return self.out(self.up(self.down(x)))


class PixelShuffle(nn.Module):
    def __init__(self):
        super().__init__()
        self.down, self.out = nn.Conv2d(3, 16, 3, 2, 1), nn.Conv2d(4, 4, 3, 1, 1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x):
        return self.out(self.shuffle(self.down(x)))


class ConvNeXtBlock(nn.Module):
    """torchvision / timm ConvNeXt: depthwise 7x7, channels-last LayerNorm,
    MLP with GELU, layer scale, residual."""

    def __init__(self, dim=16):
        super().__init__()
        self.stem = nn.Conv2d(3, dim, 4, 4)
        self.dw = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.fc1, self.fc2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), 1e-6))

    def forward(self, x):
        x = self.stem(x)
        y = self.norm(self.dw(x).permute(0, 2, 3, 1))
        y = self.gamma * self.fc2(F.gelu(self.fc1(y)))
        return x + y.permute(0, 3, 1, 2)


class ChannelShuffle(nn.Module):
    def __init__(self, groups=4):
        super().__init__()
        self.groups = groups
        self.conv1 = nn.Conv2d(3, 16, 1)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1, groups=groups)

    def forward(self, x):
        x = self.conv1(x)
        b, c, h, w = x.size()
        x = x.view(b, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(b, c, h, w)
        return self.conv2(x)


class SqueezeExcite(nn.Module):
    def __init__(self, c=16):
        super().__init__()
        self.conv = nn.Conv2d(3, c, 3, padding=1)
        self.reduce, self.expand = nn.Conv2d(c, 4, 1), nn.Conv2d(4, c, 1)

    def forward(self, x):
        x = F.relu(self.conv(x))
        gate = torch.sigmoid(self.expand(F.relu(self.reduce(F.adaptive_avg_pool2d(x, 1)))))
        return x * gate


class SamePadConv(nn.Module):
    """timm's Conv2dSame: TF-"same" padding computed from the input size."""

    def __init__(self, k=3, s=2):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, k, s)

    def forward(self, x):
        ih, iw = x.size()[-2:]
        k, s = self.conv.kernel_size[0], self.conv.stride[0]
        pad_h = max((-(ih // -s) - 1) * s + k - ih, 0)
        pad_w = max((-(iw // -s) - 1) * s + k - iw, 0)
        x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return self.conv(x)


class WindowPad(nn.Module):
    """Swin: pad the channels-last map to a multiple of the window size."""

    def __init__(self, window=7):
        super().__init__()
        self.window = window
        self.stem, self.out = nn.Conv2d(3, 8, 3, 2, 1), nn.Conv2d(8, 8, 7, 7)

    def forward(self, x):
        x = self.stem(x).permute(0, 2, 3, 1)
        _, h, w, _ = x.shape
        pad_b, pad_r = (self.window - h % self.window) % self.window, (self.window - w % self.window) % self.window
        x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        return self.out(x.permute(0, 3, 1, 2))


def _ops(cg) -> list[str]:
    return [n.op for n in cg.nodes]


def _node(cg, op):
    return next(n for n in cg.nodes if n.op == op)


#: module -> a check of what its CG must show (the pattern came through, with its shapes).
CASES = {
    "mha_batch_first": (lambda: Attention(True), lambda cg: _ops(cg).count("matmul") == 2 and "softmax" in _ops(cg)),
    "mha_seq_first": (lambda: Attention(False), lambda cg: _ops(cg).count("matmul") == 2),
    "transformer_encoder": (Transformer, lambda cg: _ops(cg).count("matmul") == 4 and _ops(cg).count("softmax") == 2),
    "vit_attention": (ViTAttention, lambda cg: _ops(cg).count("matmul") == 2),
    "interpolate": (Interpolate, lambda cg: _node(cg, "resize").out_shape == (8, 32, 32)),
    "upsample": (Upsample, lambda cg: _node(cg, "resize").out_shape == (8, 32, 32)),
    "pixel_shuffle": (PixelShuffle, lambda cg: cg.nodes[-2].out_shape == (4, 32, 32)),
    "convnext_block": (ConvNeXtBlock, lambda cg: "gelu" in _ops(cg) and cg.nodes[-2].out_shape == (16, 8, 8)),
    "channel_shuffle": (ChannelShuffle, lambda cg: cg.nodes[-2].out_shape == (16, 32, 32)),
    "squeeze_excite": (SqueezeExcite, lambda cg: "sigmoid" in _ops(cg) and "global_avg_pool" in _ops(cg)),
    "tf_same_pad": (SamePadConv, lambda cg: _node(cg, "conv").in_shape == (3, 32, 32)  # the pad is the conv's
                    and _node(cg, "conv").out_shape == (8, 16, 16)),
    "swin_window_pad": (WindowPad, lambda cg: cg.nodes[-2].out_shape == (8, 3, 3)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_user_module_predicts(case, capfd):
    build, check = CASES[case]
    module = build()
    module.train()
    cg = from_module(module, SHAPE)
    assert check(cg), [(n.op, n.in_shape, n.out_shape) for n in cg.nodes]
    assert module.training  # the export's eval mode is undone
    p = predict_module(module, SHAPE)
    assert p.path == type(module).__name__ and math.isfinite(p.predicted_accuracy)
    assert capfd.readouterr().out == ""  # nothing the exporter printed reaches the terminal


def test_fast_path_setting_is_restored():
    was = torch.backends.mha.get_fastpath_enabled()
    from_module(Transformer(), SHAPE)
    assert torch.backends.mha.get_fastpath_enabled() == was


class Antialiased(nn.Module):
    """Antialiased downsampling: the legacy exporter refuses
    ``aten::_upsample_bilinear2d_aa``; the dynamo exporter writes a Resize."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, 2)

    def forward(self, x):
        return F.interpolate(self.conv(x), scale_factor=0.5, mode="bilinear", antialias=True)


def test_dynamo_exporter_when_the_legacy_one_refuses(capfd):
    pytest.importorskip("onnxscript")
    cg = from_module(Antialiased(), SHAPE)
    assert _ops(cg) == ["input", "conv", "resize", "output"] and _node(cg, "resize").out_shape == (8, 7, 7)
    captured = capfd.readouterr()
    assert captured.out == "" and "Torch IR graph" not in captured.err


def test_refused_export_is_one_line_naming_module_and_cause(monkeypatch, capfd):
    import sys

    monkeypatch.setitem(sys.modules, "onnxscript", None)  # as without the dynamo exporter
    with pytest.raises(GennapeError) as info:
        predict_module(Antialiased(), SHAPE)
    message = str(info.value)
    assert message.startswith("Antialiased: cannot be exported to ONNX") and "\n" not in message
    assert "aten::_upsample_bilinear2d_aa" in message and "pip install onnxscript" in message
    captured = capfd.readouterr()
    assert "Torch IR graph" not in captured.out + captured.err and "%" not in captured.out + captured.err


def test_failing_forward_is_one_line(capfd):
    with pytest.raises(GennapeError, match=r"^Conv2d: fails on an input of shape \(1, 3, 32, 32\)"):
        predict_module(nn.Conv2d(4, 8, 3), SHAPE)
    assert capfd.readouterr().out == ""
