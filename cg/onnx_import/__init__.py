"""The ONNX importer: any ONNX model (opsets 7 to 21) -> canonical CG.

One small handler per ONNX op type (:mod:`cg.onnx_import.handlers`), registered
with :func:`cg.onnx_import.registry.register`; the canonical rules of
:mod:`cg.graph` are applied by the passes in :mod:`cg.onnx_import.canonical`.
The importer reads shapes only, never weight data.
"""

from cg.onnx_import.importer import UNKNOWN_OPS_CHOICES, from_onnx
from cg.onnx_import.registry import register, supported_ops

__all__ = ["from_onnx", "register", "supported_ops", "UNKNOWN_OPS_CHOICES"]
