"""Fine-tuning a pretrained estimator on a few labelled networks of a new family.

What is fine-tuned (``mode``):

``encoder`` (default)
    The GNN encoder *and* the K fuzzy heads, end to end, starting from their
    pretrained state: encoder at a small learning rate (1e-4), heads at 5e-4,
    with the pretraining loss (membership-weighted MSE + pairwise ranking);
    embedding standardisation and cluster centres stay fixed, memberships are
    recomputed from the moving embeddings (differentiably).
``heads``
    Only the heads; encoder, standardisation and centres frozen
    (:meth:`gennape.pretrain.estimator.GennapeEstimator.fit_heads`). Cheaper, weaker.

Chosen by measurement (``benchmarks/transfer.py``, ``--mode encoder`` and
``--mode heads``, 50 networks, 5 seeds, Spearman on the other networks, a
five-seed sum-readout ensemble): NB-201 0.900 (encoder) vs 0.881 (heads), NB-301 0.654 vs
0.537, OFA-MobileNetV3 0.979 vs 0.972. The cluster centres are never moved:
with 50 networks a re-clustering would be mostly noise. Before training, the
capacity term's size slope and offset are refitted on the labelled networks
(``refit_size_term``, :func:`gennape.pretrain.capacity.refit_size_term`; how much size
buys differs between families) and its head weight kept; the heads then learn
what it leaves over. A seed ensemble fine-tunes each member on the same networks.

In both modes the target transform is refitted on the new labels, so the
saved checkpoint predicts on the new family's accuracy scale, and the new
networks' embeddings join the out-of-distribution reference set (the new
family is no longer "unseen").
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from gennape.cg.errors import GennapeError
from gennape.pretrain.progress import progress

MODES = ("heads", "encoder")
DEFAULT_EPOCHS = 100


@dataclass(frozen=True)
class FinetuneConfig:
    """Hyperparameters of a fine-tune.

    Args:
        mode: what is trained, one of :data:`MODES`.
        epochs: passes over the labelled set.
        lr: heads' learning rate.
        encoder_lr: encoder's learning rate (``mode="encoder"`` only).
        seed: seed of the training order (and the global states stay untouched).
        refit_size_term: refit the size term's slope and offset on the labels
            first (:func:`gennape.pretrain.capacity.refit_size_term`).
    """

    mode: str = "encoder"
    epochs: int = DEFAULT_EPOCHS
    lr: float = 5e-4
    encoder_lr: float = 1e-4
    seed: int = 0
    refit_size_term: bool = True

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown fine-tuning mode {self.mode!r}; valid modes: {', '.join(MODES)}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")


def choose_samples(n: int, samples: int | None, seed: int) -> np.ndarray:
    """Indices of ``samples`` rows out of ``n`` (all, in order, when None),
    drawn with a local generator seeded by ``seed``."""
    if samples is None or samples >= n:
        return np.arange(n)
    if samples < 2:
        raise GennapeError(f"--samples must be at least 2, got {samples}")
    return np.sort(np.random.default_rng(seed).choice(n, size=samples, replace=False))


def finetune_estimator(estimator, cgs: Sequence, y: Sequence[float], config: FinetuneConfig = FinetuneConfig()):
    """A fine-tuned copy of ``estimator`` (the argument is left unchanged).

    Args:
        estimator: a fitted :class:`gennape.pretrain.estimator.GennapeEstimator`.
        cgs: the labelled graphs (CGs).
        y: their accuracies as fractions.
        config: what and how long to train.
    """
    import torch

    from gennape.pretrain.estimator import as_pack

    y = np.asarray(y, dtype=np.float64)
    if len(cgs) != len(y):
        raise ValueError(f"{len(cgs)} graphs but {len(y)} accuracies")
    if len(y) < 2:
        raise GennapeError(f"fine-tuning needs at least 2 labelled networks, got {len(y)}")
    if np.ptp(y) == 0:
        raise GennapeError("fine-tuning needs labels that differ (all accuracies are equal)")
    # Featurise once: the size refit, the training and the OOD reference (of
    # every member) all read the same graphs.
    cgs = as_pack(cgs)
    if hasattr(estimator, "members_"):  # a seed ensemble: fine-tune every member on the same networks
        # Shallow: each member is copied (once) by its own fine-tune below.
        est = copy.copy(estimator)
        members = progress(estimator.members_, desc="fine-tuning ensemble members", unit="member")
        est.members_ = [finetune_estimator(m, cgs, y, config) for m in members]
        est.metadata_ = {**estimator.metadata_, "finetune": dict(est.members_[0].metadata_["finetune"])}
        return est
    from gennape.pretrain.targets import TargetTransform

    est = copy.deepcopy(estimator)
    # Predictions come out on the new family's accuracy scale.
    est.target_transform_ = TargetTransform(est.target_transform_.kind).fit(y)
    if config.refit_size_term:
        est.refit_size_term(cgs, y)
    pretrain_seed = est.seed
    est.seed = config.seed  # fit_heads seeds its training order from est.seed
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)  # dropout, if any
            if config.mode == "heads":
                est.fit_heads(cgs, y, epochs=config.epochs, lr=config.lr, refit_transform=False)
            else:
                _finetune_end_to_end(est, cgs, y, config)
    finally:
        est.seed = pretrain_seed
    emb = est.embed(cgs)
    est.reference_embeddings_ = np.concatenate([est.reference_embeddings_, emb]).astype(np.float64)
    est.metadata_ = {**getattr(est, "metadata_", {}), "finetune": {
        "mode": config.mode, "epochs": config.epochs, "lr": config.lr,
        "encoder_lr": config.encoder_lr if config.mode == "encoder" else None,
        "seed": config.seed, "n": int(len(y)), "refit_size_term": config.refit_size_term,
    }}
    return est


def _finetune_end_to_end(est, cgs, y: np.ndarray, config: FinetuneConfig) -> None:
    """Train encoder and heads together (``mode="encoder"``)."""
    import torch

    from gennape.heads.membership import fcm_membership
    from gennape.pretrain.capacity import head_target
    from gennape.pretrain.estimator import as_pack
    from gennape.pretrain.heads_training import heads_loss

    dev = est.device
    pack = as_pack(cgs)
    # The heads learn what the size term leaves over (gennape.pretrain.capacity).
    target = head_target(est.target_transform_.transform(y), pack.log_weights, est.capacity_)
    y_t = torch.as_tensor(target, dtype=torch.float32, device=dev)
    mean = torch.as_tensor(est.embedding_mean_, dtype=torch.float32, device=dev)
    std = torch.as_tensor(est.embedding_std_, dtype=torch.float32, device=dev)
    centers = torch.as_tensor(est.cluster_centers_, dtype=torch.float32, device=dev)
    opt = torch.optim.AdamW([
        {"params": est.encoder_.parameters(), "lr": config.encoder_lr},
        {"params": est.heads_.parameters(), "lr": config.lr},
    ], weight_decay=est.weight_decay)
    gen = torch.Generator().manual_seed(config.seed)
    batch_size = min(256, len(y))
    est.encoder_.train()
    est.heads_.train()
    for _ in progress(range(config.epochs), desc="fine-tuning encoder and heads", unit="epoch", leave=False):
        order = torch.randperm(len(y), generator=gen)
        for start in range(0, len(y), batch_size):
            idx = order[start:start + batch_size]
            if len(idx) < 2:
                continue
            x, ei, b = pack.batch(idx.numpy(), device=dev)
            emb = (est.encoder_(x, ei, b) - mean) / std
            u = fcm_membership(emb, centers, est.fuzzifier)
            loss = heads_loss(est.heads_, emb, u, y_t[idx.to(dev)], est.rank_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
    est.encoder_.eval()
    est.heads_.eval()


@dataclass
class FinetuneReport:
    """What a fine-tune from a labels file used.

    Attributes:
        used: the labelled rows trained on (converted successfully).
        failures: files that could not be converted (skipped).
    """

    used: list
    failures: list


def finetune_labels(labels, estimator, config: FinetuneConfig = FinetuneConfig(), *,
                    samples: int | None = None, out=None, input_shape=None, command: str = ""):
    """Fine-tune on ``samples`` rows of a :class:`gennape.transfer.labels.Labels` (all by default).

    Rows are drawn with ``config.seed`` before conversion (so 50 rows out of
    15,625 convert only 50 files); rows whose file fails to convert are
    skipped and reported in ``est.finetune_report_.failures``. With ``out``,
    the checkpoint is saved there (atomically) together with
    ``labels_used.csv``, the rows it was tuned on, ready for
    ``gennape evaluate --exclude``.
    """
    from pathlib import Path

    from gennape.transfer.labels import write_labels
    from gennape.transfer.predict import FailedModel, convert_file

    rows = [labels.rows[i] for i in choose_samples(len(labels), samples, config.seed)]
    cgs, used, failures = [], [], []
    for row in progress(rows, desc="converting labelled networks", unit="file"):
        result = convert_file(row.path, input_shape)
        if isinstance(result, FailedModel):
            failures.append(result)
        else:
            cgs.append(result)
            used.append(row)
    if len(used) < 2:
        causes = "; ".join(f"{f.path}: {f.error}" for f in failures[:3])
        raise GennapeError(f"{labels.source}: only {len(used)} labelled model(s) could be converted ({causes})")
    est = finetune_estimator(estimator, cgs, [r.accuracy for r in used], config)
    est.metadata_["finetune"].update({
        "labels": str(labels.source), "labels_scale": labels.scale, "failed": len(failures),
        **({"command": command} if command else {}),
    })
    est.finetune_report_ = FinetuneReport(used, failures)
    if out is not None:
        out = Path(out)
        est.save(out)
        write_labels(out / "labels_used.csv", [r.path for r in used], [r.accuracy for r in used])
    return est


__all__ = ["MODES", "DEFAULT_EPOCHS", "FinetuneConfig", "FinetuneReport", "choose_samples",
           "finetune_estimator", "finetune_labels"]
