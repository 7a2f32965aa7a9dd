"""Normalisation layers."""

from __future__ import annotations

from gennape.cg.onnx_import.registry import register


@register("BatchNormalization")
def batch_norm(node, ctx):
    """BatchNormalization -> merged into the conv / linear producing its input
    when nothing else reads that output (params += scale + shift = 2C), else
    ``batch_norm`` with params 2C. The running mean and variance are buffers,
    not parameters (as in torch)."""
    ctx.emit(node, "bn", node.input[:1], params=ctx.params(node.input[1:3]))


@register("InstanceNormalization", "LayerNormalization", "GroupNormalization")
def layer_norm(node, ctx):
    """Instance / layer / group normalisation -> layer_norm (params scale + bias)."""
    ctx.emit(node, "layer_norm", node.input[:1], params=ctx.params(node.input[1:3]))


@register("LRN")
def lrn(node, ctx):
    """LRN -> lrn (no parameters)."""
    ctx.emit(node, "lrn", node.input[:1])
