"""The ONNX importer: any ONNX model (opsets 7 to 21) -> canonical CG.

One small handler per ONNX op type (:mod:`gennape.cg.onnx_import.handlers`), registered
with :func:`gennape.cg.onnx_import.registry.register`; the canonical rules of
:mod:`gennape.cg.graph` are applied by the passes in :mod:`gennape.cg.onnx_import.canonical`.
The importer reads shapes only, never weight data.
"""

from gennape.cg.onnx_import.importer import UNKNOWN_OPS_CHOICES, from_onnx
from gennape.cg.onnx_import.registry import register, supported_ops

__all__ = ["from_onnx", "register", "supported_ops", "UNKNOWN_OPS_CHOICES"]
