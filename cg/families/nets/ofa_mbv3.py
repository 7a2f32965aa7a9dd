"""Once-for-All MobileNetV3 subnets as plain ``torch.nn`` modules.

The network is the one ``OFAMobileNetV3(...).get_active_subnet()`` of
mit-han-lab/once-for-all returns, rebuilt from standard layers so that the
ONNX export is clean: OFA's ``Hswish`` / ``Hsigmoid`` (``x * relu6(x + 3) / 6``
and ``relu6(x + 3) / 6``) are numerically ``nn.Hardswish`` / ``nn.Hardsigmoid``
and export as ``HardSwish`` / ``HardSigmoid``; OFA's ``x.mean(3).mean(2)`` global
pooling is ``nn.AdaptiveAvgPool2d(1)`` and exports as ``GlobalAveragePool``.

The block layout (channel widths, kernels, SE, strides, residuals) comes from
:func:`gennape.cg.families.ofa_mbv3.block_configs`; this module only turns it into layers.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn

#: Activation names used by OFA -> module factory.
ACTIVATIONS = {
    "relu": lambda: nn.ReLU(inplace=True),
    "h_swish": lambda: nn.Hardswish(inplace=True),
}


def build_activation(name: str) -> nn.Module:
    """The activation module called ``name`` (``relu`` or ``h_swish``)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; valid activations: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def _reset_children(module: nn.Module) -> None:
    for m in module.modules():
        if m is not module and hasattr(m, "reset_parameters") and not isinstance(m, _Block):
            m.reset_parameters()


class _Block(nn.Module):
    """Base of this module's composite blocks: ``reset_parameters`` resets every leaf."""

    def reset_parameters(self) -> None:
        _reset_children(self)


class ConvBNAct(_Block):
    """Conv (same padding, no bias) + batch norm + activation: OFA's ``ConvLayer``.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel size (padding ``kernel_size // 2``).
        stride: convolution stride.
        groups: convolution groups.
        act: activation name, or None for none.
        use_bn: whether a batch norm follows the conv.

    Shapes:
        - input: ``(N, in_channels, H, W)``
        - output: ``(N, out_channels, H', W')`` with ``H' = (H - 1) // stride + 1``
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1,
                 stride: int = 1, groups: int = 1, act: str | None = None, use_bn: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride,
                              kernel_size // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_channels) if use_bn else None
        self.act = build_activation(act) if act is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        if self.act is not None:
            x = self.act(x)
        return x


class SqueezeExcite(_Block):
    """OFA's ``SEModule``: global pool, 1x1 reduce (bias) + ReLU, 1x1 expand (bias)
    + hard sigmoid, then the input times the gate.

    Args:
        channels: input (and output) channels.
        mid_channels: channels of the squeezed vector
            (OFA: ``make_divisible(channels // 4, 8)``).

    Shapes:
        - input: ``(N, channels, H, W)``
        - output: ``(N, channels, H, W)``
    """

    def __init__(self, channels: int, mid_channels: int):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(OrderedDict([
            ("reduce", nn.Conv2d(channels, mid_channels, 1, bias=True)),
            ("relu", nn.ReLU(inplace=True)),
            ("expand", nn.Conv2d(mid_channels, channels, 1, bias=True)),
            ("h_sigmoid", nn.Hardsigmoid(inplace=True)),
        ]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(self.pool(x))


class MBConv(_Block):
    """OFA's ``MBConvLayer`` inside a ``ResidualBlock``: an inverted bottleneck.

    1x1 expand + BN + act (absent when ``mid_channels == in_channels`` and
    ``expand`` is False), depthwise kxk + BN + act, optional SE, 1x1 project
    + BN, plus the input when ``residual``.

    Args:
        in_channels: input channels.
        mid_channels: expanded channels (OFA: ``make_divisible(round(in * e), 8)``).
        out_channels: output channels.
        kernel_size: depthwise kernel size.
        stride: depthwise stride.
        act: activation name.
        se_channels: SE squeeze channels, or 0 for no SE.
        expand: whether the 1x1 expansion conv exists (OFA's ``expand_ratio != 1``).
        residual: whether the input is added to the output.

    Shapes:
        - input: ``(N, in_channels, H, W)``
        - output: ``(N, out_channels, H', W')`` with ``H' = (H - 1) // stride + 1``
    """

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int,
                 kernel_size: int, stride: int, act: str, se_channels: int = 0,
                 expand: bool = True, residual: bool = False):
        super().__init__()
        self.residual = residual
        self.inverted_bottleneck = (
            ConvBNAct(in_channels, mid_channels, 1, act=act) if expand else None
        )
        self.depth_conv = ConvBNAct(mid_channels, mid_channels, kernel_size, stride,
                                    groups=mid_channels, act=act)
        self.se = SqueezeExcite(mid_channels, se_channels) if se_channels else None
        self.point_linear = ConvBNAct(mid_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.inverted_bottleneck is not None:
            y = self.inverted_bottleneck(y)
        y = self.depth_conv(y)
        if self.se is not None:
            y = self.se(y)
        y = self.point_linear(y)
        return y + x if self.residual else y


class OFAMobileNetV3Net(_Block):
    """An OFA-MobileNetV3 subnet: stem, MBConv blocks, head.

    Args:
        blocks: per block an object with the attributes of
            :class:`gennape.cg.families.ofa_mbv3.MBConvConfig` (``in_channels``,
            ``mid_channels``, ``out_channels``, ``kernel``, ``stride``, ``act``,
            ``se_channels``, ``expand``, ``residual``), the first block included.
        stem_channels: output channels of the 3x3 stride-2 stem conv.
        final_expand_channels: channels of the 1x1 conv after the last block.
        feature_mix_channels: channels of the 1x1 conv after global pooling
            (no batch norm, no bias).
        num_classes: classifier outputs.
        dropout: dropout rate before the classifier (OFA: 0.1).

    Shapes:
        - input: ``(N, 3, R, R)``
        - output: ``(N, num_classes)``
    """

    def __init__(self, blocks: Sequence, stem_channels: int = 16, final_expand_channels: int = 960,
                 feature_mix_channels: int = 1280, num_classes: int = 1000, dropout: float = 0.1):
        super().__init__()
        self.first_conv = ConvBNAct(3, stem_channels, 3, stride=2, act="h_swish")
        self.blocks = nn.Sequential(*[
            MBConv(b.in_channels, b.mid_channels, b.out_channels, b.kernel, b.stride, b.act,
                   b.se_channels, b.expand, b.residual)
            for b in blocks
        ])
        last = blocks[-1].out_channels
        self.final_expand_layer = ConvBNAct(last, final_expand_channels, 1, act="h_swish")
        self.global_avg_pool = nn.AdaptiveAvgPool2d(1)
        self.feature_mix_layer = ConvBNAct(final_expand_channels, feature_mix_channels, 1,
                                           act="h_swish", use_bn=False)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(feature_mix_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first_conv(x)
        x = self.blocks(x)
        x = self.final_expand_layer(x)
        x = self.global_avg_pool(x)
        x = self.feature_mix_layer(x)
        x = torch.flatten(x, 1)
        return self.classifier(self.dropout(x))
