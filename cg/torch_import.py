"""CGs of PyTorch modules: export to ONNX in memory, then :func:`cg.from_onnx`."""

from __future__ import annotations

import io
import warnings

from gennape.cg.graph import CG

#: The ONNX opset the in-memory export uses (fixed so torch versions agree).
EXPORT_OPSET = 17


def export_module(module, input_shape=(3, 224, 224), opset: int = EXPORT_OPSET,
                  output_name: str = "output") -> bytes:
    """``module`` as serialised ONNX, the way every gennape export is made.

    Torch's legacy (TorchScript) exporter in eval mode without constant
    folding, so batch norms stay separate nodes (as the canonical rules
    expect), for one sample of ``input_shape`` (batch dimension excluded).
    The module is put back in its previous training mode afterwards.

    Args:
        module: a ``torch.nn.Module``.
        input_shape: shape of one input sample, e.g. ``(3, 224, 224)``.
        opset: ONNX opset of the export.
        output_name: name of the graph output.
    """
    import torch

    was_training = module.training
    module.eval()
    try:
        x = torch.zeros(1, *input_shape)
        buf = io.BytesIO()
        with warnings.catch_warnings(), torch.no_grad():
            # The legacy exporter announces its own deprecation; it is the one
            # that keeps batch norm unfolded.
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                module, (x,), buf, dynamo=False, do_constant_folding=False,
                opset_version=opset, input_names=["input"], output_names=[output_name],
                training=torch.onnx.TrainingMode.EVAL,
            )
    finally:
        module.train(was_training)
    return buf.getvalue()


def from_module(module, input_shape=(3, 224, 224), unknown_ops: str = "error") -> CG:
    """The CG of ``module`` as the importer sees its ONNX export (:func:`export_module`).

    Args:
        module: a ``torch.nn.Module``.
        input_shape: shape of one input sample, e.g. ``(3, 224, 224)``.
        unknown_ops: as for :func:`cg.from_onnx`.
    """
    from gennape.cg.onnx_import import from_onnx

    cg = from_onnx(export_module(module, input_shape), unknown_ops=unknown_ops)
    return CG(nodes=cg.nodes, edges=cg.edges, name=type(module).__name__)
