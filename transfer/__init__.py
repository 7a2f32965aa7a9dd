"""Zero-shot prediction on unseen families and fine-tuning on a new family.

Python API (see :mod:`transfer.api`)::

    from transfer import predict_onnx, predict_module, finetune, evaluate, default_checkpoint

Modules: :mod:`transfer.metrics` (rank metrics), :mod:`transfer.labels`
(LABELS.csv), :mod:`transfer.predict` (streamed prediction and outputs),
:mod:`transfer.finetune`, :mod:`transfer.evaluate`, :mod:`transfer.plot`.
Importing :mod:`transfer` is cheap; torch loads on first use.
"""

from transfer.api import default_checkpoint, evaluate, finetune, predict_cgs, predict_module, predict_onnx

__all__ = ["predict_onnx", "predict_cgs", "predict_module", "finetune", "evaluate", "default_checkpoint"]
