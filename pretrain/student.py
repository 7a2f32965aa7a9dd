"""A distilled student: one small GNN that reproduces a teacher's predictions, fast.

The shipped nine-member ensemble costs nine 4-layer, 64-wide GNN passes per
network. :class:`StudentNet` is one 2-layer, 32-wide pass (by default) whose
linear readout gives the teacher's score (less its size term), its OOD score
and, where the teacher has one, its uncertainty (:mod:`gennape.pretrain.distill`
trains it). The teacher's size term ``b * log(1 + weights)`` is not learned:
its slope is copied and added exactly, as the teacher adds it.

Layer ``l`` (``h``: node states, ``A``: the graph's adjacency)::

    h <- h + relu(LayerNorm(W_l [h, A h, A^T h]))

one product per layer for the node itself and both message directions (the
teacher's GraphConv-``both`` layers are four products). The readout is the
graph mean of ``h`` followed by ``Linear, ReLU, Linear``.

Batch invariance without a ``TorchFunctionMode``: every dense product is
:func:`gennape.pretrain.batch_invariance.fixed_block_linear` called directly
(so no per-op dispatch hook), sums over edges and nodes are ``index_add_`` in
each graph's own edge / node order, and everything else is row-wise; a
network's outputs are the same bits whichever networks share its batch
(``tests/test_student.py``).

:class:`GennapeStudent` wraps the net in the estimator interface
(``predict_score``, ``predict``, ``predict_details``, ``save`` / ``load``), so
every prediction path takes it where it takes the ensemble.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from gennape.encoder.feature_range import FeatureRange
from gennape.encoder.op_encoding import OpEncoding
from gennape.pretrain.base import UNKNOWN_LABEL, EstimatorBase
from gennape.pretrain.batch_invariance import fixed_block_linear
from gennape.pretrain.size_measure import size_mix

#: What the student's readout predicts, in column order (a student of a teacher
#: without an uncertainty has only the first two).
OUTPUTS = ("score", "ood_score", "accuracy_std")
#: Rows per block of the student's dense products (:func:`fixed_block_linear`).
#: Larger blocks mean fewer calls: on NB-201 batches of 256 cells (~26k nodes),
#: best of 12 interleaved runs on a loaded machine, the student took 0.42 ms/CG
#: with 512-row blocks, 0.52 with 128 (and 0.52 with 128 through the teacher's
#: ``FixedRowBlocks`` mode), 0.36-0.41 with 1024 / 2048 (within the noise of
#: 512), 0.36 with plain, batch-dependent products (/tmp/blocks.py in docs/results.md).
STUDENT_ROW_BLOCK = 512


class StudentNet(nn.Module):
    """Featurised CGs -> ``[num_graphs, n_outputs]`` standardised predictions.

    Args:
        in_channels: featuriser width (``gennape.encoder.features.NUM_FEATURES``).
        hidden: node-state width.
        num_layers: message-passing layers.
        n_outputs: readout columns (:data:`OUTPUTS`).
        op_encoding: ``class`` or ``op`` (:mod:`gennape.encoder.op_encoding`).

    Buffers: ``target_mean``, ``target_std`` ``[n_outputs]`` float64 (the
    readout predicts standardised targets; :meth:`predict` undoes it), plus
    those of the op encoding and feature range (copied from the teacher).

    Shapes:
        - input: ``x`` ``[num_nodes, in_channels]``, ``edge_index`` ``[2, num_edges]``,
          ``batch`` ``[num_nodes]`` int64 (sorted: a batch's graphs are contiguous),
          ``num_graphs``
        - output: ``[num_graphs, n_outputs]`` float32
    """

    def __init__(self, in_channels: int, hidden: int = 32, num_layers: int = 2, n_outputs: int = 2,
                 op_encoding: str = "class"):
        super().__init__()
        self.op_encoding = OpEncoding(in_channels, op_encoding)
        self.feature_range = FeatureRange(in_channels, self.op_encoding.num_numeric)
        self.input = nn.Linear(self.op_encoding.out_channels, hidden)
        self.layers = nn.ModuleList(nn.Linear(3 * hidden, hidden) for _ in range(num_layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(num_layers))
        self.project = nn.Linear(hidden, hidden)
        self.readout = nn.Linear(hidden, n_outputs)
        self.register_buffer("target_mean", torch.zeros(n_outputs, dtype=torch.float64))
        self.register_buffer("target_std", torch.ones(n_outputs, dtype=torch.float64))

    def _linear(self, layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        # Training: one plain product (faster, and gradients need no invariance).
        if self.training:
            return layer(x)
        return fixed_block_linear(x, layer.weight, layer.bias, STUDENT_ROW_BLOCK)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, batch: torch.Tensor,
                num_graphs: int) -> torch.Tensor:
        h = torch.relu(self._linear(self.input, self.op_encoding(self.feature_range(x))))
        src, dst = edge_index[0], edge_index[1]
        for layer, norm in zip(self.layers, self.norms):
            forward_msg = torch.zeros_like(h).index_add_(0, dst, h[src])
            backward_msg = torch.zeros_like(h).index_add_(0, src, h[dst])
            h = h + torch.relu(norm(self._linear(layer, torch.cat([h, forward_msg, backward_msg], dim=1))))
        pooled = torch.zeros(num_graphs, h.shape[1], dtype=h.dtype, device=h.device).index_add_(0, batch, h)
        counts = torch.bincount(batch, minlength=num_graphs).clamp_min(1).to(h.dtype)
        pooled = pooled / counts[:, None]
        return self._linear(self.readout, torch.relu(self._linear(self.project, pooled)))

    def predict(self, x, edge_index, batch, num_graphs: int) -> torch.Tensor:
        """Predictions on the targets' own scale, ``[num_graphs, n_outputs]`` float64."""
        return self(x, edge_index, batch, num_graphs).double() * self.target_std + self.target_mean


class GennapeStudent(EstimatorBase):
    """A fitted student (made by :func:`gennape.pretrain.distill.distill`).

    Args:
        hidden: node-state width of :class:`StudentNet`.
        num_layers: its message-passing layers.
        op_encoding: its op encoding (the teacher's).
        epochs: training epochs.
        batch_size: graphs per training batch.
        lr: AdamW learning rate (cosine schedule to 0).
        weight_decay: AdamW weight decay.
        val_fraction: share of the graphs held out to measure the fit (``distill_info_``).
        seed: seed of the initialisation, the held-out split and the order (global states untouched).
        device: ``cpu`` or ``cuda``.

    Fitted attributes: ``net_`` (:class:`StudentNet`), ``size_slope_`` and
    ``size_measure_`` (the teacher's exact size-term slope and the size it reads,
    :mod:`gennape.pretrain.size_measure`),
    ``target_transform_`` (the teacher's score -> accuracy map, or None),
    ``ood_threshold_``, ``outputs_`` (the readout's columns),
    ``teacher_`` (what the teacher was: its class, label, checkpoint hash),
    ``distill_info_`` (the distillation data and fit) and ``metadata_``.
    """

    def __init__(self, hidden: int = 32, num_layers: int = 2, op_encoding: str = "class", epochs: int = 40,
                 batch_size: int = 128, lr: float = 3e-3, weight_decay: float = 1e-4, val_fraction: float = 0.1,
                 seed: int = 0, device: str = "cpu"):
        self.hidden = hidden
        self.num_layers = num_layers
        self.op_encoding = op_encoding
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.val_fraction = val_fraction
        self.seed = seed
        self.device = device

    def fit(self, cgs, teacher, *, targets=None, teacher_info: dict | None = None, on_epoch=None) -> "GennapeStudent":
        """Distil ``teacher`` (any fitted estimator or ensemble) on the unlabelled
        graphs ``cgs``; returns self (:func:`gennape.pretrain.distill.fit_student`).

        Args:
            cgs: list of CGs or a :class:`gennape.pretrain.packed.GraphPack`.
            teacher: has ``predict_details``.
            targets: the teacher's outputs if already computed
                (:func:`gennape.pretrain.distill.teacher_targets`).
            teacher_info: recorded in ``teacher_`` (e.g. its checkpoint hash).
            on_epoch: called as ``on_epoch(epoch, train_loss)``.
        """
        from gennape.pretrain.distill import fit_student

        return fit_student(self, teacher, cgs, targets=targets, teacher_info=teacher_info, on_epoch=on_epoch)

    def _new_net(self, n_outputs: int) -> StudentNet:
        from gennape.encoder.features import NUM_FEATURES

        return StudentNet(NUM_FEATURES, self.hidden, self.num_layers, n_outputs, self.op_encoding).to(self.device)

    # ---------------------------------------------------------------- predict
    def _outputs(self, cgs, batch_size: int = 256) -> np.ndarray:
        """``[n, len(outputs_)]`` float64 on the targets' scales (score before the size term)."""
        from gennape.pretrain.estimator import NotFittedError, as_pack

        if not hasattr(self, "net_"):
            raise NotFittedError("this GennapeStudent is not fitted yet; run gennape.pretrain.distill.distill "
                                 "or load one with gennape.transfer.model.load_student(dir)")
        pack = as_pack(cgs)
        mix = torch.as_tensor(size_mix(self.size_measure_), device=self.device)
        net = self.net_
        was_training = net.training
        net.eval()
        parts = []
        with torch.inference_mode():
            for start in range(0, len(pack), batch_size):
                index = np.arange(start, min(start + batch_size, len(pack)))
                b = pack.collate(index, device=self.device)
                out = net.predict(b.x, b.edge_index, b.batch, len(index))
                out[:, 0] += self.size_slope_ * (b.graph_attr.to(mix) @ mix).to(out)
                parts.append(out.cpu())
        net.train(was_training)
        return torch.cat(parts).numpy()

    def predict_score(self, cgs) -> np.ndarray:
        """The teacher's score as the student predicts it, ``[n]`` (rank by this)."""
        return self._outputs(cgs)[:, 0]

    def _accuracy(self, score: np.ndarray) -> np.ndarray:
        if self.target_transform_ is None:
            return np.full(len(score), np.nan)
        return np.clip(self.target_transform_.inverse(score), 0.0, 1.0)

    def predict(self, cgs) -> np.ndarray:
        """Predicted accuracy: the score through the teacher's target transform, clipped to ``[0, 1]``."""
        return self._accuracy(self.predict_score(cgs))

    def predict_details(self, cgs) -> dict[str, np.ndarray]:
        """As :meth:`gennape.pretrain.estimator.GennapeEstimator.predict_details`:
        ``accuracy``, ``score``, ``ood_score`` (the teacher's, as predicted),
        ``ood`` (against the teacher's threshold) and ``accuracy_std`` (the
        teacher's uncertainty as predicted; NaN if the teacher has none), all
        ``[n]``; ``memberships`` is ``[n, 0]``: the student has no clusters."""
        out = self._outputs(cgs)
        n = len(out)
        ood = out[:, 1]
        std = np.clip(out[:, 2], 0.0, None) if out.shape[1] > 2 else np.full(n, np.nan)
        return {"accuracy": self._accuracy(out[:, 0]), "score": out[:, 0], "memberships": np.zeros((n, 0)),
                "ood_score": ood, "ood": ood > self.ood_threshold_, "accuracy_std": std}

    def ood_score(self, cgs) -> np.ndarray:
        return self._outputs(cgs)[:, 1]

    def label(self) -> str:
        return str(self.teacher_.get("label") or UNKNOWN_LABEL)

    # -------------------------------------------------------------- save/load
    def checkpoint_state(self) -> tuple[dict, dict]:
        from gennape.pretrain.targets import TargetTransform

        transform = None if self.target_transform_ is None else TargetTransform.to_dict(self.target_transform_)
        fitted = {"size_slope": float(self.size_slope_), "size_measure": self.size_measure_,
                  "target_transform": transform,
                  "ood_threshold": float(self.ood_threshold_), "outputs": list(self.outputs_),
                  "teacher": dict(self.teacher_), "distill": dict(self.distill_info_)}
        return dict(self.net_.state_dict()), {"params": self.get_params(deep=False), "fitted": fitted,
                                              "metadata": dict(self.metadata_)}

    @classmethod
    def from_sections(cls, tensors: dict, sections: dict, device: str = "cpu") -> "GennapeStudent":
        from gennape.pretrain.targets import TargetTransform

        fitted = sections["fitted"]
        est = cls(**{**sections["params"], "device": device})
        outputs = tuple(fitted["outputs"])
        if outputs != OUTPUTS[:len(outputs)] or len(outputs) < 2:
            raise ValueError(f"student outputs {list(outputs)} are not a prefix of {list(OUTPUTS)}")
        net = est._new_net(len(outputs))
        net.load_state_dict(tensors)
        est.net_ = net.eval()
        est.outputs_ = outputs
        est.size_slope_ = float(fitted["size_slope"])
        est.size_measure_ = fitted.get("size_measure", "weights")  # students written before size measures
        transform = fitted["target_transform"]
        est.target_transform_ = None if transform is None else TargetTransform.from_dict(transform)
        est.ood_threshold_ = float(fitted["ood_threshold"])
        est.teacher_ = dict(fitted["teacher"])
        est.distill_info_ = dict(fitted["distill"])
        est.metadata_ = dict(sections.get("metadata") or {})
        return est


__all__ = ["GennapeStudent", "OUTPUTS", "STUDENT_ROW_BLOCK", "StudentNet"]
