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
               rank_weight: float) -> torch.Tensor:
    """Membership-weighted MSE of every head plus the ranking term.

    Shapes:
        - emb ``[n, d]``, u ``[n, K]``, y ``[n]``; output scalar
    """
    per_head = heads.per_head(emb)
    mse = ((per_head - y.unsqueeze(1)) ** 2 * u).sum(dim=1).mean()
    if rank_weight == 0:
        return mse
    return mse + rank_weight * pairwise_rank_loss((per_head * u).sum(dim=1), y)


def train_heads(heads: FuzzyHeads, emb: np.ndarray, u: np.ndarray, y: np.ndarray, cfg: HeadsConfig,
                gen: torch.Generator, val: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                device="cpu") -> dict[str, float]:
    """Train ``heads`` in place; with ``val`` = (emb, u, y) keep the epoch of best
    validation Spearman. Returns ``{"epochs", "best_epoch", "val_spearman"}``."""
    from gennape.pretrain.metrics import rank_metrics

    emb_t = torch.as_tensor(emb, dtype=torch.float32, device=device)
    u_t = torch.as_tensor(u, dtype=torch.float32, device=device)
    y_t = torch.as_tensor(y, dtype=torch.float32, device=device)
    opt = torch.optim.AdamW(heads.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.epochs, 1))
    best = (-np.inf, 0, None)
    n = len(y)
    for epoch in range(cfg.epochs):
        heads.train()
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, cfg.batch_size):
            idx = order[start:start + cfg.batch_size]
            if len(idx) < 2:
                continue
            loss = heads_loss(heads, emb_t[idx], u_t[idx], y_t[idx], cfg.rank_weight)
            opt.zero_grad()
            loss.backward()
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
