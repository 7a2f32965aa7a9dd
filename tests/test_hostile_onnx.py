"""Hostile ONNX files: every input ends in a valid CG or a one-line
ConversionError, within a deadline, and no path outside what was given is ever
opened (the harness is tests/_hostile.py; benchmarks/fuzz_onnx.py runs it for
longer).

Property tests use hypothesis with the ``gennape-ci`` profile (derandomized,
modest example counts); set ``GENNAPE_HYPOTHESIS_PROFILE=gennape-thorough`` for
a long local run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from _hostile import HostileFailure, check_features, convert_hostile, hypothesis_profile, watch_opens
from _onnx_graphs import model, node
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

PROFILE = hypothesis_profile()
ROOT = Path(__file__).resolve().parent.parent

#: Small light models (a few kB to 40 kB): mutations hit every part of the file.
SMALL_LIGHT = ("bvlc_alexnet", "zfnet512", "vgg19", "squeezenet", "inception_v1")
CONV = [node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3]), node("Relu", ["c"], ["y"])]

class LightBytes:
    """The light models' bytes, with a short repr (hypothesis prints arguments)."""

    def __init__(self, folder: Path):
        self.data = {name: (folder / f"light_{name}.onnx").read_bytes() for name in SMALL_LIGHT}

    def __getitem__(self, name: str) -> bytes:
        return self.data[name]

    def __repr__(self) -> str:
        return "<light models>"


@pytest.fixture(scope="module")
def light_bytes(light_dir) -> LightBytes:
    return LightBytes(light_dir)


def conv_model(weight_dims, inputs=(("x", (1, 3, 8, 8)),), **attrs) -> onnx.ModelProto:
    """A Conv + Relu whose weight is a dims-only initializer (no data needed)."""
    m = model([node("Conv", ["x", "w"], ["c"], **attrs), node("Relu", ["c"], ["y"])], inputs=inputs)
    m.graph.initializer.append(onnx.TensorProto(name="w", data_type=TensorProto.FLOAT, dims=list(weight_dims)))
    return m


# ------------------------------------------------------------ random bytes
@settings(PROFILE)
@given(st.binary(max_size=4096))
def test_random_bytes(data):
    convert_hostile(data)


@settings(PROFILE)
@given(st.sampled_from(SMALL_LIGHT), st.floats(0.0, 1.0, exclude_max=True))
def test_truncated_light_models(light_bytes, name, fraction):
    data = light_bytes[name]
    kind, _ = convert_hostile(data[: int(fraction * len(data))])
    assert kind == "error"


@settings(PROFILE)
@given(st.sampled_from(SMALL_LIGHT), st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 7)),
                                              min_size=1, max_size=8),
       st.sampled_from(["error", "other"]))
def test_bit_flipped_light_models(light_bytes, name, flips, unknown_ops):
    data = bytearray(light_bytes[name])
    for where, bit in flips:
        data[int(where * len(data))] ^= 1 << bit
    convert_hostile(bytes(data), unknown_ops=unknown_ops)


@settings(PROFILE)
@given(st.sampled_from(SMALL_LIGHT), st.floats(0, 1, exclude_max=True), st.binary(min_size=1, max_size=16),
       st.sampled_from(["error", "other"]))
def test_spliced_light_models(light_bytes, name, where, junk, unknown_ops):
    data = bytearray(light_bytes[name])
    at = int(where * len(data))
    data[at:at + len(junk)] = junk
    convert_hostile(bytes(data), unknown_ops=unknown_ops)


# ----------------------------------------------------- structural hostility
OPS = ("Relu", "Sigmoid", "Add", "Mul", "Concat", "MaxPool", "GlobalAveragePool", "Identity", "Erf")


@st.composite
def random_graphs(draw):
    """Small graphs wired at random: inputs may name later outputs (cycles),
    names nobody produces (dangling) or nothing; outputs may repeat."""
    n = draw(st.integers(1, 8))
    names = ["x"] + [f"t{i}" for i in range(n)] + ["ghost"]
    nodes = []
    for i in range(n):
        op = draw(st.sampled_from(OPS))
        arity = 2 if op in ("Add", "Mul", "Concat") else 1
        ins = [draw(st.sampled_from(names)) for _ in range(arity)]
        out = draw(st.sampled_from([f"t{i}", f"t{i}", f"t{i}", f"t{max(i - 1, 0)}", "x"]))
        attrs = {"axis": 1} if op == "Concat" else {"kernel_shape": [2, 2]} if op == "MaxPool" else {}
        nodes.append(node(op, ins, [out], **attrs))
    outputs = draw(st.lists(st.sampled_from(names[1:-1]), min_size=1, max_size=3))
    return model(nodes, outputs=tuple(outputs))


@settings(PROFILE)
@given(random_graphs(), st.sampled_from(["error", "other"]))
def test_randomly_wired_graphs(m, unknown_ops):
    convert_hostile(m, unknown_ops=unknown_ops)
    convert_hostile(m.SerializeToString(), unknown_ops=unknown_ops)


@pytest.mark.parametrize("nodes, cause", [
    ([node("Relu", ["y"], ["y"])], "cycle"),
    ([node("Relu", ["b"], ["a"]), node("Relu", ["a"], ["b"]), node("Add", ["x", "b"], ["y"])], "cycle"),
    ([node("Add", ["x", "ghost"], ["y"])], "never produced"),
    ([node("Relu", ["x"], ["y"]), node("Sigmoid", ["x"], ["y"])], "produced twice"),
    ([node("Relu", ["x"], ["x"]), node("Relu", ["x"], ["y"])], "produced twice"),
])
def test_structural_errors_name_the_cause(nodes, cause):
    kind, message = convert_hostile(model(nodes))
    assert kind == "error" and cause in message


def test_names_with_line_breaks_keep_errors_on_one_line(tmp_path):
    """Found by the atheris run: a tensor name holding a newline went into the message verbatim."""
    kind, message = convert_hostile(model([node("Add", ["x", "gh\nost\r\x00"], ["y"])]))
    assert kind == "error" and "gh\\nost" in message
    path = tmp_path / "two\nlines.onnx"
    path.write_bytes(b"junk")
    kind, message = convert_hostile(path)
    assert kind == "error" and "two\\nlines.onnx" in message


def test_duplicate_graph_outputs():
    kind, result = convert_hostile(model([node("Relu", ["x"], ["y"])], outputs=("y", "y")))
    assert kind == "error" or result.op_counts()["relu"] == 1


def test_empty_input_name():
    convert_hostile(model([node("Add", ["x", ""], ["y"])]))
    convert_hostile(model([node("Conv", ["x", ""], ["y"], kernel_shape=[3, 3])]))


@pytest.mark.parametrize("name, replacement", [(b"Softplus", b"Soft\xffplu"), (b"relu_node", b"relu\xff\xfeode"),
                                               (b"mid_tensor", b"mid\xfftensor")])
def test_strings_not_utf8(name, replacement):
    """Found by fuzzing: protobuf returns invalid UTF-8 strings as bytes."""
    nodes = [helper.make_node("Relu", ["x"], ["mid_tensor"], name="relu_node"),
             node("Softplus", ["mid_tensor"], ["y"])]
    data = model(nodes).SerializeToString().replace(name, replacement)
    for unknown_ops in ("error", "other"):
        convert_hostile(data, unknown_ops=unknown_ops)


# ----------------------------------------------------------- absurd shapes
@pytest.mark.parametrize("dims", [(1, 0, 8, 8), (1, 3, 0, 0), (1, -5, 8, 8), (1, 3, -1, 8)])
def test_zero_or_negative_input_dims_are_refused(dims):
    kind, message = convert_hostile(conv_model((4, 3, 3, 3), inputs=[("x", dims)]))
    assert kind == "error" and "'x'" in message


@pytest.mark.parametrize("weight_dims, attrs", [
    pytest.param((0, 3, 3, 3), {}, id="zero-out-channels"),
    pytest.param((-1, 3, 3, 3), {}, id="negative-out-channels"),
    pytest.param((4, 3, 10**9, 10**9), {"kernel_shape": [10**9, 10**9]}, id="kernel-larger-than-input"),
    pytest.param((4, 3, 2**57, 0), {}, id="zero-kernel-width"),  # found by the atheris run
])
def test_non_positive_output_dims_are_refused(weight_dims, attrs):
    kind, _ = convert_hostile(conv_model(weight_dims, **attrs))
    assert kind == "error"


def test_pool_window_larger_than_input():
    convert_hostile(model([node("MaxPool", ["x"], ["y"], kernel_shape=[10**12, 1])]))


@pytest.mark.parametrize("m", [
    pytest.param(conv_model((10**12, 3, 3, 3)), id="1e12-out-channels"),
    pytest.param(conv_model((4, 10**12, 3, 3), inputs=[("x", (1, 10**12, 8, 8))]), id="1e12-in-channels"),
    pytest.param(conv_model((4, 3, 3, 3), inputs=[("x", (1, 3, 10**9, 10**9))]), id="1e9-pixels-a-side"),
    pytest.param(conv_model((4, 3, 3, 3), kernel_shape=[3, 3], pads=[10**12] * 4), id="1e12-pads"),
    pytest.param(conv_model((4, 3, 3, 3), kernel_shape=[3, 3], strides=[10**18, 10**18]), id="1e18-strides"),
    pytest.param(conv_model((4, 3, 3, 3), kernel_shape=[3, 3], dilations=[2**62, 2**62]), id="2^62-dilations"),
    pytest.param(conv_model((4, 3, 3, 3), kernel_shape=[3, 3], group=10**15), id="1e15-groups"),
    pytest.param(conv_model((4, 3, 3, 3), kernel_shape=[3, 3], strides=[0, 0]), id="zero-strides"),
    pytest.param(conv_model((4, 3, 3, 3), kernel_shape=[3, 3], group=0), id="zero-groups"),
    pytest.param(model([node("Resize", ["x", "", "s"], ["y"], mode="nearest")],
                       inits={"s": np.asarray([1, 1, 1e9, 1e9], dtype=np.float32)}), id="resize-1e9"),
    pytest.param(model([node("Reshape", ["x", "s"], ["y"])], inits={"s": np.asarray([1, 10**12, -1])}),
                 id="reshape-1e12"),
])
def test_huge_shapes_and_attributes(m):
    """Huge but positive: a valid CG whose encoder features are finite, or an error."""
    convert_hostile(m, features=True)


def test_huge_linear_layer_features_are_finite():
    m = model([node("Flatten", ["x"], ["f"]), node("Gemm", ["f", "w"], ["y"], transB=1)])
    m.graph.initializer.append(onnx.TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[10**12, 192]))
    kind, cg = convert_hostile(m, features=True)
    assert kind == "cg" and cg.params == 10**12 * 192 + 0


@pytest.mark.parametrize("opset", [1, 6, 22, 99, 10**9])
def test_odd_opsets(opset):
    convert_hostile(model([node("Relu", ["x"], ["y"])], opset=opset))


def test_symbolic_dims():
    m = conv_model((4, 3, 3, 3), inputs=[("x", ("N", "C", "H", "W"))])
    kind, message = convert_hostile(m)
    assert kind == "error" and "input shape" in message
    kind, cg = convert_hostile(m, input_shape="1x3x16x16")
    assert kind == "cg" and cg.input_shape == (3, 16, 16)
    kind, cg = convert_hostile(m, input_shape="1x3x100000000x100000000", features=True)
    assert kind == "cg"


_RANGE_BOMB = """
import resource, sys
sys.path.insert(0, {tests!r})
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))  # a regression dies here, not the machine
import numpy as np
from _hostile import convert_hostile
from _onnx_graphs import model, node
inits = {{"s0": np.asarray(0), "d": np.asarray(1), "a": np.asarray([192]), "b": np.asarray([193]),
         "one": np.asarray([1]), "p": np.asarray(10**5), "q": np.asarray(10**5), "lim": np.asarray(10**9)}}
tail = [node("Slice", ["r", "a", "b"], ["sl"]), node("Concat", ["one", "sl"], ["shape"], axis=0),
        node("Reshape", ["x", "shape"], ["y"])]
for head in ([node("Range", ["s0", "lim", "d"], ["r"])],
             [node("Mul", ["p", "q"], ["big"]), node("Range", ["s0", "big", "d"], ["r"])]):
    print(convert_hostile(model(head + tail), deadline_s=10)[0])
# VmHWM is this process's own peak (ru_maxrss would include the pytest parent's
# peak at fork time, which depends on what ran before).
hwm_kib = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print("peak MiB", hwm_kib // 1024)
"""


def test_range_bomb_is_bounded():
    """A 300-byte model asking for Range(0, 1e9): onnx's data propagation would
    hold one protobuf dimension per element (measured before the fix: 1e8 took
    25 s and 6.9 GB). Runs in a child limited to 1 GiB of address space."""
    proc = subprocess.run([sys.executable, "-c", _RANGE_BOMB.format(tests=str(ROOT / "tests"))], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.split()
    assert lines[:2] == ["error", "error"] and int(lines[-1]) < 500, proc.stdout


# ------------------------------------------------------- nested subgraphs
def _leaf(tag: str) -> onnx.GraphProto:
    return helper.make_graph([node("Relu", ["x"], [f"o{tag}"])], f"b{tag}", [],
                             [helper.make_tensor_value_info(f"o{tag}", TensorProto.FLOAT, None)])


def nested_if(depth: int) -> onnx.ModelProto:
    """If nodes nested ``depth`` deep in their then-branches (outer-scope reads of x)."""
    def branch(d: int, tag: str) -> onnx.GraphProto:
        if d == 0:
            return _leaf(tag)
        n = helper.make_node("If", ["cond"], [f"o{tag}"], then_branch=branch(d - 1, tag + "t"),
                             else_branch=_leaf(tag + "e"))
        return helper.make_graph([n], f"b{tag}", [], [helper.make_tensor_value_info(f"o{tag}", TensorProto.FLOAT, None)])

    m = model([helper.make_node("If", ["cond"], ["y"], then_branch=branch(depth - 1, "t"), else_branch=_leaf("e"))])
    m.graph.input.append(helper.make_tensor_value_info("cond", TensorProto.BOOL, []))
    return m


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def deeply_nested_bytes(depth: int) -> bytes:
    """A model file whose If nodes nest ``depth`` deep: written on the wire by
    hand, since onnx.helper cannot build messages deeper than protobuf's limit."""
    out_vi = helper.make_tensor_value_info("o", TensorProto.FLOAT, None).SerializeToString()
    graph = _leaf("").SerializeToString()
    for _ in range(depth):
        attr = _field(1, b"then_branch") + _varint(20 << 3) + _varint(5) + _field(6, graph)
        if_node = _field(1, b"cond") + _field(2, b"o") + _field(4, b"If") + _field(5, attr)
        graph = _field(1, if_node) + _field(2, b"g") + _field(12, out_vi)
    top = nested_if(1)
    top.graph.node[0].ClearField("attribute")
    attr = _field(1, b"then_branch") + _varint(20 << 3) + _varint(5) + _field(6, graph)
    nodes = b"".join(_field(1, n.SerializeToString() + (_field(5, attr) if k == 0 else b""))
                     for k, n in enumerate(top.graph.node))
    rest = onnx.GraphProto()
    rest.CopyFrom(top.graph)
    rest.ClearField("node")
    top.ClearField("graph")
    return top.SerializeToString() + _field(7, nodes + rest.SerializeToString())


@pytest.mark.parametrize("depth", [1, 3, 15])
def test_nested_if(depth):
    m = nested_if(depth)
    kind, message = convert_hostile(m)
    assert kind == "error" and "If" in message
    kind, cg = convert_hostile(m, unknown_ops="other")
    assert kind == "cg" and cg.op_counts()["other"] == 1


@pytest.mark.parametrize("depth", [20, 40, 300, 5000])
def test_deeply_nested_if_bytes(depth):
    convert_hostile(deeply_nested_bytes(depth), unknown_ops="other")


def test_loop_with_huge_trip_count():
    body = helper.make_graph(
        [node("Identity", ["c_in"], ["c_out"]), node("Relu", ["v_in"], ["v_out"])], "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("c_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_in", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, None)])
    m = model([node("Loop", ["n", "c", "x"], ["y"], body=body)],
              inits={"n": np.asarray(10**15, dtype=np.int64), "c": np.asarray(True)})
    assert convert_hostile(m)[0] == "error"
    assert convert_hostile(m, unknown_ops="other")[0] == "cg"


# ----------------------------------------------------------- external data
def _make_external(tensor: onnx.TensorProto, location: str, length: int) -> None:
    for field in ("raw_data", "float_data", "int64_data", "int32_data"):
        tensor.ClearField(field)
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(length))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value


def external_models(target: str):
    """Models whose every kind of tensor (weight, shape constant, Constant and
    ConstantOfShape attribute) points at ``target``."""
    weight = model(CONV, inits={"w": (4, 3, 3, 3)})
    _make_external(weight.graph.initializer[0], target, 432)
    yield "weight", weight
    shape = model([node("Reshape", ["x", "s"], ["y"])], inits={"s": np.asarray([1, 192])})
    _make_external(shape.graph.initializer[0], target, 16)
    yield "shape-initializer", shape
    value = helper.make_tensor("value", TensorProto.INT64, [1], [1])
    _make_external(value, target, 8)
    fill = model([node("ConstantOfShape", ["s"], ["shape"], value=value), node("Reshape", ["x", "shape"], ["y"])],
                 inits={"s": np.asarray([2])})
    yield "constant-of-shape-value", fill
    const = helper.make_tensor("value", TensorProto.INT64, [2], [1, 192])
    _make_external(const, target, 16)
    yield "constant-node", model([node("Constant", [], ["s"], value=const), node("Reshape", ["x", "s"], ["y"])])
    pads = helper.make_tensor("value", TensorProto.INT64, [8], [0] * 8)
    _make_external(pads, target, 64)
    yield "pad-amounts", model([node("Constant", [], ["p"], value=pads), node("Pad", ["x", "p"], ["q"]),
                                node("Conv", ["q", "w"], ["y"], kernel_shape=[3, 3])], inits={"w": (4, 3, 3, 3)})


@pytest.mark.parametrize("where", ["absolute", "parent", "sibling", "fifo"])
def test_external_data_is_never_opened(tmp_path, monkeypatch, where):
    """External-data entries pointing outside the model's folder, to absolute
    paths, next to the model, or at a FIFO (opening it would block): converting
    opens none of them and no error mentions reading them."""
    outside = tmp_path / "outside"
    folder = tmp_path / "models"
    outside.mkdir()
    folder.mkdir()
    secret = outside / "secret.bin"
    if where == "fifo":
        os.mkfifo(secret)
    else:
        secret.write_bytes(np.asarray([1, 192] * 32, dtype=np.int64).tobytes())
    sibling = folder / "weights.bin"
    sibling.write_bytes(secret.read_bytes() if where != "fifo" else b"")
    target = {"absolute": str(secret), "parent": "../outside/secret.bin", "fifo": str(secret),
              "sibling": "weights.bin"}[where]
    monkeypatch.chdir(folder)  # a relative location would resolve against the working directory too
    for label, m in external_models(target):
        path = folder / f"{label}.onnx"
        path.write_bytes(m.SerializeToString())
        with watch_opens([outside, sibling]) as attempts:
            kind, result = convert_hostile(path)
            convert_hostile(m)
        assert attempts == [], f"{label}: opened {attempts}"
        if kind == "error":
            assert "secret" not in result and "weights.bin" not in result, f"{label}: {result}"


# --------------------------------------------------------- special files
def test_fifo_huge_file_and_devices_are_refused_unread(tmp_path):
    """A FIFO would block the reader forever, a sparse 3 GiB file would be read
    into memory, /dev/zero never ends: each is refused at once, unread."""
    fifo = tmp_path / "pipe.onnx"
    os.mkfifo(fifo)
    huge = tmp_path / "huge.onnx"
    with open(huge, "wb") as f:
        f.truncate(3 << 30)  # sparse: no disk used
    for path, cause in ((fifo, "not a regular file"), (huge, "2 GiB"), (Path("/dev/zero"), "not a regular file"),
                        (tmp_path, "directory"), (tmp_path / "absent.onnx", "no such file")):
        kind, message = convert_hostile(path, deadline_s=5)
        assert kind == "error" and cause in message, message


# ------------------------------------------------------------------- CLI
HOSTILE_FILES = {
    "garbage.onnx": b"\x08\x07\x12\xff\xff\xff\xff\x0f" + b"junk" * 50,
    "empty.onnx": b"",
    "cyclic.onnx": model([node("Relu", ["b"], ["a"]), node("Relu", ["a"], ["b"]),
                          node("Add", ["x", "b"], ["y"])]).SerializeToString(),
    "dangling.onnx": model([node("Add", ["x", "ghost"], ["y"])]).SerializeToString(),
    "symbolic.onnx": conv_model((4, 3, 3, 3), inputs=[("x", ("N", "C", "H", "W"))]).SerializeToString(),
    "deep.onnx": deeply_nested_bytes(300),
    "unsupported.onnx": nested_if(3).SerializeToString(),
}


def _write_hostile(folder: Path, light_bytes) -> list[Path]:
    files = dict(HOSTILE_FILES)
    data = light_bytes["squeezenet"]
    files["truncated.onnx"] = data[: len(data) // 2]
    paths = []
    for name, content in files.items():
        (folder / name).write_bytes(content)
        paths.append(folder / name)
    return paths


def test_cli_convert_in_process(tmp_path, light_bytes, capsys):
    from gennape.cli import main

    for path in _write_hostile(tmp_path, light_bytes):
        code = main(["convert", str(path), "--json", str(tmp_path / "out.json")])
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert code == 2, (path.name, captured.err)
        assert len(lines) == 1 and str(path) in lines[0] and "Traceback" not in captured.err, captured.err
        assert not (tmp_path / "out.json").exists()


def test_cli_convert_subprocess(tmp_path, light_bytes):
    """The real command line: exit code 2, exactly one stderr line, no traceback."""
    paths = _write_hostile(tmp_path, light_bytes)
    for path in (paths[0], paths[2], paths[-1]):
        proc = subprocess.run([sys.executable, "-m", "gennape", "convert", str(path)], cwd=ROOT,
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert proc.returncode == 2, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.startswith("gennape convert: error: ") and str(path) in proc.stderr


def test_cli_predict_skips_hostile_files(tmp_path, light_bytes, light_dir, capsys):
    """``gennape predict`` over a folder of hostile files and one good model:
    the good one is predicted, each bad one is reported on one stderr line and
    skipped, the exit code is 1, and nothing prints a traceback."""
    from _hostile import tiny_estimator

    from gennape.cli import main

    folder = tmp_path / "models"
    folder.mkdir()
    bad = _write_hostile(folder, light_bytes)
    (folder / "good.onnx").write_bytes((light_dir / "light_zfnet512.onnx").read_bytes())
    tiny_estimator().save(tmp_path / "ck")
    out = tmp_path / "out.json"
    code = main(["predict", str(folder), "--checkpoint", str(tmp_path / "ck"), "--output", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == len(bad) + 1  # one per bad file, then the count
    for path in bad:
        assert sum(str(path) in line for line in lines) == 1
    result = json.loads(out.read_text())
    assert [p["path"] for p in result["predictions"]] == [str(folder / "good.onnx")]
    assert len(result["failures"]) == len(bad) and all("\n" not in f["error"] for f in result["failures"])


def test_harness_catches_bugs():
    """The harness itself: a non-CG, a multi-line error or a stray exception is a failure."""
    with pytest.raises(HostileFailure):
        convert_hostile(12345)  # TypeError escapes from_onnx
    kind, cg = convert_hostile(conv_model((4, 3, 3, 3)))
    check_features(cg)
    assert kind == "cg" and cg.params == 108
