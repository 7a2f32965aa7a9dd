"""Computation graphs (CGs) of atomic operations: the common language of gennape.

``cg`` needs only onnx and numpy; torch is imported inside the few functions
that need it (PyG conversion, torch-module import, family networks), so that
``gennape convert`` starts fast.
"""

from gennape.cg.errors import ConversionError, GennapeError, UnsupportedOpsError
from gennape.cg.graph import CG, FORMAT_VERSION, GraphBuilder, Node
from gennape.cg.ops import OPS

__version__ = "0.1.0"


def from_onnx(model, input_shape=None, unknown_ops: str = "error") -> CG:
    """Build the CG of an ONNX model (a path, bytes or ``onnx.ModelProto``).

    See :func:`gennape.cg.onnx_import.from_onnx`.
    """
    from gennape.cg.onnx_import import from_onnx as _from_onnx

    return _from_onnx(model, input_shape=input_shape, unknown_ops=unknown_ops)


__all__ = [
    "CG", "Node", "GraphBuilder", "OPS", "FORMAT_VERSION", "from_onnx",
    "GennapeError", "ConversionError", "UnsupportedOpsError", "__version__",
]
