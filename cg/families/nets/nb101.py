"""The NAS-Bench-101 training network in PyTorch (``nasbench.lib.model_builder``).

The wiring of each cell comes from :func:`gennape.cg.families.nb101.cell_plan`, which
the fast spec -> CG path uses too, so both describe one network. TensorFlow's
``padding='same'`` convs and pools become symmetric padding here (odd kernels,
stride 1) and the 2x2 stride-2 pools need none on 32/16-pixel maps. Batch norm
is affine (TF's ``center`` and ``scale``) with TF's epsilon 1e-5 and momentum
0.997 (PyTorch's ``momentum = 1 - 0.997``).
"""

from __future__ import annotations

import torch
from torch import nn

from gennape.cg.families.nb101 import (
    INPUT_SHAPE, NUM_CLASSES, STEM_CHANNELS, NB101Spec, cell_plan, stack_channels,
)

BN_MOMENTUM = 1 - 0.997
BN_EPSILON = 1e-5


class ConvBnRelu(nn.Module):
    """Conv (no bias, 'same' padding, stride 1) + batch norm + ReLU.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: odd square kernel size.

    Shapes:
        - input: ``[N, in_channels, H, W]``
        - output: ``[N, out_channels, H, W]``
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPSILON, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU()

    def reset_parameters(self) -> None:
        self.conv.reset_parameters()
        self.bn.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


def _vertex_op(op: str, channels: int) -> nn.Module:
    if op == "conv3x3-bn-relu":
        return ConvBnRelu(channels, channels, 3)
    if op == "conv1x1-bn-relu":
        return ConvBnRelu(channels, channels, 1)
    if op == "maxpool3x3":
        return nn.MaxPool2d(3, stride=1, padding=1)
    raise ValueError(f"unknown NB-101 op {op!r}")


class Cell(nn.Module):
    """One NAS-Bench-101 module (``model_builder.build_module``).

    Args:
        spec: the cell.
        in_channels: channels of the cell input.
        out_channels: channels of the cell output.

    Shapes:
        - input: ``[N, in_channels, H, W]``
        - output: ``[N, out_channels, H, W]``
    """

    def __init__(self, spec: NB101Spec, in_channels: int, out_channels: int):
        super().__init__()
        self.spec = spec
        self.plan = plan = cell_plan(spec, in_channels, out_channels)
        ch = plan.channels
        n = len(ch)
        # Index t - 1 holds interior vertex t; None where there is no module.
        self.vertex_ops = nn.ModuleList(_vertex_op(spec.ops[t], ch[t]) for t in range(1, n - 1))
        self.projections = nn.ModuleList(
            ConvBnRelu(in_channels, ch[t], 1) if plan.project[t - 1] else nn.Identity()
            for t in range(1, n - 1)
        )
        needs_output_projection = plan.project_output or not plan.concat
        self.output_projection = ConvBnRelu(in_channels, out_channels, 1) if needs_output_projection else None

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, ConvBnRelu):
                m.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        plan = self.plan
        tensors = [x]
        for t in range(1, len(plan.channels) - 1):
            add_in = [
                tensors[src] if trunc is None else tensors[src][:, :trunc]
                for src, trunc in plan.vertex_inputs[t - 1]
            ]
            if plan.project[t - 1]:
                add_in.append(self.projections[t - 1](x))
            # A chain of binary adds (not sum(), whose 0 + x would export an extra Add).
            v = add_in[0]
            for other in add_in[1:]:
                v = v + other
            tensors.append(self.vertex_ops[t - 1](v))
        if not plan.concat:
            return self.output_projection(x)
        if len(plan.concat) == 1:
            out = tensors[plan.concat[0]]
        else:
            out = torch.cat([tensors[t] for t in plan.concat], dim=1)
        if plan.project_output:
            out = out + self.output_projection(x)
        return out


class NB101Network(nn.Module):
    """The NAS-Bench-101 CIFAR-10 network of one cell spec.

    Args:
        spec: the cell, repeated 3 x 3 times.
        num_classes: classifier outputs (10 in the benchmark).

    Shapes:
        - input: ``[N, 3, 32, 32]``
        - output: ``[N, num_classes]``
    """

    def __init__(self, spec: NB101Spec, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.spec = spec
        self.stem = ConvBnRelu(INPUT_SHAPE[0], STEM_CHANNELS, 3)
        layers: list[nn.Module] = []
        prev_out = STEM_CHANNELS
        for cin, cout, _ in stack_channels():
            if cout != prev_out:
                # Each stack after the first starts by halving the resolution.
                layers.append(nn.MaxPool2d(2, stride=2))
            layers.append(Cell(spec, cin, cout))
            prev_out = cout
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(prev_out, num_classes)

    def reset_parameters(self) -> None:
        for m in self.modules():
            if m is not self and hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.stem(x))
        return self.classifier(torch.flatten(self.pool(x), 1))
