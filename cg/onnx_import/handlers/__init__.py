"""Op handlers, one small function per ONNX op type, grouped by kind.

Importing this package registers them all (see :mod:`gennape.cg.onnx_import.registry`).
"""

from gennape.cg.onnx_import.handlers import (  # noqa: F401
    activation,
    conv,
    elementwise,
    linear,
    norm,
    pool,
    shape,
)
