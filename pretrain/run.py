"""The whole pretraining run behind ``gennape pretrain`` and ``benchmarks/pretrain.py``."""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Callable

from gennape.cg.atomic import write_text_atomic

METRICS_FILE = "metrics.json"


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def pretrain_nb101(data: str | Path, out: str | Path, *, limit: int | None = None, resume: bool = False,
                   views: bool = False, members: int = 1, command: str | None = None,
                   log: Callable[[str], None] = print, **params) -> dict:
    """Load NB-101, split 80/10/10 by hash, fit a :class:`GennapeEstimator`
    (or, with ``members`` > 1, a :class:`gennape.pretrain.ensemble.GennapeEnsemble`),
    report val/test Spearman and Kendall, save the checkpoint and ``metrics.json``.

    Launched by ``torchrun --nproc-per-node N``, the N processes train one model
    data-parallel (:mod:`gennape.pretrain.distributed`); rank 0 alone logs,
    evaluates and writes, and the checkpoint records ``world_size`` and
    ``distributed_backend``.

    Args:
        data: NB-101 JSON(.gz) or official tfrecord.
        out: checkpoint directory (its ``partial_state.pt`` serves ``resume``).
        limit: use only this many architectures (see :func:`gennape.pretrain.data.load_nb101`).
        resume: continue encoder training from ``out``'s partial state.
        views: add graph-level views (the training cells in other macro
            skeletons, :data:`gennape.pretrain.views.DEFAULT_VIEWS`) to the contrastive
            pairs (off by default: measured to lower zero-shot transfer).
        members: seed-ensemble members (seeds ``seed`` ... ``seed + members - 1``).
        command: the command line recorded in ``config.json``.
        log: where the per-epoch lines go.
        **params: :class:`GennapeEstimator` parameters.

    Returns:
        the metrics written to ``out/metrics.json`` (``{}`` on ranks other than 0).
    """
    from gennape.pretrain.distributed import process_group

    with process_group(params.get("device", "cpu")) as dp:
        return _pretrain(data, out, limit=limit, resume=resume, views=views, members=members, command=command,
                         log=log, dp=dp, **params)


def _pretrain(data, out, *, limit, resume, views, members, command, log, dp, **params) -> dict:
    import functools

    import torch

    from gennape.pretrain.checkpoint import sha256_file
    from gennape.pretrain.data import NB101_LABEL, load_nb101, pack_specs, split_indices
    from gennape.pretrain.ensemble import GennapeEnsemble
    from gennape.pretrain.estimator import GennapeEstimator
    from gennape.pretrain.metrics import rank_metrics
    from gennape.pretrain.progress import progress
    from gennape.pretrain.views import DEFAULT_VIEWS, pack_views

    main = dp is None or dp.rank == 0
    if not main:  # one log and one set of progress bars: rank 0's
        log = lambda line: None  # noqa: E731
        progress = functools.partial(progress, enabled=False)
    out = Path(out)
    t0 = time.perf_counter()
    dataset = load_nb101(data, limit=limit)
    split = split_indices(dataset.keys)
    if min(len(v) for v in split.values()) < 2:
        from gennape.cg.errors import GennapeError

        raise GennapeError(f"{data}: too few architectures ({len(dataset)}) for a train/val/test split")
    packs = {}
    view_packs = []
    n_views = len(DEFAULT_VIEWS) if views else 0
    with progress(total=len(dataset) + n_views * len(split["train"]), desc="building graphs") as bar:
        for name, idx in split.items():
            packs[name] = pack_specs([dataset.specs[i] for i in idx], progress=bar.update)
        if views:
            view_packs = pack_views([dataset.specs[i] for i in split["train"]], progress=bar.update)
    t_data = time.perf_counter() - t0
    packed = sum(p.nbytes() for p in [*packs.values(), *view_packs]) / 2**20
    log(f"data: {len(dataset)} architectures ({', '.join(f'{k} {len(v)}' for k, v in split.items())}), "
        f"{n_views} graph-level views, graphs built in {t_data:.1f}s, {packed:.0f} MiB packed")

    y = {name: dataset.accuracy[idx] for name, idx in split.items()}
    member = GennapeEstimator(**params)
    est = member if members == 1 else GennapeEnsemble(member, members)
    epoch_times: list[float] = []
    n_batches = -(-len(packs["train"]) // member.batch_size)
    state = {"bar": None, "t": time.perf_counter(), "member": ""}

    def on_batch():
        if state["bar"] is None:
            epoch = f"epoch {len(epoch_times) % member.epochs + 1}/{member.epochs}"
            state["bar"] = progress(total=n_batches, desc=state["member"] + epoch)
        state["bar"].update()

    def on_epoch(epoch: int, losses: dict):
        if state["bar"] is not None:
            state["bar"].close()
            state["bar"] = None
        now = time.perf_counter()
        epoch_times.append(now - state["t"])
        state["t"] = now
        log(f"epoch {epoch}/{member.epochs}: loss {losses['loss']:.4f} (contrastive {losses['contrastive']:.4f}, "
            f"supervised {losses['supervised']:.4f}) {epoch_times[-1]:.1f}s")

    t1 = time.perf_counter()
    def on_member(i: int):
        log(f"ensemble member {i + 1}/{members} (seed {member.seed + i})")
        state["member"] = f"member {i + 1}/{members} "
        state["t"] = time.perf_counter()  # the previous member's clustering and heads are not epoch time

    fit_kwargs = {"on_member": on_member} if members > 1 else {}
    est.fit(packs["train"], y["train"], eval_set=(packs["val"], y["val"]), views=view_packs, state_dir=out,
            resume=resume, on_epoch=on_epoch, on_batch=on_batch, **fit_kwargs)
    t_fit = time.perf_counter() - t1
    if not main:
        return {}

    def per_member(value):  # one value, or one per ensemble member
        return [value(m) for m in est.members_] if members > 1 else value(est)

    metrics = {
        # Rank metrics on the unclipped score: predict() clips, which could tie.
        "val": rank_metrics(est.predict_score(packs["val"]), y["val"]),
        "test": rank_metrics(est.predict_score(packs["test"]), y["test"]),
        "n_train": len(y["train"]),
        "fuzzy_partition_coefficient": per_member(lambda m: m.fpc_),
        "heads_best_epoch": per_member(lambda m: m.heads_info_["best_epoch"]),
        "epoch_seconds": epoch_times,
        "fit_seconds": t_fit,
        "data_seconds": t_data,
        "total_seconds": time.perf_counter() - t0,
        "peak_rss_mib": peak_rss_mib(),
        "torch_threads": torch.get_num_threads(),
        "world_size": dp.world_size if dp else 1,
    }
    log(f"NB-101 test: Spearman {metrics['test']['spearman']:.4f}, Kendall {metrics['test']['kendall']:.4f} "
        f"(n={metrics['test']['n']}); val Spearman {metrics['val']['spearman']:.4f}")
    data_path = Path(data).resolve()
    est.metadata_ = {
        "label": NB101_LABEL,
        "training_data": {"path": str(data_path), "sha256": sha256_file(data_path), "limit": limit,
                          "views": [vars(v) for v in DEFAULT_VIEWS] if views else [],
                          "split": "sha256(hash) % 10: 0-7 train, 8 val, 9 test"},
        "command": command if command is not None else " ".join(sys.argv),
        "world_size": dp.world_size if dp else 1,
        "distributed_backend": dp.backend if dp else None,
        "metrics": metrics,
    }
    est.save(out)
    write_text_atomic(out / METRICS_FILE, json.dumps(metrics, indent=1))
    return metrics


__all__ = ["pretrain_nb101", "peak_rss_mib", "METRICS_FILE"]
