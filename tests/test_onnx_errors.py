"""Bad input gives one-line ConversionErrors (never a hang or a traceback from
deep inside); unsupported ops are listed all at once; input-shape overrides,
external data and node order are handled."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
from _onnx_graphs import model, node
from onnx import TensorProto, helper

from gennape.cg.errors import ConversionError, UnsupportedOpsError
from gennape.cg.onnx_import import from_onnx

CONV = [node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3]), node("Relu", ["c"], ["y"])]
W = {"w": (4, 3, 3, 3)}


def one_line(err: Exception) -> str:
    text = str(err)
    assert "\n" not in text
    return text


def test_not_onnx(tmp_path):
    path = tmp_path / "notes.onnx"
    path.write_text("this is not a model\n")
    with pytest.raises(ConversionError) as err:
        from_onnx(path)
    assert str(path) in one_line(err.value) and "not an ONNX model" in str(err.value)


def test_empty_file_and_missing_file_and_directory(tmp_path):
    (tmp_path / "empty.onnx").write_bytes(b"")
    for path, cause in ((tmp_path / "empty.onnx", "not an ONNX model"), (tmp_path / "nope.onnx", "no such file"),
                        (tmp_path, "directory")):
        with pytest.raises(ConversionError, match=cause):
            from_onnx(path)


def test_truncated_files(light_dir, tmp_path):
    data = (light_dir / "light_squeezenet.onnx").read_bytes()
    for k, cut in enumerate((7, 100, 1000, len(data) // 3, len(data) // 2, len(data) - 10, len(data) - 1)):
        path = tmp_path / f"cut{k}.onnx"
        path.write_bytes(data[:cut])
        with pytest.raises(ConversionError) as err:
            from_onnx(path)
        one_line(err.value)


def test_empty_graph():
    with pytest.raises(ConversionError, match="empty"):
        from_onnx(model([], outputs=("x",)))


def test_cycle_is_detected():
    nodes = [node("Relu", ["x2"], ["a"]), node("Add", ["a", "x"], ["b"]), node("Relu", ["b"], ["x2"]),
             node("Relu", ["b"], ["y"])]
    with pytest.raises(ConversionError, match="cycle"):
        from_onnx(model(nodes))


def test_long_cycle_is_linear_time():
    n = 20000
    nodes = [node("Relu", [f"t{(i - 1) % n}"], [f"t{i}"]) for i in range(n)]
    nodes.append(node("Relu", ["t0"], ["y"]))
    with pytest.raises(ConversionError, match="cycle"):
        from_onnx(model(nodes))


def test_dangling_tensor():
    with pytest.raises(ConversionError, match="never produced"):
        from_onnx(model([node("Add", ["x", "ghost"], ["y"])]))


def test_shapes_not_inferable():
    with pytest.raises(ConversionError, match="shape of tensor .y. could not be inferred: Add node .y.: .*Incompatible"):
        from_onnx(model([node("Add", ["x", "z"], ["y"])], inits={"z": (1, 4, 8, 8)}))


def test_inconsistent_shapes():
    with pytest.raises(ConversionError, match="5 input channels"):
        from_onnx(model(CONV, inits={"w": (4, 5, 3, 3)}))  # 5 input channels on a 3-channel input
    with pytest.raises(ConversionError, match="192 elements"):
        from_onnx(model([node("Reshape", ["x", "s"], ["y"])], inits={"s": np.asarray([1, 5, 7])}))


def test_symbolic_input_needs_shape():
    m = model(CONV, inputs=[("x", ("N", 3, "H", "W"))], inits=W)
    with pytest.raises(ConversionError, match="unknown dimensions.*input shape"):
        from_onnx(m)
    for shape in ("1x3x16x16", (1, 3, 16, 16), [3, 16, 16]):
        cg = from_onnx(m, input_shape=shape)
        assert cg.input_shape == (3, 16, 16)
        assert next(n for n in cg.nodes if n.op == "conv").out_shape == (4, 14, 14)
    with pytest.raises(ConversionError, match="rank"):
        from_onnx(m, input_shape="3x16")
    with pytest.raises(ValueError):
        from_onnx(m, input_shape="1x3xHx16")


def test_symbolic_batch_is_fine():
    cg = from_onnx(model(CONV, inputs=[("x", ("batch", 3, 8, 8))], inits=W))
    assert cg.input_shape == (3, 8, 8)


def test_missing_input_shape():
    m = model(CONV, inputs=[("x", None)], inits=W)
    with pytest.raises(ConversionError, match="no shape"):
        from_onnx(m)
    assert from_onnx(m, input_shape="1x3x8x8").input_shape == (3, 8, 8)


def test_unsupported_ops_listed_at_once():
    nodes = [node("Relu", ["x"], ["r"]), node("Softplus", ["r"], ["s"]), node("Sin", ["s"], ["t"]),
             node("Softplus", ["t"], ["u"]),
             helper.make_node("Fancy", ["u"], ["y"], domain="com.example", name="fancy1")]
    m = model(nodes)
    m.opset_import.append(helper.make_opsetid("com.example", 1))
    with pytest.raises(UnsupportedOpsError) as err:
        from_onnx(m)
    e = err.value
    assert [op for op, _ in e.unsupported] == ["Softplus", "Sin", "Softplus", "com.example::Fancy"]
    assert "docs/supported_ops.md" in one_line(e) and "fancy1" in str(e)
    with pytest.warns(UserWarning, match="Softplus") as record:
        cg = from_onnx(m, unknown_ops="other")
    assert len(record) == 1
    assert cg.op_counts()["other"] == 4


def test_unmatched_pattern_part_is_unsupported():
    with pytest.raises(UnsupportedOpsError, match="Erf"):
        from_onnx(model([node("Erf", ["x"], ["y"])]))


def test_invalid_unknown_ops():
    with pytest.raises(ValueError, match="error, other"):
        from_onnx(model(CONV, inits=W), unknown_ops="ignore")


def test_external_data_is_never_read(tmp_path):
    m = model(CONV, inits=W)
    weight = m.graph.initializer[0]
    weight.ClearField("raw_data")
    weight.ClearField("float_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "weights.bin"), ("offset", "0"), ("length", "432")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    path = tmp_path / "model.onnx"
    path.write_bytes(m.SerializeToString())
    assert not (tmp_path / "weights.bin").exists()
    cg = from_onnx(path)
    assert cg.params == 4 * 3 * 3 * 3
    assert from_onnx(m).params == cg.params


def test_nodes_out_of_order_and_input_not_modified():
    m = model(list(reversed(CONV)), inits=W)
    before = m.SerializeToString()
    ref = from_onnx(model(CONV, inits=W))
    assert from_onnx(m) == ref
    assert m.SerializeToString() == before


def test_constant_output_and_passthrough_output():
    m = model([node("Identity", ["x"], ["y"])])
    cg = from_onnx(m)
    assert [n.op for n in cg.nodes] == ["input", "output"] and cg.edges == ((0, 1),)


def test_bytes_and_proto_and_path_agree(light_dir):
    path = light_dir / "light_vgg19.onnx"
    data = path.read_bytes()
    a, b, c = from_onnx(path), from_onnx(data), from_onnx(onnx.load_from_string(data))
    assert a == b == c
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert from_onnx(str(path)).name == "light_vgg19"


def test_malformed_node():
    with pytest.raises(ConversionError, match="malformed Conv"):
        from_onnx(model([node("Conv", ["x"], ["y"], kernel_shape=[3, 3])]))


def test_secondary_output_use_is_unsupported():
    nodes = [node("MaxPool", ["x"], ["p", "idx"], kernel_shape=[2, 2]), node("Cast", ["idx"], ["c"], to=1),
             node("Add", ["p", "c"], ["y"])]
    with pytest.raises(UnsupportedOpsError, match="Cast"):
        from_onnx(model(nodes))


def test_only_integer_tensors_and_scalars_are_read(light_dir, monkeypatch):
    import math

    from gennape.cg.onnx_import import context

    read = []
    real = context.numpy_helper.to_array

    def spy(t, *args, **kwargs):
        read.append((t.data_type, math.prod(t.dims)))
        return real(t, *args, **kwargs)

    monkeypatch.setattr(context.numpy_helper, "to_array", spy)
    nodes = [node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3]), node("Mul", ["c", "k"], ["m"]),
             node("Add", ["m", "bias"], ["y"])]
    from_onnx(model(nodes, inits={"w": (4, 3, 3, 3), "k": np.float32(2.0), "bias": (4, 1, 1)}))
    from_onnx(light_dir / "light_shufflenet.onnx")
    assert read and all(numel <= 1 or dtype == TensorProto.INT64 for dtype, numel in read)
