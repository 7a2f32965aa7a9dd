"""How the encoder sees a node's op type: as its op *class*, with unseen columns off.

The featuriser one-hot encodes all 34 op types of :data:`gennape.cg.ops.OPS`. Pretraining
sees only NAS-Bench-101's ten (conv, relu, max pool, add, concat, ...), so the
input weights of the other 24 columns never receive a gradient: an average
pool in NB-201, a depthwise conv in a DARTS cell or a hard-swish in a
MobileNet would enter the GNN through *random* weights. Two fixes, both here:

* ``encoding="class"`` (default) merges op types that play the same role into
  one column (:data:`OP_CLASSES`): average and max pooling are both "pool",
  every nonlinearity is "activation", dense / grouped / depthwise convs are all
  "conv" (``group_width``, a numeric feature, still tells them apart). An
  unseen op then shares what the model learned about its seen relative.
  ``encoding="op"`` keeps the 34 op columns as they are.
* a ``seen`` mask, set from the training graphs (:meth:`OpEncoding.set_seen`),
  zeroes every encoded column that was zero throughout training (op classes
  NB-101 lacks, such as ``norm`` or ``mul``, and numeric features such as
  ``log_dilation``), so what the model never learned adds nothing rather than noise.

Measured (pretraining on 2,000 NB-101 networks, 3 epochs, 5 seeds; zero-shot
Spearman on 3,000-network samples): classes + mask NB-201 0.654 +- 0.026,
NB-301 0.512 +- 0.042; one column per op type (31 then) 0.543 +- 0.025, 0.436 +- 0.040; the
mask alone does not help (0.509, 0.467 over 3 seeds).
"""

from __future__ import annotations

import torch
from torch import nn

from gennape.cg.ops import OP_INDEX, OPS

#: op class -> the op types of :data:`gennape.cg.ops.OPS` it merges (each op in exactly one class).
OP_CLASSES: dict[str, tuple[str, ...]] = {
    "input": ("input",),
    "output": ("output",),
    "conv": ("conv", "group_conv", "depthwise_conv", "conv_transpose"),
    "linear": ("linear", "rnn"),  # a recurrent layer is dense layers over a sequence
    "matmul": ("matmul",),
    "norm": ("batch_norm", "layer_norm", "lrn"),
    "add": ("add",),
    "mul": ("mul",),
    "concat": ("concat",),
    "pool": ("max_pool", "avg_pool"),
    # A reduction over channels or tokens is a pool over another axis.
    "global_pool": ("global_avg_pool", "global_max_pool", "reduce"),
    "activation": ("relu", "relu6", "leaky_relu", "sigmoid", "hard_sigmoid", "silu", "hard_swish", "gelu",
                   "tanh"),
    "softmax": ("softmax",),
    "data_movement": ("resize", "reshape", "slice"),
    "other": ("other",),
}

#: Valid ``encoding`` names.
ENCODINGS = ("class", "op")


def op_matrix(encoding: str) -> torch.Tensor:
    """``[len(OPS), C]`` 0/1 matrix taking the op one-hot to the encoded columns."""
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown op encoding {encoding!r}; valid choices: {', '.join(ENCODINGS)}")
    if encoding == "op":
        return torch.eye(len(OPS))
    matrix = torch.zeros(len(OPS), len(OP_CLASSES))
    for c, ops in enumerate(OP_CLASSES.values()):
        for op in ops:
            matrix[OP_INDEX[op], c] = 1.0
    return matrix


class OpEncoding(nn.Module):
    """Featuriser output -> encoder input: op one-hot through :func:`op_matrix`,
    numeric columns unchanged, then columns unseen in training zeroed.

    Args:
        in_channels: featuriser width (``gennape.encoder.features.NUM_FEATURES``); its
            first ``len(gennape.cg.ops.OPS)`` columns are the op one-hot.
        encoding: ``class`` or ``op`` (see the module docstring).

    Shapes:
        - input: ``[num_nodes, in_channels]``
        - output: ``[num_nodes, out_channels]``
    """

    def __init__(self, in_channels: int, encoding: str = "class"):
        super().__init__()
        self.encoding = encoding
        matrix = op_matrix(encoding)
        if in_channels < len(OPS):
            raise ValueError(f"in_channels {in_channels} is smaller than the op one-hot ({len(OPS)})")
        self.num_numeric = in_channels - len(OPS)
        # Derived from `encoding`, so not saved; `seen` comes from training data and is.
        self.register_buffer("matrix", matrix, persistent=False)
        self.register_buffer("seen", torch.ones(matrix.shape[1] + self.num_numeric))

    @property
    def out_channels(self) -> int:
        return self.matrix.shape[1] + self.num_numeric

    @torch.no_grad()
    def set_seen(self, presence: torch.Tensor) -> None:
        """Keep only the encoded columns fed by a featuriser column that was
        non-zero somewhere in the training graphs.

        Args:
            presence: ``[in_channels]`` bool, e.g.
                :meth:`gennape.pretrain.packed.GraphPack.feature_presence`.
        """
        presence = torch.as_tensor(presence, dtype=torch.float32, device=self.seen.device)
        if presence.shape != (len(OPS) + self.num_numeric,):
            raise ValueError(f"presence has shape {tuple(presence.shape)}, expected ({len(OPS) + self.num_numeric},)")
        ops_seen = (presence[:len(OPS)] @ self.matrix) > 0
        self.seen.copy_(torch.cat([ops_seen.float(), presence[len(OPS):]]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n_ops = self.matrix.shape[0]
        out = torch.cat([x[:, :n_ops] @ self.matrix, x[:, n_ops:]], dim=1)
        return out * self.seen


__all__ = ["ENCODINGS", "OP_CLASSES", "OpEncoding", "op_matrix"]
