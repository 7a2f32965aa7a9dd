"""Export any family's spec to ONNX, batch norm kept as separate nodes.

The legacy TorchScript exporter with constant folding off keeps every
BatchNormalization node, so the exported model's CG ``params`` is the
benchmark's trainable-parameter count (BN scale and shift merged into the conv
by the importer's canonical rules, never folded away).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gennape.cg.atomic import write_bytes_atomic
from gennape.cg.families.base import Family
from gennape.cg.torch_import import EXPORT_OPSET, export_module

#: ONNX opset of exported models.
OPSET = EXPORT_OPSET


def export_bytes(family: Family, spec: Any, opset: int = OPSET) -> bytes:
    """The ONNX model of ``family``'s network for ``spec``, serialised, in eval mode."""
    return export_module(family.to_module(spec), family.example_input_shape(spec), opset, output_name="logits")


def export_onnx(family: Family, spec: Any, path: str | Path, opset: int = OPSET) -> Path:
    """Write ``spec``'s network to ``path`` as ONNX, atomically; returns the path."""
    path = Path(path)
    data = export_bytes(family, spec, opset)
    write_bytes_atomic(path, data)
    return path


__all__ = ["export_bytes", "export_onnx", "OPSET"]
