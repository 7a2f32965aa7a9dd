"""Reading a model, fixing its input shapes, ordering its nodes and inferring
tensor shapes, with every failure turned into a one-line ConversionError."""

from __future__ import annotations

import os
import stat
from collections import deque
from pathlib import Path

import onnx

from gennape.cg.errors import ConversionError
from gennape.cg.import_options import parse_input_shape


#: protobuf cannot parse a message larger than 2 GiB; larger models keep their
#: weights in external data files.
MAX_MODEL_BYTES = 2**31 - 1


def read_model(model) -> tuple[onnx.ModelProto, str]:
    """(a private copy of the ModelProto, a source description for errors).

    ``model`` is a path, bytes or a ModelProto. External data is never loaded.
    """
    from google.protobuf.message import DecodeError

    if isinstance(model, onnx.ModelProto):
        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        return copy, f"<model {model.graph.name or 'in memory'}>"
    if isinstance(model, (bytes, bytearray, memoryview)):
        source, data = "<bytes>", bytes(model)
    elif isinstance(model, (str, Path)):
        source = str(model)
        try:
            info = os.stat(model)
            if stat.S_ISDIR(info.st_mode):
                raise IsADirectoryError
            if not stat.S_ISREG(info.st_mode):  # reading a FIFO or a device would block or never end
                raise ConversionError(source, "not a regular file")
            if info.st_size > MAX_MODEL_BYTES:
                raise ConversionError(source, f"{info.st_size:,} bytes: larger than protobuf's 2 GiB limit "
                                              "for an ONNX file")
            data = Path(model).read_bytes()
        except FileNotFoundError:
            raise ConversionError(source, "no such file") from None
        except IsADirectoryError:
            raise ConversionError(source, "is a directory, not an ONNX file") from None
        except OSError as err:
            raise ConversionError(source, f"cannot read the file ({err.strerror})") from None
    else:
        raise TypeError(f"expected a path, bytes or onnx.ModelProto, got {type(model).__name__}")
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError):
        raise ConversionError(source, "not an ONNX model, or a truncated one (protobuf parse error)") from None
    if not data or (not proto.opset_import and not proto.graph.node):
        raise ConversionError(source, "not an ONNX model (no graph and no opset)")
    _check_text(proto.graph, source)
    return proto, source


def _check_text(graph: onnx.GraphProto, source: str) -> None:
    """protobuf hands back strings that are not valid UTF-8 as bytes; refuse
    them here, before they reach messages, node names and JSON."""
    # Only what becomes text (node names, op types, graph input / output
    # names): tensor names are dictionary keys, and checking them all would
    # cost 7% of a DenseNet conversion.
    names = [graph.name, *(vi.name for part in (graph.input, graph.output) for vi in part)]
    names += (s for n in graph.node for s in (n.op_type, n.domain, n.name))
    bad = next((s for s in names if type(s) is not str), None)
    if bad is not None:
        raise ConversionError(source, f"a name or op type is not valid UTF-8 text ({bytes(bad)[:40]!r})")


def network_inputs(graph: onnx.GraphProto) -> list[onnx.ValueInfoProto]:
    """Graph inputs that are not initializers (IR < 4 lists both)."""
    inits = {i.name for i in graph.initializer}
    return [i for i in graph.input if i.name not in inits]


def fix_input_shapes(model: onnx.ModelProto, source: str, input_shape) -> None:
    """Apply the ``input_shape`` override to the first network input, set a
    symbolic batch dimension to 1, and refuse any other unknown dimension."""
    override = parse_input_shape(input_shape)
    inputs = network_inputs(model.graph)
    for k, inp in enumerate(inputs):
        tt = inp.type.tensor_type
        if not inp.type.HasField("tensor_type"):
            raise ConversionError(source, f"input {inp.name!r} is not a tensor")
        dims = tt.shape.dim
        if k == 0 and override is not None:
            if tt.HasField("shape") and len(dims) == len(override) + 1:
                override = (1, *override)  # given without the batch dimension
            if tt.HasField("shape") and len(dims) != len(override):
                raise ConversionError(
                    source,
                    f"input shape {'x'.join(map(str, override))} has rank {len(override)} "
                    f"but input {inp.name!r} has rank {len(dims)}",
                )
            tt.shape.Clear()
            for v in override:
                tt.shape.dim.add().dim_value = v
            continue
        if not tt.HasField("shape"):
            raise ConversionError(source, f"input {inp.name!r} has no shape; pass an input shape, e.g. 1x3x224x224")
        unknown = [i for i, d in enumerate(dims) if not d.HasField("dim_value") or d.dim_value <= 0]
        if unknown and unknown[0] == 0:
            dims[0].Clear()
            dims[0].dim_value = 1  # the batch dimension; the CG excludes it
            unknown = unknown[1:]
        if unknown:
            shown = "x".join(str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?") for d in dims)
            raise ConversionError(
                source,
                f"input {inp.name!r} has unknown dimensions ({shown}); pass an input shape, e.g. 1x3x224x224",
            )


def topological_order(graph: onnx.GraphProto, source: str) -> list[int]:
    """Node indices in a topological order: the file's own order when it is
    one, else Kahn's algorithm (linear time).

    Raises ConversionError for a tensor nobody produces, a tensor produced twice,
    or a cycle.
    """
    nodes = graph.node
    if not nodes:
        raise ConversionError(source, "the graph is empty (no nodes)")
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer}
    producer: dict[str, int] = {}
    for k, n in enumerate(nodes):
        for o in n.output:
            if not o:
                continue
            if o in producer or o in available:
                raise ConversionError(source, f"tensor {o!r} is produced twice (node {n.name or n.op_type})")
            producer[o] = k
    indeg = [0] * len(nodes)
    succ: list[list[int]] = [[] for _ in nodes]
    in_order = True
    for k, n in enumerate(nodes):
        for t in n.input:
            if not t or t in available:
                continue
            p = producer.get(t)
            if p is None:
                raise ConversionError(source, f"tensor {t!r} read by node {n.name or n.op_type} is never produced")
            succ[p].append(k)
            indeg[k] += 1
            in_order = in_order and p < k
    if in_order:  # the usual case: the file's order is already topological
        _check_outputs(graph, producer, available, source)
        return list(range(len(nodes)))
    queue = deque(k for k in range(len(nodes)) if indeg[k] == 0)
    order: list[int] = []
    while queue:
        k = queue.popleft()
        order.append(k)
        for d in succ[k]:
            indeg[d] -= 1
            if indeg[d] == 0:
                queue.append(d)
    if len(order) != len(nodes):
        stuck = next(k for k in range(len(nodes)) if indeg[k] > 0)
        n = nodes[stuck]
        raise ConversionError(source, f"the graph has a cycle (through node {n.name or n.op_type})")
    _check_outputs(graph, producer, available, source)
    return order


def _check_outputs(graph, producer, available, source) -> None:
    for o in graph.output:
        if o.name not in producer and o.name not in available:
            raise ConversionError(source, f"graph output {o.name!r} is never produced")


def infer_shapes(model: onnx.ModelProto, source: str) -> tuple[onnx.ModelProto, str | None]:
    """onnx shape inference (strict, with data propagation for shape subgraphs).

    Falls back to non-strict inference (custom-domain ops make strict mode
    fail); returns the inferred model and the strict mode's error, if any, which
    explains shapes that are missing later.
    """
    data_prop = data_propagation_is_bounded(model)
    try:
        return onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=True, data_prop=data_prop), None
    except Exception as strict_err:  # InferenceError, ValidationError, RuntimeError
        cause = f"shape inference failed: {_first_line(strict_err)}"
        try:
            inferred = onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False,
                                                         data_prop=data_prop)
        except Exception:
            raise ConversionError(source, cause) from None
        return inferred, cause


#: Longest Range output onnx's data propagation may evaluate.
MAX_PROPAGATED_RANGE = 4096


def data_propagation_is_bounded(model: onnx.ModelProto) -> bool:
    """False when a Range may be long or of unknown length: onnx's data
    propagation holds one protobuf dimension per element, so a 100-byte file
    asking for Range(0, 1e8) would take minutes and gigabytes."""
    ranges = [n.output[0] for n in model.graph.node if n.op_type == "Range" and n.output]
    if not ranges:
        return True
    probe = onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=False)
    shapes = shape_table(probe)
    lengths = [shapes.get(r) for r in ranges]
    return all(s is not None and len(s) == 1 and s[0] is not None and s[0] <= MAX_PROPAGATED_RANGE
               for s in lengths)


class ShapeTable:
    """Tensor name -> shape tuple (``None`` for an unknown dimension), or None
    if even the rank is unknown. Parsed lazily: only the shapes a conversion
    asks for are read from the protos."""

    def __init__(self, model: onnx.ModelProto):
        g = model.graph
        self._infos = {vi.name: vi for part in (g.input, g.value_info, g.output) for vi in part}
        self._cache: dict[str, tuple | None] = {init.name: tuple(init.dims) for init in g.initializer}

    def get(self, name: str, default=None):
        try:
            return self._cache[name]
        except KeyError:
            pass
        vi = self._infos.get(name)
        if vi is None:
            return default
        t = vi.type
        if not t.HasField("tensor_type") or not t.tensor_type.HasField("shape"):
            shape = None
        else:
            shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in t.tensor_type.shape.dim)
        self._cache[name] = shape
        return shape

    def __contains__(self, name: str) -> bool:
        return name in self._cache or name in self._infos

    def __setitem__(self, name: str, shape: tuple) -> None:
        self._cache[name] = shape


def shape_table(model: onnx.ModelProto) -> ShapeTable:
    return ShapeTable(model)


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), text)
    return line[:300]
