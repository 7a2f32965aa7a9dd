"""Zero-shot prediction on unseen families and fine-tuning on a new family.

Python API (see :mod:`gennape.transfer.api`)::

    from gennape.transfer import predict_onnx, predict_module, finetune, evaluate, default_checkpoint

Modules: :mod:`gennape.transfer.labels` (LABELS.csv), :mod:`gennape.transfer.predict`
(streamed prediction and outputs), :mod:`gennape.transfer.finetune`,
:mod:`gennape.transfer.evaluate` (metrics from :mod:`gennape.pretrain.metrics`),
:mod:`gennape.transfer.plot`.
Importing :mod:`transfer` is cheap; torch loads on first use.
"""

from gennape.transfer.api import default_checkpoint, evaluate, finetune, predict_cgs, predict_module, predict_onnx

__all__ = ["predict_onnx", "predict_cgs", "predict_module", "finetune", "evaluate", "default_checkpoint"]
