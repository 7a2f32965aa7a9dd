"""Export any family's spec to ONNX, batch norm kept as separate nodes.

The legacy TorchScript exporter with constant folding off keeps every
BatchNormalization node, so the exported model's CG ``params`` is the
benchmark's trainable-parameter count (BN scale and shift merged into the conv
by the importer's canonical rules, never folded away).
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

from cg.atomic import write_bytes_atomic
from cg.families.base import Family

#: ONNX opset of exported models.
OPSET = 17


def export_bytes(family: Family, spec: Any, opset: int = OPSET) -> bytes:
    """The ONNX model of ``family``'s network for ``spec``, serialised, in eval mode."""
    import torch

    module = family.to_module(spec)
    module.eval()
    example = torch.zeros(1, *family.example_input_shape(spec))
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # The legacy exporter announces its own deprecation; it is the one that keeps BN unfolded.
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx.*")
        torch.onnx.export(
            module, (example,), buf, dynamo=False, do_constant_folding=False,
            opset_version=opset, input_names=["input"], output_names=["logits"],
            training=torch.onnx.TrainingMode.EVAL,
        )
    return buf.getvalue()


def export_onnx(family: Family, spec: Any, path: str | Path, opset: int = OPSET) -> Path:
    """Write ``spec``'s network to ``path`` as ONNX, atomically; returns the path."""
    path = Path(path)
    data = export_bytes(family, spec, opset)
    write_bytes_atomic(path, data)
    return path


__all__ = ["export_bytes", "export_onnx", "OPSET"]
