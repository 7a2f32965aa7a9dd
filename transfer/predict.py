"""Zero-shot prediction over many ONNX files, streamed in chunks.

:func:`predict_files` converts and predicts ``chunk_size`` files at a time and
keeps only a few numbers per model (:class:`ModelPrediction`), so memory does
not grow with the number of files: the CGs of one chunk are dropped once it
is predicted (with ``workers`` > 1 the next chunk converts in worker
processes meanwhile, :mod:`gennape.transfer.workers`). A file that cannot be
converted (or predicted) becomes a :class:`FailedModel` with its one-line
cause; the others are predicted.

Ranks are among the successfully predicted inputs, 1 = highest predicted
accuracy, ties share the best rank.

Every output says what the number means: :attr:`PredictionRun.scale` names
the label the checkpoint was trained on (:meth:`gennape.pretrain.base.EstimatorBase.label`:
the pretraining label, e.g. NAS-Bench-101's CIFAR-10 validation accuracy, so
a network of another task and dataset gets a figure that is meaningful only as
a rank; or "your labels (LABELS.csv)" after ``gennape finetune``), and
``accuracy_std`` is each prediction's uncertainty on the same scale (a seed
ensemble's spread over its members; empty for a single estimator, which has
no spread to measure it by). ``params`` and ``macs`` are the network's cost as
the CG counts it (:attr:`gennape.cg.graph.CG.params`, :attr:`~gennape.cg.graph.CG.macs`),
so a ranking can be read against what each network costs, and checked against
the two size baselines (``gennape evaluate`` prints their Spearman).
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from gennape.cg.errors import ConversionError, GennapeError

#: Files converted and predicted together; bounds memory, amortises batching.
#: The default of every API function and command-line option that streams files.
DEFAULT_CHUNK = 64


@dataclass
class ModelPrediction:
    """What ``gennape predict`` reports for one model.

    Args:
        path: the model file (or a description of an in-memory model).
        predicted_accuracy: on the checkpoint's accuracy scale (:attr:`PredictionRun.scale`), as a fraction.
        memberships: fuzzy membership in each of the checkpoint's clusters (sums to 1).
        ood_score: distance from the checkpoint's training data (see the estimator);
            larger is further.
        ood: whether ``ood_score`` exceeds the checkpoint's threshold.
        rank: 1 = best predicted among the inputs (filled by :func:`assign_ranks`).
        score: the unclipped prediction ``predicted_accuracy`` is clipped from
            (the estimator's ``score``); ranks use it so clipping creates no ties.
            ``None``: rank by ``predicted_accuracy``. Not written to outputs.
        accuracy_std: the predicted uncertainty of ``predicted_accuracy``, as a
            fraction on the same scale: the standard deviation of an ensemble's
            members' accuracies; NaN (written empty / null) for a single estimator.
        params, macs: the CG's parameter count and multiply-accumulates
            (``None``, written empty / null, where no CG was at hand).
    """

    path: str
    predicted_accuracy: float
    memberships: tuple[float, ...]
    ood_score: float
    ood: bool
    rank: int = 0
    score: float | None = None
    accuracy_std: float = math.nan
    params: int | None = None
    macs: int | None = None

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "predicted_accuracy": self.predicted_accuracy,
            "accuracy_std": self.accuracy_std,
            "rank": self.rank,
            "memberships": list(self.memberships),
            "ood_score": self.ood_score,
            "ood": self.ood,
            "params": self.params,
            "macs": self.macs,
        }


@dataclass(frozen=True)
class FailedModel:
    """A model that could not be predicted, with the one-line cause."""

    path: str
    error: str


@dataclass
class PredictionRun:
    """The results of one prediction run, ranked; ``scale`` names what the
    predicted accuracies are (the checkpoint's label, see the module docstring)."""

    predictions: list[ModelPrediction] = field(default_factory=list)
    failures: list[FailedModel] = field(default_factory=list)
    checkpoint: str = ""
    scale: str = ""

    @property
    def ranked(self) -> list[ModelPrediction]:
        return sorted(self.predictions, key=lambda p: (p.rank, p.path))


# ------------------------------------------------------------------ inputs
def collect_onnx(paths: Iterable[str | Path]) -> list[Path]:
    """The ``.onnx`` files named by ``paths``: files as given, folders searched
    recursively (sorted). A path that does not exist is a :class:`GennapeError`.
    Duplicates are listed once, in first-seen order.

    Entries that exist but are not regular files (a FIFO, device or socket) are
    listed too, so that :func:`convert_file` reports each as a per-file failure
    ("not a regular file", without opening it) instead of dropping it silently.
    """
    found: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*.onnx") if p.exists() and not p.is_dir())
        elif path.exists():
            files = [path]
        else:
            raise GennapeError(f"{path}: no such file or folder")
        for f in files:
            key = f.resolve()
            if key not in seen:
                seen.add(key)
                found.append(f)
    return found


# --------------------------------------------------------------- predicting
def convert_file(path: Path, input_shape=None, unknown_ops: str = "error"):
    """The CG of one file, or a :class:`FailedModel` saying why not."""
    from gennape.cg import from_onnx

    try:
        return from_onnx(path, input_shape=input_shape, unknown_ops=unknown_ops)
    except ConversionError as err:
        return FailedModel(str(path), err.cause)
    except GennapeError as err:
        return FailedModel(str(path), str(err))
    except MemoryError:
        return FailedModel(str(path), "out of memory while converting")
    except Exception as err:  # an importer bug must not sink the other files
        return FailedModel(str(path), f"internal error while converting: {type(err).__name__}: {err}")


def predict_cgs(estimator, cgs: list, names: list[str]) -> list[ModelPrediction]:
    """Predictions for CGs already in memory (one batch)."""
    from gennape.transfer.model import score_cgs

    scores = score_cgs(estimator, cgs)
    return [
        ModelPrediction(name, float(acc), tuple(float(u) for u in mem), float(ood), bool(flag), score=float(s),
                        accuracy_std=float(std), params=int(cg.params), macs=int(cg.macs))
        for name, cg, acc, s, mem, ood, flag, std in zip(
            names, cgs, scores.accuracy, scores.score, scores.memberships, scores.ood_score, scores.ood,
            scores.accuracy_std, strict=True
        )
    ]


def predict_files(
    files: Sequence[Path],
    estimator,
    *,
    input_shape=None,
    unknown_ops: str = "error",
    chunk_size: int = DEFAULT_CHUNK,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> PredictionRun:
    """Convert and predict ``files`` chunk by chunk; rank the results.

    Args:
        files: ONNX files (see :func:`collect_onnx`).
        estimator: a fitted estimator (see :mod:`gennape.transfer.model`).
        input_shape: forwarded to :func:`gennape.cg.from_onnx` for models with
            symbolic dims (checked once here: a malformed one raises
            :class:`gennape.cg.import_options.InputShapeError`).
        unknown_ops: forwarded to :func:`gennape.cg.from_onnx`.
        chunk_size: files converted and predicted together.
        workers: processes converting the files (:mod:`gennape.transfer.workers`);
            the result is the same for any number.
        progress: called as ``progress(done, total)`` after every chunk.
    """
    from gennape.cg.import_options import parse_input_shape
    from gennape.transfer.model import label_of
    from gennape.transfer.workers import converted_chunks

    files = list(files)
    input_shape = parse_input_shape(input_shape)
    run = PredictionRun(scale=label_of(estimator))
    done = 0
    for results in converted_chunks(files, chunk_size, workers, input_shape=input_shape, unknown_ops=unknown_ops):
        cgs, names = [], []
        for path, result in zip(files[done:done + len(results)], results):
            if isinstance(result, FailedModel):
                run.failures.append(result)
            else:
                cgs.append(result)
                names.append(str(path))
        if cgs:
            run.predictions.extend(_predict_or_fail(estimator, cgs, names, run.failures))
        done += len(results)
        if progress is not None:
            progress(done, len(files))
        del cgs
    assign_ranks(run.predictions)
    return run


def _predict_or_fail(estimator, cgs, names, failures) -> list[ModelPrediction]:
    """Predict a chunk; if the batch fails, retry one by one so only the culprit fails."""
    try:
        return predict_cgs(estimator, cgs, names)
    except GennapeError:
        raise  # checkpoint-level problems concern every file
    except Exception:
        if len(cgs) == 1:
            failures.append(FailedModel(names[0], f"prediction failed: {sys.exc_info()[1]}"))
            return []
    out = []
    for cg, name in zip(cgs, names):
        out.extend(_predict_or_fail(estimator, [cg], [name], failures))
    return out


def assign_ranks(predictions: list[ModelPrediction]) -> None:
    """Rank 1 = highest prediction; equal predictions share the best rank.

    Ranks by the unclipped ``score`` where present, so networks whose accuracy
    is clipped to 0 or 1 stay in order."""
    def key(p: ModelPrediction) -> float:
        return p.predicted_accuracy if p.score is None else p.score

    order = sorted(range(len(predictions)), key=lambda i: -key(predictions[i]))
    rank = 0
    previous = None
    for position, i in enumerate(order, start=1):
        value = key(predictions[i])
        if value != previous:
            rank, previous = position, value
        predictions[i].rank = rank


# ------------------------------------------------------------------ outputs
def format_table(run: PredictionRun, max_path: int = 60) -> str:
    """A fixed-width table, best first: rank, accuracy (%), its uncertainty
    (``std%``, ``-`` where there is none), OOD, parameters and MACs (``-``
    where unknown), memberships, path; below it, the scale the accuracies are
    on (when known)."""
    width = _mem_width(run)
    lines = [f"{'rank':>5}  {'accuracy%':>9}  {'std%':>5}  {'ood_score':>9}  {'ood':<3}  {'params':>7}  {'MACs':>7}  "
             f"{'memberships':<{width}}  path"]
    for p in run.ranked:
        mem = " ".join(f"{u:.2f}" for u in p.memberships)
        path = p.path if len(p.path) <= max_path else "..." + p.path[-(max_path - 3):]
        std = f"{100 * p.accuracy_std:.2f}" if math.isfinite(p.accuracy_std) else "-"
        lines.append(
            f"{p.rank:>5}  {100 * p.predicted_accuracy:>9.2f}  {std:>5}  {p.ood_score:>9.3f}  "
            f"{'yes' if p.ood else 'no':<3}  {_count(p.params):>7}  {_count(p.macs):>7}  {mem:<{width}}  {path}"
        )
    if run.scale:
        lines.append(f"accuracy% is on the scale of: {run.scale}")
    return "\n".join(lines)


def _count(n: int | None) -> str:
    """``n`` in at most 7 characters: ``950``, ``3.50K``, ``25.56M``, ``4.09G`` (``-`` for None)."""
    if n is None:
        return "-"
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}" if n / scale < 100 else f"{n / scale:.0f}{unit}"
    return str(n)


def _mem_width(run: PredictionRun) -> int:
    k = len(run.predictions[0].memberships) if run.predictions else 0
    return max(len("memberships"), 5 * k - 1)


def to_csv(run: PredictionRun) -> str:
    """CSV, best first, then failures: ``path,predicted_accuracy,accuracy_std,scale,
    rank,ood_score,ood,params,macs,membership_0..membership_{K-1},error`` (``accuracy_std``,
    ``params``, ``macs`` empty where there is none; ``scale`` the same on every prediction row)."""
    k = max((len(p.memberships) for p in run.predictions), default=0)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["path", "predicted_accuracy", "accuracy_std", "scale", "rank", "ood_score", "ood", "params", "macs",
                *(f"membership_{i}" for i in range(k)), "error"])
    for p in run.ranked:
        std = repr(p.accuracy_std) if math.isfinite(p.accuracy_std) else ""
        w.writerow([p.path, repr(p.predicted_accuracy), std, run.scale, p.rank, repr(p.ood_score), int(p.ood),
                    "" if p.params is None else p.params, "" if p.macs is None else p.macs,
                    *(repr(u) for u in p.memberships), ""])
    for f in run.failures:
        w.writerow([f.path, "", "", "", "", "", "", "", "", *([""] * k), f.error])
    return buf.getvalue()


def to_json(run: PredictionRun) -> str:
    """``{"checkpoint", "scale", "predictions": [...best first], "failures": [{"path", "error"}]}``
    (``accuracy_std`` null where there is none)."""
    return json.dumps({
        "checkpoint": run.checkpoint,
        "scale": run.scale,
        "predictions": [json_ready(p.to_dict()) for p in run.ranked],
        "failures": [{"path": f.path, "error": f.error} for f in run.failures],
    }, indent=1)


def json_ready(d: dict) -> dict:
    """``d`` with non-finite floats as None: JSON has no NaN / inf, so they are written as null."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def check_output_path(path: str | Path) -> Path:
    """``path`` if it can take a prediction file (``.csv`` / ``.json`` in an
    existing folder), else a one-line :class:`GennapeError`; checked before the
    slow part too."""
    path = Path(path)
    if path.suffix.lower() not in (".csv", ".json"):
        raise GennapeError(f"{path}: output must end in .csv or .json")
    if not path.parent.is_dir():
        raise GennapeError(f"{path}: folder {path.parent} does not exist")
    return path


def write_output(run: PredictionRun, path: str | Path) -> None:
    """Write ``.csv`` or ``.json`` (by extension) atomically."""
    from gennape.cg.atomic import write_text_atomic

    path = check_output_path(path)
    write_text_atomic(path, to_csv(run) if path.suffix.lower() == ".csv" else to_json(run))


class Progress:
    """``predict_files``' ``progress(done, total)`` callback: a
    :func:`gennape.pretrain.progress.progress` bar (drawn only on a terminal's
    stderr), and nothing at all for fewer than ``min_total`` files."""

    def __init__(self, label: str, stream=None, min_total: int = 20):
        self.label = label
        self.stream = stream
        self.min_total = min_total
        self._bar = None

    def __call__(self, done: int, total: int) -> None:
        if total < self.min_total:
            return
        if self._bar is None:
            from gennape.pretrain.progress import progress

            self._bar = progress(total=total, desc=self.label, stream=self.stream, unit="file")
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


__all__ = [
    "ModelPrediction", "FailedModel", "PredictionRun", "collect_onnx",
    "convert_file", "predict_cgs", "predict_files", "assign_ranks", "format_table", "to_csv",
    "to_json", "json_ready", "check_output_path", "write_output", "Progress", "DEFAULT_CHUNK",
]
