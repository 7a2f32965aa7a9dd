"""CGs of PyTorch modules: export to ONNX in memory, then :func:`cg.from_onnx`."""

from __future__ import annotations

import io
import warnings

from cg.graph import CG

#: The ONNX opset the in-memory export uses (fixed so torch versions agree).
EXPORT_OPSET = 17


def from_module(module, input_shape=(3, 224, 224), unknown_ops: str = "error") -> CG:
    """The CG of ``module`` as the importer sees its ONNX export.

    Exports with torch's legacy (TorchScript) exporter in eval mode, without
    constant folding (so batch norms stay separate, as the canonical rules
    expect), for one sample of ``input_shape`` (batch dimension excluded).
    The module is put back in its previous training mode afterwards.

    Args:
        module: a ``torch.nn.Module``.
        input_shape: shape of one input sample, e.g. ``(3, 224, 224)``.
        unknown_ops: as for :func:`cg.from_onnx`.
    """
    import torch

    from cg.onnx_import import from_onnx

    was_training = module.training
    module.eval()
    try:
        x = torch.zeros(1, *input_shape)
        buf = io.BytesIO()
        with warnings.catch_warnings(), torch.no_grad():
            # The legacy exporter announces its own deprecation; it is the one we want.
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                module, (x,), buf, dynamo=False, do_constant_folding=False,
                opset_version=EXPORT_OPSET, input_names=["input"], output_names=["output"],
            )
    finally:
        module.train(was_training)
    cg = from_onnx(buf.getvalue(), unknown_ops=unknown_ops)
    return CG(nodes=cg.nodes, edges=cg.edges, name=type(module).__name__)
