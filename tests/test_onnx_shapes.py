"""Shapes through computed shape chains (constfold.resolve_shapes): a Reshape,
Pad, Resize, Expand, Tile or ConstantOfShape whose shape operand is computed
from Shape / Gather / Slice / Concat / arithmetic nodes gets its shape, however
many such chains follow one another; a shape that stays unknown is reported
with the node and the cause, and only a symbolic input gets the
--input-shape hint. Every graph here is one that onnx's own inference
(data propagation included) leaves unknown, as the first assertion of each
test checks."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from gennape.cg.errors import ConversionError
from gennape.cg.onnx_import import from_onnx
from gennape.cg.onnx_import import load
from gennape.cg.onnx_import.constfold import MAX_FLOAT_OPERAND, resolve_shapes

from _onnx_graphs import f32, i64, model, node


def onnx_leaves_unknown(m: onnx.ModelProto, tensor: str) -> bool:
    inferred = onnx.shape_inference.infer_shapes(m, data_prop=True)
    info = next((vi for vi in inferred.graph.value_info if vi.name == tensor), None)
    tensor_type = info.type.tensor_type if info is not None else None
    return tensor_type is None or not tensor_type.HasField("shape") or \
        any(not d.HasField("dim_value") for d in tensor_type.shape.dim)


def const(name, value):
    return node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(value), name))


def mod_chain(prefix: str, value: int, divisor: int) -> tuple[list, str]:
    """``value % divisor`` as torch's exporter writes MultiheadAttention's
    slice ends: a 1-D constant plus a scalar, Mod, Reshape to one element
    (onnx's data propagation stops at the broadcasting Add)."""
    p = prefix
    return [const(f"{p}_v", i64(value - 1)), const(f"{p}_inc", np.int64(1)), node("Add", [f"{p}_v", f"{p}_inc"], [f"{p}_sum"]),
            const(f"{p}_d", i64(divisor)), node("Mod", [f"{p}_sum", f"{p}_d"], [f"{p}_m"]),
            const(f"{p}_one", i64(1)), node("Reshape", [f"{p}_m", f"{p}_one"], [f"{p}_mod"])], f"{p}_mod"


def token_layer(k: int, x: str, tokens: int, dim: int) -> tuple[list, str]:
    """A (1, tokens, dim) -> (1, tokens, dim) layer whose Reshape targets are
    computed from the Shape of its input, through a Slice with computed ends
    (torchvision's MultiheadAttention): split into 2 heads and back."""
    p = f"l{k}"
    chain, end = mod_chain(p, 5, 3)  # 2
    nodes = [
        *chain,
        node("Shape", [x], [f"{p}_s"]),
        const(f"{p}_zero", i64(0)),
        node("Slice", [f"{p}_s", f"{p}_zero", end], [f"{p}_head"]),  # (1, tokens)
        const(f"{p}_split", i64(2, dim // 2)),
        node("Concat", [f"{p}_head", f"{p}_split"], [f"{p}_t4"], axis=0),
        node("Reshape", [x, f"{p}_t4"], [f"{p}_r"]),  # (1, tokens, 2, dim / 2)
        node("Transpose", [f"{p}_r"], [f"{p}_tr"], perm=[0, 2, 1, 3]),
        node("Relu", [f"{p}_tr"], [f"{p}_act"]),
        node("Transpose", [f"{p}_act"], [f"{p}_back"], perm=[0, 2, 1, 3]),
        node("Shape", [x], [f"{p}_s2"]),
        node("Reshape", [f"{p}_back", f"{p}_s2"], [f"{p}_out"]),
        node("MatMul", [f"{p}_out", f"{p}_w"], [f"{p}_mm"]),
    ]
    return nodes, f"{p}_mm"


def tokens_model(layers: int):
    nodes = [node("Reshape", ["x", "flat"], ["t"])]  # (1, 3, 64): 3 tokens of 64
    inits = {"flat": i64(1, 3, 64)}
    x = "t"
    for k in range(layers):
        more, x = token_layer(k, x, 3, 64)
        nodes += more
        inits[f"l{k}_w"] = (64, 64)
    nodes.append(node("Relu", [x], ["y"]))
    return model(nodes, inits=inits)


def test_reshape_targets_through_many_layers_in_one_walk():
    # 20 layers of computed Reshape targets: the former fold-and-reinfer loop
    # stopped after 8 rounds (one round per layer).
    m = tokens_model(20)
    assert onnx_leaves_unknown(m, "l0_r")
    cg = from_onnx(m)
    linears = [n for n in cg.nodes if n.op == "linear"]
    assert len(linears) == 20 and all(n.in_shape == (3, 64) and n.out_shape == (3, 64) for n in linears)
    assert cg.nodes[-2].out_shape == (3, 64)


def test_pad_with_pads_from_a_mod_chain():
    """Swin's window padding: pad the bottom / right to a multiple of 7,
    ``(7 - H % 7) % 7``, from the Shape of the input."""
    nodes = [
        node("Shape", ["x"], ["s"]),
        const("two", np.int64(2)),
        node("Gather", ["s", "two"], ["h"], axis=0),          # 8 (a scalar)
        const("win", np.int64(7)),
        node("Mod", ["h", "win"], ["hm"]),
        node("Sub", ["win", "hm"], ["d"]),
        node("Mod", ["d", "win"], ["pad"]),                   # (7 - 8 % 7) % 7 = 6
        const("ax", i64(0)),
        node("Unsqueeze", ["pad", "ax"], ["pad1"]),
        const("zeros6", i64(0, 0, 0, 0, 0, 0)),
        node("Concat", ["zeros6", "pad1", "pad1"], ["pads"], axis=0),
        node("Pad", ["x", "pads"], ["p"]),
        node("Conv", ["p", "w"], ["y"], kernel_shape=[7, 7], strides=[7, 7]),
    ]
    m = model(nodes, inits={"w": (4, 3, 7, 7)})
    assert onnx_leaves_unknown(m, "p")
    conv = next(n for n in from_onnx(m).nodes if n.op == "conv")
    # the conv reads the unpadded input; its 2x2 output needs the 14x14 the pad made
    assert conv.in_shape == (3, 8, 8) and conv.out_shape == (4, 2, 2)


def test_resize_with_scales_from_a_concat():
    """``F.interpolate(scale_factor=2)`` exported without constant folding."""
    nodes = [
        const("keep", f32(1.0, 1.0)), const("twice", f32(2.0, 2.0)),
        node("Concat", ["keep", "twice"], ["scales"], axis=0),
        node("Resize", ["x", "", "scales"], ["r"], mode="nearest"),
        node("Conv", ["r", "w"], ["y"], kernel_shape=[3, 3]),
    ]
    m = model(nodes, inits={"w": (4, 3, 3, 3)})
    assert onnx_leaves_unknown(m, "r")
    cg = from_onnx(m)
    assert next(n for n in cg.nodes if n.op == "resize").out_shape == (3, 16, 16)
    assert next(n for n in cg.nodes if n.op == "conv").out_shape == (4, 14, 14)


def test_resize_to_sizes_computed_from_another_branch():
    """HRNet: the low-resolution branch is resized to the Shape of the high one
    (taken through a Mod chain here, which onnx cannot follow)."""
    chain, two = mod_chain("k", 5, 3)
    nodes = [
        node("Conv", ["x", "wd"], ["low"], kernel_shape=[1, 1], strides=[2, 2]),   # 3x4x4
        node("Shape", ["x"], ["s"]),
        *chain,
        const("four", i64(4)),
        node("Slice", ["s", two, "four"], ["hw"]),                                  # (8, 8)
        node("Shape", ["low"], ["sl"]),
        const("zero", i64(0)),
        node("Slice", ["sl", "zero", two], ["nc"]),                                 # (1, 3)
        node("Concat", ["nc", "hw"], ["sizes"], axis=0),
        node("Resize", ["low", "", "", "sizes"], ["up"], mode="linear"),
        node("Add", ["x", "up"], ["y"]),
    ]
    m = model(nodes, inits={"wd": (3, 3, 1, 1)})
    assert onnx_leaves_unknown(m, "up")
    cg = from_onnx(m)
    assert next(n for n in cg.nodes if n.op == "resize").out_shape == (3, 8, 8)
    assert next(n for n in cg.nodes if n.op == "add").out_shape == (3, 8, 8)


def test_constant_of_shape_expand_and_tile_with_computed_operands():
    chain, two = mod_chain("k", 5, 3)
    nodes = [
        *chain,
        node("Shape", ["x"], ["s"]),
        node("Slice", ["s", "ones1", two], ["c"]),                          # (3,)
        const("ones2", i64(1, 1)),
        node("Concat", ["ones1", "c", "ones2"], ["cshape"], axis=0),     # (1, 3, 1, 1)
        node("ConstantOfShape", ["cshape"], ["zeros"], value=numpy_helper.from_array(f32(0.0))),
        node("GlobalAveragePool", ["x"], ["g"]),                          # 1x3x1x1
        node("Add", ["g", "zeros"], ["g2"]),
        node("Shape", ["x"], ["sx"]),
        node("Expand", ["g2", "sx"], ["e"]),                              # 1x3x8x8
        node("Concat", ["ones2", "ones1", two], ["rep"], axis=0),        # (1, 1, 1, 2)
        node("Tile", ["e", "rep"], ["t"]),                                # 1x3x8x16
        node("Conv", ["t", "w"], ["y"], kernel_shape=[1, 1]),
    ]
    m = model(nodes, inits={"w": (4, 3, 1, 1), "ones1": i64(1)})
    assert onnx_leaves_unknown(m, "t")
    # Expand and Tile have no handler (yet): the shape pass itself is checked.
    inferred, _ = load.infer_shapes(m, "<test>")
    shapes = load.shape_table(inferred)
    assert resolve_shapes(inferred, shapes) == {}
    assert [shapes.get(t) for t in ("zeros", "e", "t", "y")] == [(1, 3, 1, 1), (1, 3, 8, 8), (1, 3, 8, 16), (1, 4, 8, 16)]


def test_shape_pass_reads_no_weight_data(monkeypatch):
    """Every float weight is external data in a file that does not exist; the
    shape pass reads integer shape values and floats of at most
    MAX_FLOAT_OPERAND elements only."""
    m = tokens_model(3)
    for init in m.graph.initializer:
        if init.data_type == TensorProto.FLOAT:
            init.ClearField("raw_data")
            init.ClearField("float_data")
            init.data_location = TensorProto.EXTERNAL
            entry = init.external_data.add()
            entry.key, entry.value = "location", "no_such_weights.bin"
    read = []
    original = numpy_helper.to_array

    def recording(t, *args, **kwargs):
        read.append((t.name, t.data_type, int(np.prod(t.dims))))
        return original(t, *args, **kwargs)

    monkeypatch.setattr(numpy_helper, "to_array", recording)
    cg = from_onnx(m.SerializeToString())
    assert sum(n.params for n in cg.nodes) == 3 * 64 * 64
    floats = [r for r in read if r[1] in (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16)]
    assert all(numel <= MAX_FLOAT_OPERAND for _, _, numel in floats)
    assert not any(name.endswith("_w") for name, _, _ in read)


def test_unresolvable_shape_names_the_node_and_cause():
    """A Reshape whose target is computed from the input's values: its shape
    is unknowable, and --input-shape would not help."""
    nodes = [
        node("GlobalAveragePool", ["x"], ["g"]),
        const("flat", i64(3)),
        node("Reshape", ["g", "flat"], ["gv"]),
        node("Cast", ["gv"], ["target"], to=TensorProto.INT64),
        node("Reshape", ["x", "target"], ["r"], name="bad_reshape"),
        node("Relu", ["r"], ["y"]),
    ]
    with pytest.raises(ConversionError) as info:
        from_onnx(model(nodes))
    message = str(info.value)
    assert "Reshape node 'bad_reshape'" in message and "operand 'target' is not a constant" in message
    assert "--input-shape" not in message and "\n" not in message


def test_custom_op_without_shape_inference_is_named():
    nodes = [node("Conv", ["x", "w"], ["c"], kernel_shape=[1, 1]),
             helper.make_node("Mystery", ["c"], ["m"], domain="com.example", name="mystery"),
             node("Conv", ["m", "w2"], ["y"], kernel_shape=[1, 1])]
    m = model(nodes, inits={"w": (4, 3, 1, 1), "w2": (4, 4, 1, 1)})
    m.opset_import.append(helper.make_opsetid("com.example", 1))
    with pytest.raises(ConversionError, match="Mystery node 'mystery'") as info:
        from_onnx(m, unknown_ops="other")
    assert "--input-shape" not in str(info.value)


def test_only_a_symbolic_input_gets_the_input_shape_hint():
    m = tokens_model(1)
    m.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "H"
    with pytest.raises(ConversionError, match="unknown dimensions.*--input-shape|input shape"):
        from_onnx(m)
    assert from_onnx(m, input_shape="1x3x8x8").nodes[-2].out_shape == (3, 64)


def test_if_on_a_static_condition_takes_its_branch():
    """timm's SAM2-Hiera resizes its window position embedding under an If on
    a size check: the condition is static, so the branch taken gives the
    shape (onnx itself merges the two branches' different shapes to unknown)."""
    def branch(name, shape):
        return helper.make_graph([const(f"{name}_s", i64(*shape)), node("Reshape", ["pos", f"{name}_s"], [f"{name}_out"])],
                                 name, [], [helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, None)])

    nodes = [
        node("Shape", ["x"], ["s"]), const("two", np.int64(2)), node("Gather", ["s", "two"], ["h"], axis=0),
        const("four", np.int64(4)), node("Greater", ["h", "four"], ["big"]),
        helper.make_node("If", ["big"], ["pe"], then_branch=branch("then", (1, 3, 8, 8)),
                         else_branch=branch("else", (1, 3, 4, 16))),
        node("Add", ["x", "pe"], ["a"]),
        node("Conv", ["a", "w"], ["y"], kernel_shape=[1, 1]),
    ]
    m = model(nodes, inits={"pos": (1, 3, 64), "w": (4, 3, 1, 1)})
    assert onnx_leaves_unknown(m, "pe")
    cg = from_onnx(m)
    assert sum(n.params for n in cg.nodes) == 3 * 64 + 4 * 3
    assert cg.nodes[-2].out_shape == (4, 8, 8)


def test_tf_same_padding_through_float_arithmetic_and_clip():
    """timm's pad_same: ``max((ceil(h / s) - 1) * s + k - h, 0)`` in float,
    written as Cast / Mul / Sub / Clip / Div / Cast nodes, then split in two
    halves for the Pad (here h = 8, k = 3, s = 2: 1 pixel, all at the end)."""
    nodes = [
        node("Shape", ["x"], ["s"]), const("two", np.int64(2)), node("Gather", ["s", "two"], ["h"], axis=0),
        node("Cast", ["h"], ["hf"], to=TensorProto.FLOAT),
        const("stride", np.float32(2.0)), node("Div", ["hf", "stride"], ["q"]), node("Ceil", ["q"], ["qc"]),
        const("onef", np.float32(1.0)), node("Sub", ["qc", "onef"], ["q1"]), node("Mul", ["q1", "stride"], ["qs"]),
        const("kernel", np.float32(3.0)), node("Add", ["qs", "kernel"], ["need"]), node("Sub", ["need", "hf"], ["pad"]),
        const("zerof", np.float32(0.0)), node("Clip", ["pad", "zerof"], ["padc"]),
        node("Div", ["padc", "stride"], ["half"]), node("Floor", ["half"], ["lo"]), node("Sub", ["padc", "lo"], ["hi"]),
        node("Cast", ["lo"], ["loi"], to=TensorProto.INT64), node("Cast", ["hi"], ["hii"], to=TensorProto.INT64),
        const("ax", i64(0)), node("Unsqueeze", ["loi", "ax"], ["lo1"]), node("Unsqueeze", ["hii", "ax"], ["hi1"]),
        const("z2", i64(0, 0)),
        node("Concat", ["z2", "lo1", "lo1", "z2", "hi1", "hi1"], ["pads"], axis=0),
        node("Pad", ["x", "pads"], ["p"]),
        node("Conv", ["p", "w"], ["y"], kernel_shape=[3, 3], strides=[2, 2]),
    ]
    m = model(nodes, inits={"w": (4, 3, 3, 3)})
    assert onnx_leaves_unknown(m, "p")
    conv = next(n for n in from_onnx(m).nodes if n.op == "conv")
    # the conv reads the unpadded input; its 4x4 output needs the 9x9 the pad made
    assert conv.in_shape == (3, 8, 8) and conv.out_shape == (4, 4, 4)
