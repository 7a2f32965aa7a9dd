"""Rank correlation of a checkpoint's predictions against labelled ONNX models,
beside the two size baselines on the same models.

A predictor that does not rank a family better than counting its weights or
its MACs has learned nothing there, so every evaluation also reports the
Spearman of ``#params`` and of MACs (the CG's counts) with the same labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gennape.cg.errors import GennapeError
from gennape.transfer.labels import Labels
from gennape.transfer.predict import DEFAULT_CHUNK, FailedModel, predict_files


@dataclass
class Evaluation:
    """Metrics of one evaluation and the pairs they came from.

    Attributes:
        metrics: :func:`gennape.pretrain.metrics.all_metrics` (``n`` counts predicted models).
        pred, true: accuracies as fractions, in label order, failures left out.
        paths: the evaluated files, aligned with ``pred``.
        failures: files that could not be predicted (left out of the metrics).
        excluded: rows dropped because ``--exclude`` listed them.
        baselines: Spearman with ``true`` of ranking by ``params`` and by
            ``flops`` (the CG's MACs), on the same models.
    """

    metrics: dict
    pred: np.ndarray
    true: np.ndarray
    paths: list[str]
    failures: list[FailedModel] = field(default_factory=list)
    excluded: int = 0
    baselines: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {**self.metrics, **{f"{name}_spearman": rho for name, rho in self.baselines.items()},
                "failed": len(self.failures), "excluded": self.excluded}


def evaluate_labels(labels: Labels, estimator, *, exclude: Labels | None = None, input_shape=None,
                    unknown_ops: str = "error", chunk_size: int = DEFAULT_CHUNK, progress=None) -> Evaluation:
    """Predict every labelled file (minus ``exclude``) and compare with the labels.

    Raises :class:`GennapeError` when fewer than two models remain to compare.
    """
    from gennape.pretrain.metrics import all_metrics, spearman

    rows = labels.exclude(exclude) if exclude is not None else labels
    excluded = len(labels) - len(rows)
    if len(rows) < 2:
        raise GennapeError(f"{labels.source}: {len(rows)} row(s) left to evaluate, need at least 2")
    run = predict_files(rows.paths, estimator, input_shape=input_shape, unknown_ops=unknown_ops,
                        chunk_size=chunk_size, progress=progress)
    predicted = {p.path: p for p in run.predictions}
    kept = [(str(r.path), predicted[str(r.path)], r.accuracy) for r in rows.rows if str(r.path) in predicted]
    if len(kept) < 2:
        causes = "; ".join(f"{f.path}: {f.error}" for f in run.failures[:3])
        raise GennapeError(f"{labels.source}: only {len(kept)} model(s) could be predicted ({causes})")
    paths = [k[0] for k in kept]
    pred = np.array([k[1].predicted_accuracy for k in kept])
    score = np.array([k[1].predicted_accuracy if k[1].score is None else k[1].score for k in kept])
    true = np.array([k[2] for k in kept])
    baselines = {name: spearman(np.array([getattr(k[1], attr) for k in kept], dtype=np.float64), true)
                 for name, attr in (("params", "params"), ("flops", "macs"))}
    return Evaluation(all_metrics(pred, true, rank_by=score), pred, true, paths, run.failures, excluded, baselines)


def format_metrics(ev: Evaluation, source: str | Path = "") -> str:
    """Human-readable lines."""
    m = ev.metrics
    lines = [
        f"models evaluated   {m['n']}" + (f"  ({source})" if source else ""),
        f"Spearman           {m['spearman']:.4f}",
        f"Kendall tau-b      {m['kendall']:.4f}",
        f"NDCG@10            {m['ndcg10']:.4f}",
        f"precision top 10%  {m['precision_top10']:.4f}",
        f"MAE (acc. points)  {100 * m['mae']:.2f}",
    ]
    if ev.baselines:
        lines += [f"Spearman, #params  {ev.baselines['params']:.4f}  (size baselines, same models)",
                  f"Spearman, FLOPs    {ev.baselines['flops']:.4f}"]
    if ev.excluded:
        lines.append(f"excluded           {ev.excluded}")
    if ev.failures:
        lines.append(f"failed             {len(ev.failures)}")
    return "\n".join(lines)


__all__ = ["Evaluation", "evaluate_labels", "format_metrics"]
