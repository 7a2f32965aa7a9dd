"""Distillation: train a :class:`gennape.pretrain.student.GennapeStudent` on a teacher's predictions.

``distill(teacher, cgs)`` needs no labels: the teacher (any fitted estimator
or ensemble with ``predict_details``) predicts every graph of ``cgs`` once,
and the student is trained to reproduce, per graph,

- the teacher's score less its size term (``score - b * size``, ``size`` the teacher's size measure: the
  slope ``b`` is read from the teacher, :func:`size_slope`, and added back
  exactly at prediction, so only the part the GNN makes is learned),
- its OOD score, and
- its uncertainty ``accuracy_std``, where the teacher has one (an ensemble).

The loss is the mean squared error of the standardised targets, the score
weighted 1 and the other two :data:`AUX_WEIGHT` each. A held-out share of the
graphs (``val_fraction``) measures the fit (Spearman and R^2 of the student's
score against the teacher's), recorded in ``distill_info_``.

The student reads its inputs as the teacher does: it copies the teacher's op
encoding mask (op types the teacher never saw are zeroed) and numeric feature
range (clamping), so a column the teacher ignores cannot matter to the
student either; a teacher without them gets the distillation graphs' own.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from gennape.pretrain.size_measure import pack_size
from gennape.pretrain.student import OUTPUTS, GennapeStudent

#: Loss weight of the OOD score and uncertainty targets (the score's is 1).
AUX_WEIGHT = 0.25


def size_slope(teacher) -> float:
    """The slope ``b`` of ``teacher``'s size term on its size measure (:func:`size_measure`): an
    estimator's ``capacity_[1]``, an ensemble's members' mean (their scores are
    averaged, so their terms are), 0 for a teacher without one."""
    members = getattr(teacher, "members_", None)
    if members is not None:
        return float(np.mean([size_slope(m) for m in members]))
    capacity = getattr(teacher, "capacity_", None)
    return 0.0 if capacity is None else float(capacity[1])


def size_measure(teacher) -> str:
    """The size measure (:mod:`gennape.pretrain.size_measure`) of ``teacher``'s size
    term; an ensemble's members share their parameters, hence it."""
    return getattr(_first(teacher), "size_measure", "weights")


def _first(teacher):
    """The estimator whose encoder, target transform and OOD threshold stand for the teacher's."""
    members = getattr(teacher, "members_", None)
    return members[0] if members else teacher


def teacher_targets(teacher, pack, batch_size: int = 1024, progress=None) -> dict[str, np.ndarray]:
    """The teacher's ``score``, ``ood_score`` and ``accuracy_std`` ``[n]`` of every graph of ``pack``."""
    parts: dict[str, list] = {k: [] for k in OUTPUTS}
    with torch.inference_mode():
        for start in range(0, len(pack), batch_size):
            index = np.arange(start, min(start + batch_size, len(pack)))
            out = teacher.predict_details(pack.subset(index))
            for k in OUTPUTS:
                parts[k].append(np.asarray(out.get(k, np.full(len(index), np.nan)), dtype=np.float64))
            if progress is not None:
                progress(len(index))
    return {k: np.concatenate(v) for k, v in parts.items()}


def distill(teacher, cgs, *, targets: dict[str, np.ndarray] | None = None, teacher_info: dict | None = None,
            on_epoch=None, **params) -> GennapeStudent:
    """A :class:`GennapeStudent` fitted to ``teacher``'s predictions on ``cgs``:
    ``GennapeStudent(**params).fit(cgs, teacher, ...)``.

    Args:
        teacher: a fitted estimator or ensemble (``predict_details``).
        cgs: unlabelled graphs (list of CGs or a :class:`gennape.pretrain.packed.GraphPack`).
        targets: the teacher's outputs if already computed (:func:`teacher_targets`).
        teacher_info: what to record about the teacher (e.g. its checkpoint hash).
        on_epoch: called as ``on_epoch(epoch, train_loss)`` after each epoch.
        **params: :class:`GennapeStudent` parameters (size, epochs, lr, seed, ...).
    """
    return GennapeStudent(**params).fit(cgs, teacher, targets=targets, teacher_info=teacher_info, on_epoch=on_epoch)


def fit_student(student: GennapeStudent, teacher, cgs, *, targets=None, teacher_info=None,
                on_epoch=None) -> GennapeStudent:
    """Train ``student`` (its parameters: size, epochs, batch size, AdamW
    ``lr`` / ``weight_decay`` with a cosine schedule, ``val_fraction`` held out,
    ``seed``) on ``teacher``'s outputs for ``cgs``; sets its fitted state and returns it
    (:meth:`GennapeStudent.fit`)."""
    from gennape.pretrain.estimator import as_pack
    from gennape.pretrain.metrics import spearman

    epochs, batch_size, seed, device = student.epochs, student.batch_size, student.seed, student.device
    val_fraction = student.val_fraction
    pack = as_pack(cgs)
    n = len(pack)
    if n < 10:
        raise ValueError(f"distillation needs at least 10 graphs, got {n}")
    t = targets if targets is not None else teacher_targets(teacher, pack)
    slope, measure = size_slope(teacher), size_measure(teacher)
    has_std = bool(np.all(np.isfinite(t["accuracy_std"])))
    outputs = OUTPUTS if has_std else OUTPUTS[:2]
    y = np.stack([t["score"] - slope * pack_size(pack, measure), t["ood_score"]]
                 + ([t["accuracy_std"]] if has_std else []), axis=1)
    if not np.all(np.isfinite(y)):
        raise ValueError("the teacher gave non-finite scores or OOD scores")

    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_val = max(1, int(round(val_fraction * n))) if val_fraction > 0 else 0
    val, train = np.sort(order[:n_val]), order[n_val:]
    mean, std = y[train].mean(axis=0), y[train].std(axis=0)
    std[std == 0] = 1.0

    first = _first(teacher)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = student._new_net(len(outputs))
    _copy_inputs(net, first, pack)
    net.target_mean = torch.as_tensor(mean, dtype=torch.float64, device=device)
    net.target_std = torch.as_tensor(std, dtype=torch.float64, device=device)
    y_std = torch.as_tensor((y - mean) / std, dtype=torch.float32, device=device)
    weights = torch.tensor([1.0] + [AUX_WEIGHT] * (len(outputs) - 1), device=device)

    opt = torch.optim.AdamW(net.parameters(), lr=student.lr, weight_decay=student.weight_decay)
    steps = epochs * math.ceil(len(train) / batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    gen = torch.Generator().manual_seed(seed)
    net.train()
    history = []
    for epoch in range(epochs):
        perm = train[torch.randperm(len(train), generator=gen).numpy()]
        total = 0.0
        for start in range(0, len(perm), batch_size):
            idx = perm[start:start + batch_size]
            b = pack.collate(idx, device=device)
            pred = net(b.x, b.edge_index, b.batch, len(idx))
            loss = (((pred - y_std[torch.as_tensor(idx, device=device)]) ** 2).mean(dim=0) * weights).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
            total += float(loss.detach()) * len(idx)
        history.append(total / len(train))
        if on_epoch is not None:
            on_epoch(epoch + 1, history[-1])
    net.eval()

    student.net_ = net
    student.outputs_ = outputs
    student.size_slope_, student.size_measure_ = slope, measure
    transform = getattr(first, "target_transform_", None)
    student.target_transform_ = transform
    student.ood_threshold_ = float(getattr(first, "ood_threshold_", math.inf))
    label = teacher.label() if callable(getattr(teacher, "label", None)) else None
    student.teacher_ = {"estimator": type(teacher).__name__, "label": label, **(teacher_info or {})}
    fit = {}
    if n_val:
        got = student._outputs(pack.subset(val))
        fit = {"val_score_spearman": spearman(got[:, 0], t["score"][val]),
               "val_score_r2": _r2(got[:, 0], t["score"][val]),
               "val_ood_spearman": spearman(got[:, 1], t["ood_score"][val])}
    student.distill_info_ = {"n_graphs": n, "n_val": n_val, "train_loss": history, **fit}
    student.metadata_ = {}
    return student


def _copy_inputs(net, teacher, pack) -> None:
    """The teacher encoder's op mask and feature range into ``net`` (see the module docstring)."""
    encoder = getattr(getattr(teacher, "model_", None), "encoder", None)
    with torch.no_grad():
        if encoder is not None and encoder.op_encoding.encoding == net.op_encoding.encoding:
            net.op_encoding.seen.copy_(encoder.op_encoding.seen)
            net.feature_range.low.copy_(encoder.feature_range.low)
            net.feature_range.high.copy_(encoder.feature_range.high)
        else:
            net.op_encoding.set_seen(torch.as_tensor(pack.feature_presence()))
            low, high = pack.numeric_range()
            net.feature_range.set_range(np.minimum(low, 0), np.maximum(high, 0))


def _r2(pred: np.ndarray, true: np.ndarray) -> float:
    var = float(np.var(true))
    return float(1 - np.mean((pred - true) ** 2) / var) if var > 0 else float("nan")


__all__ = ["AUX_WEIGHT", "distill", "fit_student", "size_measure", "size_slope", "teacher_targets"]
