"""Zero-shot prediction on unseen families and fine-tuning on a new family.

Python API (see :mod:`gennape.transfer.api`)::

    from gennape.transfer import predict_onnx, predict_module, finetune, evaluate, default_checkpoint

Modules: :mod:`gennape.transfer.labels` (LABELS.csv), :mod:`gennape.transfer.predict`
(streamed prediction and outputs), :mod:`gennape.transfer.finetune`,
:mod:`gennape.transfer.evaluate` (metrics from :mod:`gennape.pretrain.metrics`),
:mod:`gennape.transfer.plot`, :mod:`gennape.transfer.workers` (conversion in
worker processes).
Importing :mod:`gennape.transfer` is cheap: the API loads on first use (so a
command-line parser can import :mod:`gennape.transfer.predict`'s constants
without NumPy), torch later still.
"""

__all__ = ["predict_onnx", "predict_cgs", "predict_module", "finetune", "evaluate", "default_checkpoint"]


def __getattr__(name: str):
    if name in __all__:
        from gennape.transfer import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
