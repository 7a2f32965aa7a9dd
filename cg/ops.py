"""The closed vocabulary of atomic operations a computation graph (CG) is made of.

Every CG node carries exactly one of these op types. The list is closed on
purpose: the encoder one-hot encodes it, so adding, removing or reordering an
entry changes :data:`gennape.cg.graph.FORMAT_VERSION` and invalidates checkpoints.

What each op stands for (ONNX spellings in brackets; the importer's canonical
rules, ``docs/canonical_rules.md``, say how patterns collapse into one op):

=================  ===========================================================
``input``          a network input; ``out_shape`` is the input tensor's shape
``output``         a network output; ``in_shape == out_shape``
``conv``           dense 2-D convolution, ``groups == 1`` (Conv)
``group_conv``     grouped convolution, ``1 < groups < in_channels``
``depthwise_conv`` depthwise convolution, ``groups == in_channels > 1``
``conv_transpose`` transposed (up-sampling) 2-D convolution (ConvTranspose)
``linear``         fully connected layer (Gemm, MatMul+Add with a weight)
``rnn``            recurrent layer over a sequence (LSTM, GRU, RNN)
``matmul``         product of two activations (attention-style MatMul, Einsum)
``batch_norm``     a batch norm that no conv/linear absorbs (BatchNormalization)
``layer_norm``     layer / group / instance normalisation, also written out
``lrn``            local response normalisation (LRN)
``add``            element-wise sum of two or more activations (Add, Sum; the
                   ReduceSum of a split attention's stacked branches)
``mul``            element-wise product of two activations (Mul), e.g. SE gates
``concat``         concatenation along channels (Concat)
``max_pool``       windowed max pooling (MaxPool)
``avg_pool``       windowed average pooling (AveragePool)
``global_avg_pool`` mean over all spatial positions (GlobalAveragePool, ReduceMean over H,W)
``global_max_pool`` max over all spatial positions (GlobalMaxPool, ReduceMax over H,W)
``reduce``         any other reduction: a mean / sum / max / min over channels,
                   tokens or one spatial axis (ReduceMean, ReduceSum, ...)
``relu``           Relu
``relu6``          Clip(0, 6) and its equivalents
``leaky_relu``     LeakyRelu, PRelu
``sigmoid``        Sigmoid
``hard_sigmoid``   HardSigmoid and ``relu6(x + 3) / 6``
``silu``           Swish / SiLU, ``x * sigmoid(x)``
``hard_swish``     HardSwish, ``x * hard_sigmoid(x)``
``gelu``           Gelu and its erf decomposition
``tanh``           Tanh
``softmax``        Softmax, LogSoftmax
``resize``         up- or down-sampling by interpolation (Resize, Upsample)
``reshape``        pure data movement inside the network (channel shuffle, ...)
``slice``          a channel split or slice (Split, Slice)
``other``          anything else, only with ``unknown_ops="other"``
=================  ===========================================================
"""

from __future__ import annotations

import math

OPS: tuple[str, ...] = (
    "input",
    "output",
    "conv",
    "group_conv",
    "depthwise_conv",
    "conv_transpose",
    "linear",
    "rnn",
    "matmul",
    "batch_norm",
    "layer_norm",
    "lrn",
    "add",
    "mul",
    "concat",
    "max_pool",
    "avg_pool",
    "global_avg_pool",
    "global_max_pool",
    "reduce",
    "relu",
    "relu6",
    "leaky_relu",
    "sigmoid",
    "hard_sigmoid",
    "silu",
    "hard_swish",
    "gelu",
    "tanh",
    "softmax",
    "resize",
    "reshape",
    "slice",
    "other",
)

OP_INDEX: dict[str, int] = {op: i for i, op in enumerate(OPS)}

#: Ops whose node owns a weight tensor (``weight_shape`` is non-empty).
WEIGHTED_OPS = frozenset({"conv", "group_conv", "depthwise_conv", "conv_transpose", "linear", "rnn"})


def conv_op_for(groups: int, in_channels: int) -> str:
    """Name the convolution op for a conv with ``groups`` over ``in_channels``."""
    if groups == 1:
        return "conv"
    if groups == in_channels:
        return "depthwise_conv"
    return "group_conv"


def weighted_macs(out_shape: tuple[int, ...], weight_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of a conv / linear node for one sample.

    Every output value is a dot product over ``weight_shape[1:]`` (``C_in/groups * kh * kw``
    for a conv, ``in_features`` for a linear), so MACs are
    ``prod(out_shape) * prod(weight_shape[1:])``: ``C_out*H_out*W_out*(C_in/g)*kh*kw``.
    The one place this is counted: the ONNX importer and the fast spec -> CG builders
    all call it, so both paths agree by construction.
    """
    return math.prod(out_shape) * math.prod(weight_shape[1:])


def check_op(op: str) -> str:
    """Return ``op`` if it is in the vocabulary, else raise listing the valid ops."""
    if op not in OP_INDEX:
        raise ValueError(f"unknown op type {op!r}; valid op types: {', '.join(OPS)}")
    return op
