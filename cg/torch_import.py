"""CGs of PyTorch modules: export to ONNX in memory, then :func:`cg.from_onnx`."""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import warnings

from gennape.cg.errors import GennapeError
from gennape.cg.graph import CG

#: The ONNX opset the in-memory export uses (fixed so torch versions agree).
EXPORT_OPSET = 17

#: The dynamo exporter's lowest opset.
DYNAMO_MIN_OPSET = 18


def export_module(module, input_shape=(3, 224, 224), opset: int = EXPORT_OPSET,
                  output_name: str = "output") -> bytes:
    """``module`` as serialised ONNX, the way every gennape export is made.

    Torch's legacy (TorchScript) exporter in eval mode without constant
    folding, so batch norms stay separate nodes (as the canonical rules
    expect), for one sample of ``input_shape`` (batch dimension excluded), with
    the fused attention fast paths of ``nn.MultiheadAttention`` and
    ``nn.TransformerEncoderLayer`` turned off (their fused ops,
    ``aten::_native_multi_head_attention`` and
    ``aten::_transformer_encoder_layer_fwd``, have no ONNX export; the plain
    path computes the same function). If the legacy exporter still fails (an op
    it does not know), torch's dynamo exporter is tried when onnxscript is
    installed. Nothing the exporters print reaches the terminal. The module is
    put back in its previous training mode afterwards.

    Args:
        module: a ``torch.nn.Module``.
        input_shape: shape of one input sample, e.g. ``(3, 224, 224)``.
        opset: ONNX opset of the export.
        output_name: name of the graph output.

    Raises:
        GennapeError: neither exporter can export the module (one line naming
            the module and the legacy exporter's cause).
    """
    import torch

    was_training = module.training
    fast_path = torch.backends.mha.get_fastpath_enabled()
    module.eval()
    x = torch.zeros(1, *input_shape)
    try:
        torch.backends.mha.set_fastpath_enabled(False)
        try:
            return _export_legacy(module, x, opset, output_name)
        except torch.onnx.errors.OnnxExporterError as err:  # the exporter's refusal: try the other one
            legacy_error = err
        except Exception as err:  # the module's own forward failed while being traced
            raise GennapeError(f"{type(module).__name__}: fails on an input of shape "
                               f"{tuple(x.shape)} while being exported ({_cause(err)})") from None
        try:
            import onnxscript  # noqa: F401 -- the dynamo exporter needs it
        except ImportError:
            raise GennapeError(f"{type(module).__name__}: cannot be exported to ONNX ({_cause(legacy_error)}; "
                               "the dynamo exporter, which may succeed, needs onnxscript: "
                               "pip install onnxscript)") from None
        try:
            return _export_dynamo(module, x, max(opset, DYNAMO_MIN_OPSET), output_name)
        except Exception as err:
            raise GennapeError(f"{type(module).__name__}: cannot be exported to ONNX ({_cause(legacy_error)}; "
                               f"dynamo exporter: {_cause(err)})") from None
    finally:
        torch.backends.mha.set_fastpath_enabled(fast_path)
        module.train(was_training)


def _export_legacy(module, x, opset: int, output_name: str) -> bytes:
    import torch

    buf = io.BytesIO()
    with _quiet(), torch.no_grad():
        torch.onnx.export(
            module, (x,), buf, dynamo=False, do_constant_folding=False,
            opset_version=opset, input_names=["input"], output_names=[output_name],
            training=torch.onnx.TrainingMode.EVAL,
        )
    return buf.getvalue()


def _export_dynamo(module, x, opset: int, output_name: str) -> bytes:
    import torch

    with _quiet(), torch.no_grad():
        program = torch.onnx.export(module, (x,), dynamo=True, opset_version=opset,
                                    input_names=["input"], output_names=[output_name])
    return program.model_proto.SerializeToString()


@contextlib.contextmanager
def _quiet():
    """Warnings off, and file descriptors 1 and 2 sent to a scratch file: the
    legacy exporter dumps the whole TorchScript graph on failure from C++
    (where ``sys.stdout`` redirection cannot reach) and the dynamo exporter
    prints its progress."""
    with warnings.catch_warnings(), tempfile.TemporaryFile() as sink:
        warnings.simplefilter("ignore")
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        saved = {}
        try:
            for fd in (1, 2):
                with contextlib.suppress(OSError):
                    saved[fd] = os.dup(fd)
                    os.dup2(sink.fileno(), fd)
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                yield
        finally:
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)


def _cause(err: BaseException) -> str:
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    return f"{type(err).__name__}: {lines[0][:300]}" if lines else type(err).__name__


def from_module(module, input_shape=(3, 224, 224), unknown_ops: str = "error") -> CG:
    """The CG of ``module`` as the importer sees its ONNX export (:func:`export_module`).

    Args:
        module: a ``torch.nn.Module``.
        input_shape: shape of one input sample, e.g. ``(3, 224, 224)``.
        unknown_ops: as for :func:`cg.from_onnx`.
    """
    import onnx

    from gennape.cg.onnx_import import from_onnx

    proto = onnx.load_from_string(export_module(module, input_shape))
    proto.graph.name = type(module).__name__  # errors then name the module
    cg = from_onnx(proto, unknown_ops=unknown_ops)
    return CG(nodes=cg.nodes, edges=cg.edges, name=type(module).__name__)
