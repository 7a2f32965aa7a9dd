"""The multi-family pretraining run behind ``gennape pretrain --families`` (the shipped default checkpoint).

Every labelled family (all registered ones by default) contributes ``per_family``
networks, each labelled by the mean within-family quantile over the family's
label sets (:func:`gennape.pretrain.multifamily.load_all_label_sets`); one
estimator per seed is fitted by :func:`gennape.pretrain.multifamily.pretrain_families`
(size term fitted on out-of-family head scores). The in-domain figures in
``metrics.json`` are Spearman on networks of each family *not* trained on, with
the family's default label set; they say the model fits its training families,
not how it transfers (that is ``benchmarks/transfer.py --protocol lofo``).

:data:`RECIPE` is the one place the recipe's parameters live: the shipped
command passes them, and the leave-one-family-out benchmark trains with them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable, Sequence

from gennape.cg.atomic import write_text_atomic
from gennape.pretrain.run import METRICS_FILE, peak_rss_mib

#: The multi-family recipe's estimator parameters (chosen in advance, see docs/results.md).
RECIPE = {"epochs": 3, "head_epochs": 100, "readout": "mean", "size_measure": "macs", "head_trust": "constant",
          "head_shrink": 0.25}
#: Seeds of the training and the in-domain evaluation draws (disjoint networks).
TRAIN_SEED, EVAL_SEED = 1, 0


def pretrain_all_families(out: str | Path, *, families: Sequence[str] | None = None, per_family: int = 1000,
                          eval_per_family: int = 500, members: int = 1, command: str | None = None,
                          log: Callable[[str], None] = print, **params) -> dict:
    """Fit the multi-family estimator (an ensemble when ``members`` > 1), save it to ``out``
    with ``metrics.json``, and return the metrics.

    Args:
        out: checkpoint directory to write.
        families: family names (default: every registered family).
        per_family: training networks per family (seeded draw; all when fewer).
        eval_per_family: networks per family for the in-domain figures, drawn
            from those not trained on (fewer when the family has fewer left).
        members: seed-ensemble members.
        command: the command line recorded in ``config.json``.
        log: where progress lines go.
        **params: :class:`gennape.pretrain.estimator.GennapeEstimator` parameters.
    """
    import torch

    from gennape.cg.families import family_names
    from gennape.pretrain.metrics import spearman
    from gennape.pretrain.multifamily import load_all_label_sets, load_family_sample, pretrain_families

    names = list(families or family_names())
    t0 = time.perf_counter()
    samples = [load_all_label_sets(name, per_family, seed=TRAIN_SEED) for name in names]
    for s in samples:
        log(f"{s.title}: {len(s)} training networks")
    t_data = time.perf_counter() - t0
    log(f"fitting {members} member{'s' * (members > 1)} on {sum(len(s) for s in samples)} networks")
    est = pretrain_families(samples, members=members, **params)
    t_fit = time.perf_counter() - t0 - t_data
    in_domain = {}
    for s in samples:
        held = load_family_sample(s.name, eval_per_family, EVAL_SEED, exclude=s.keys)
        if len(held) >= 10:
            in_domain[s.name] = {"n": len(held), "spearman": spearman(est.predict_score(held.cgs), held.accuracy)}
            log(f"{s.name}: in-domain Spearman {in_domain[s.name]['spearman']:.3f} on {len(held)} networks "
                "not trained on")
    metrics = {"in_domain": in_domain, "data_seconds": t_data, "fit_seconds": t_fit,
               "total_seconds": time.perf_counter() - t0, "peak_rss_mib": peak_rss_mib(),
               "torch_threads": torch.get_num_threads(), "members": members}
    est.metadata_ = {**est.metadata_, "command": command, "metrics": metrics,
                     "training_data": {**est.metadata_["training_data"], "per_family": per_family,
                                       "train_seed": TRAIN_SEED,
                                       "sha256": {s.title: labels_sha256(s) for s in samples}}}
    out = Path(out)
    est.save(out)
    write_text_atomic(out / METRICS_FILE, json.dumps(metrics, indent=1))
    return metrics


def labels_sha256(sample) -> str:
    """SHA-256 of a training sample's labels (``key<TAB>accuracy`` lines): which
    networks and labels a checkpoint was trained on, whatever files they came from."""
    import hashlib

    text = "\n".join(f"{k}\t{float(a)!r}" for k, a in zip(sample.keys, sample.accuracy))
    return hashlib.sha256(text.encode()).hexdigest()


__all__ = ["EVAL_SEED", "RECIPE", "TRAIN_SEED", "labels_sha256", "pretrain_all_families"]
