"""The Python equivalents of ``gennape predict``, ``finetune`` and ``evaluate``.

Every function takes ``checkpoint``: a checkpoint folder, an already loaded
(fitted) estimator, or ``None`` for the shipped :func:`default_checkpoint`.

Example::

    from gennape.transfer import predict_onnx, predict_module
    run = predict_onnx(["my_model.onnx", "candidates/"])
    for p in run.ranked:
        print(p.rank, p.predicted_accuracy, p.ood, p.path)

    import torchvision
    p = predict_module(torchvision.models.resnet18(), (3, 224, 224))
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from gennape.cg.errors import GennapeError
from gennape.transfer.model import default_checkpoint, load_estimator
from gennape.transfer.predict import DEFAULT_CHUNK, ModelPrediction, PredictionRun


def _estimator(checkpoint):
    if checkpoint is None or isinstance(checkpoint, (str, Path)):
        return load_estimator(checkpoint)
    return checkpoint  # an estimator object


def predict_onnx(paths: str | Path | Sequence[str | Path], checkpoint=None, *, input_shape=None,
                 unknown_ops: str = "error", chunk_size: int = DEFAULT_CHUNK,
                 workers: int = 1) -> PredictionRun:
    """Predict ONNX files and folders (searched recursively), ranked.

    Files that fail are listed in ``run.failures``; nothing is raised for them.

    Args:
        paths: one path or several; folders contribute their ``*.onnx`` files.
        checkpoint: folder, estimator, or ``None`` for the shipped checkpoint.
        input_shape: first input's shape with batch, for symbolic dimensions.
        unknown_ops: ``"error"`` or ``"other"`` (see :func:`cg.from_onnx`).
        chunk_size: files converted and predicted together.
        workers: processes converting the files (same results for any number).
    """
    from gennape.transfer.predict import collect_onnx, predict_files

    if isinstance(paths, (str, Path)):
        paths = [paths]
    files = collect_onnx(paths)
    if not files:
        raise GennapeError(f"no .onnx files found in {', '.join(map(str, paths))}")
    run = predict_files(files, _estimator(checkpoint), input_shape=input_shape, unknown_ops=unknown_ops,
                        chunk_size=chunk_size, workers=workers)
    run.checkpoint = str(checkpoint) if isinstance(checkpoint, (str, Path)) else ("default" if checkpoint is None else "")
    return run


def predict_cgs(cgs: Sequence, checkpoint=None, names: Sequence[str] | None = None) -> PredictionRun:
    """Predict computation graphs already in memory, ranked among themselves."""
    from gennape.transfer.predict import assign_ranks, predict_cgs as _predict

    cgs = list(cgs)
    names = list(names) if names is not None else [c.name or f"cg{i}" for i, c in enumerate(cgs)]
    from gennape.transfer.model import label_of

    estimator = _estimator(checkpoint)
    predictions = _predict(estimator, cgs, names) if cgs else []
    assign_ranks(predictions)
    return PredictionRun(predictions, scale=label_of(estimator))


def predict_module(module, input_shape: Sequence[int], checkpoint=None, name: str | None = None) -> ModelPrediction:
    """Predict a ``torch.nn.Module``: exported to ONNX in memory, then converted
    (see :func:`gennape.cg.torch_import.export_module`: attention fast paths
    off, the dynamo exporter when the legacy one refuses, nothing printed).

    Args:
        module: the network (put in eval mode for the export; its mode is restored).
        input_shape: shape of one input sample, batch excluded, e.g. ``(3, 224, 224)``.
        checkpoint: folder, estimator, or ``None`` for the shipped checkpoint.
        name: the name reported as ``path`` (default: the module's class name).

    Raises:
        GennapeError: the module cannot be exported or converted (one line
            naming the module and the cause).
    """
    from gennape.cg.torch_import import from_module

    cg = from_module(module, tuple(input_shape))  # GennapeError: one line naming the module
    return predict_cgs([cg], checkpoint, [name or type(module).__name__]).predictions[0]


def evaluate(labels, checkpoint=None, *, exclude=None, input_shape=None) -> dict:
    """Metrics of ``checkpoint`` on a LABELS.csv (path or :class:`gennape.transfer.labels.Labels`).

    Returns :meth:`gennape.transfer.evaluate.Evaluation.to_dict` (``n``, ``spearman``,
    ``kendall``, ``ndcg10``, ``precision_top10``, ``mae``, ``failed``,
    ``excluded``).
    """
    from gennape.transfer.evaluate import evaluate_labels

    return evaluate_labels(_as_labels(labels), _estimator(checkpoint), exclude=_as_labels(exclude),
                           input_shape=input_shape).to_dict()


def finetune(labels, checkpoint=None, out: str | Path | None = None, *, samples: int | None = None,
             epochs: int | None = None, seed: int = 0, mode: str = "select", refit_size_term: bool | str = "auto",
             input_shape=None):
    """Fine-tune on a LABELS.csv (path or :class:`gennape.transfer.labels.Labels`); see
    :mod:`gennape.transfer.finetune` for what is trained.

    Args:
        samples: use this many rows, drawn with ``seed`` (default: all).
        refit_size_term: ``"auto"``, ``"refit"`` or ``"keep"`` the size slope
            (see :class:`gennape.transfer.finetune.FinetuneConfig`).
        out: if given, save the checkpoint there (and ``labels_used.csv``, the
            rows it was tuned on, for ``evaluate(..., exclude=...)``).

    Returns:
        the fine-tuned estimator (``est.finetune_report_`` tells which files
        were used and which failed).
    """
    from gennape.transfer.finetune import DEFAULT_EPOCHS, FinetuneConfig, finetune_labels

    cfg = FinetuneConfig(mode=mode, epochs=epochs or DEFAULT_EPOCHS, seed=seed, refit_size_term=refit_size_term)
    return finetune_labels(_as_labels(labels), _estimator(checkpoint), cfg, samples=samples, out=out,
                           input_shape=input_shape)


def _as_labels(labels):
    from gennape.transfer.labels import Labels, read_labels

    if labels is None or isinstance(labels, Labels):
        return labels
    return read_labels(labels)


__all__ = ["predict_onnx", "predict_cgs", "predict_module", "evaluate", "finetune", "default_checkpoint"]
