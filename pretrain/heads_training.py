"""Training the fuzzy heads on frozen embeddings.

Each sample's loss on head ``k`` is weighted by its membership ``u_k``, so a
head learns mostly from its own cluster (GENNAPE's per-cluster predictors);
a pairwise ranking term on the aggregated prediction serves what the
estimator is judged by, rank correlation. The encoder is frozen here, so an
epoch over 24k embeddings costs milliseconds and the heads can train long.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from gennape.heads.fuzzy_heads import FuzzyHeads
from gennape.pretrain import distributed
from gennape.pretrain.losses import pairwise_rank_loss


@dataclass
class HeadsConfig:
    """Hyperparameters of head training."""

    epochs: int = 150
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    rank_weight: float = 1.0


def heads_loss(heads: FuzzyHeads, emb: torch.Tensor, u: torch.Tensor, y: torch.Tensor,
               rank_weight: float, gather=None) -> torch.Tensor:
    """Membership-weighted MSE of every head plus the ranking term.

    Args:
        gather: data-parallel training passes only this rank's rows in ``emb``
            and a function gathering the heads' outputs of the whole batch
            (:func:`gennape.pretrain.distributed.gather_rows`).

    Shapes:
        - emb ``[n, d]`` (``gather``: this rank's rows), u ``[n, K]``, y ``[n]``; output scalar
    """
    per_head = heads.per_head(emb)
    if gather is not None:
        per_head = gather(per_head)
    mse = ((per_head - y.unsqueeze(1)) ** 2 * u).sum(dim=1).mean()
    if rank_weight == 0:
        return mse
    return mse + rank_weight * pairwise_rank_loss((per_head * u).sum(dim=1), y)


def train_heads(heads: FuzzyHeads, emb: np.ndarray, u: np.ndarray, y: np.ndarray, cfg: HeadsConfig,
                gen: torch.Generator, val: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                device="cpu") -> dict[str, float]:
    """Train ``heads`` in place; with ``val`` = (emb, u, y) keep the epoch of best
    validation Spearman. Returns ``{"epochs", "best_epoch", "val_spearman"}``.

    Under torchrun the batches are split over the ranks as in
    :func:`gennape.pretrain.contrastive.pretrain_epoch`."""
    from gennape.pretrain.metrics import rank_metrics

    emb_t = torch.as_tensor(emb, dtype=torch.float32, device=device)
    u_t = torch.as_tensor(u, dtype=torch.float32, device=device)
    y_t = torch.as_tensor(y, dtype=torch.float32, device=device)
    opt = torch.optim.AdamW(heads.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.epochs, 1))
    best = (-np.inf, 0, None)
    n = len(y)
    dp = distributed.current()
    for epoch in range(cfg.epochs):
        heads.train()
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, cfg.batch_size):
            idx = order[start:start + cfg.batch_size]
            if len(idx) < distributed.min_batch(dp):
                continue
            if dp is None:
                loss = heads_loss(heads, emb_t[idx], u_t[idx], y_t[idx], cfg.rank_weight)
            else:
                loss = heads_loss(heads, emb_t[distributed.local_part(idx, dp)], u_t[idx], y_t[idx],
                                  cfg.rank_weight, gather=lambda t, n=len(idx): distributed.gather_rows(t, n, dp))
            opt.zero_grad()
            loss.backward()
            if dp is not None:
                distributed.average_gradients(heads.parameters(), dp)
            opt.step()
        sched.step()
        if val is not None and (epoch % 5 == 4 or epoch == cfg.epochs - 1):
            rho = rank_metrics(predict_heads(heads, val[0], val[1], device), val[2])["spearman"]
            if rho > best[0]:
                best = (rho, epoch + 1, copy.deepcopy(heads.state_dict()))
    if best[2] is not None:
        heads.load_state_dict(best[2])
    return {"epochs": cfg.epochs, "best_epoch": best[1] or cfg.epochs,
            "val_spearman": float(best[0]) if best[2] is not None else float("nan")}


@torch.no_grad()
def predict_heads(heads: FuzzyHeads, emb: np.ndarray, u: np.ndarray, device="cpu") -> np.ndarray:
    heads.eval()
    out = heads(torch.as_tensor(emb, dtype=torch.float32, device=device),
                torch.as_tensor(u, dtype=torch.float32, device=device))
    return out.cpu().numpy().astype(np.float64)


__all__ = ["HeadsConfig", "heads_loss", "train_heads", "predict_heads"]
