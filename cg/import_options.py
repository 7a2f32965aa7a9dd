"""The options a caller passes to the ONNX importer, defined once for the
library and every command line: the first input's shape (``input_shape``) and
what to do with ops that have no handler (``unknown_ops``).

Imports nothing heavy, so that building a command-line parser stays cheap.
"""

from __future__ import annotations

import re
from typing import Sequence

from gennape.cg.errors import GennapeError

#: Valid values of ``unknown_ops``; the first is the default.
UNKNOWN_OPS_CHOICES = ("error", "other")


class InputShapeError(GennapeError, ValueError):
    """An input shape that is not a list of positive integers."""


def parse_input_shape(shape: str | Sequence[int] | None) -> tuple[int, ...] | None:
    """``"1x3x224x224"``, ``"1,3,224,224"``, ``"3 224 224"`` or a sequence of
    ints -> a tuple of ints; ``None`` stays ``None``.

    The batch dimension may be left out: the importer prepends 1 when the
    shape has one dimension fewer than the model's first input, so the rank
    decides, not the number of values (see
    :func:`gennape.cg.onnx_import.load.fix_input_shapes`).

    Raises:
        InputShapeError: not positive integers (a :class:`GennapeError` and a ValueError).
    """
    if shape is None:
        return None
    if isinstance(shape, str):
        parts = [p for p in re.split(r"[x,\s]+", shape.strip().lower()) if p]
        try:
            values = tuple(int(p) for p in parts)
        except ValueError:
            raise InputShapeError(f"input shape {shape!r}: expected integers like 1x3x224x224") from None
    else:
        try:
            values = tuple(int(v) for v in shape)
        except (TypeError, ValueError):
            raise InputShapeError(f"input shape {shape!r}: expected integers like (1, 3, 224, 224)") from None
    if not values or any(v <= 0 for v in values):
        raise InputShapeError(f"input shape {shape!r}: expected positive integers like 1x3x224x224")
    return values


__all__ = ["UNKNOWN_OPS_CHOICES", "InputShapeError", "parse_input_shape"]
