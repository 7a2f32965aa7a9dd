"""One test per registered ONNX op type (onnx2torch style): a registered op
without a case here fails. Also checks that docs/supported_ops.md is current."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _onnx_graphs import f32, i64, model, node, scalar

from gennape.cg.errors import UnsupportedOpsError
from gennape.cg.onnx_import import from_onnx, supported_ops
from gennape.cg.onnx_import.support_table import render

X = ("x", (1, 3, 8, 8))
ROOT = Path(__file__).resolve().parent.parent


#: ConvNeXt's channels-first LayerNorm written out: Sub, Pow, ReduceMean, Add, Sqrt, Div.
_LAYER_NORM = ([node("ReduceMean", ["x"], ["u"], axes=[1]), node("Sub", ["x", "u"], ["d"]),
                node("Pow", ["d", "two"], ["p"]), node("ReduceMean", ["p"], ["v"], axes=[1]),
                node("Add", ["v", "eps"], ["ve"]), node("Sqrt", ["ve"], ["q"]), node("Div", ["d", "q"], ["y"])],
               {"two": scalar(2), "eps": scalar(1e-6)}, [X], {"layer_norm": 1}, 13)


def _conv_in(name="c"):
    return node("Conv", ["x", "w"], [name], kernel_shape=[3, 3], pads=[1, 1, 1, 1])


#: ONNX op -> (nodes, initializers, input shapes, {CG op: count} expected among
#: the nodes other than input/output, extra node check or None, opset).
CASES = {
    "Add": ([node("Add", ["x", "x"], ["y"])], {}, [X], {"add": 1}),
    "Sub": ([node("Sub", ["x", "x"], ["y"])], {}, [X], {"add": 1}),
    # x * x is a square, scalar arithmetic (rule self_products): a product of two tensors
    "Mul": ([node("Relu", ["x"], ["r"]), node("Mul", ["x", "r"], ["y"])], {}, [X], {"relu": 1, "mul": 1}),
    "Div": ([node("Div", ["x", "x"], ["y"])], {}, [X], {"mul": 1}),
    "Sum": ([node("Sum", ["x", "x", "x"], ["y"])], {}, [X], {"add": 1}),
    "Concat": ([node("Concat", ["x", "x"], ["y"], axis=1)], {}, [X], {"concat": 1}),
    "Conv": ([node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[3, 3], strides=[2, 2])],
             {"w": (8, 3, 3, 3), "b": (8,)}, [X], {"conv": 1}),
    **{op: ([node(op, ["x", "w", "r", "b"], ["y"], hidden_size=16)],
            {"w": (1, g * 16, 8), "r": (1, g * 16, 16), "b": (1, 2 * g * 16)}, [("x", (4, 1, 8))], {"rnn": 1})
       for op, g in (("LSTM", 4), ("GRU", 3), ("RNN", 1))},
    "ConvTranspose": ([node("ConvTranspose", ["x", "w", "b"], ["y"], kernel_shape=[2, 2], strides=[2, 2])],
                      {"w": (3, 4, 2, 2), "b": (4,)}, [X], {"conv_transpose": 1}),
    "Gemm": ([node("Flatten", ["x"], ["f"]), node("Gemm", ["f", "w", "b"], ["y"], transB=1)],
             {"w": (10, 192), "b": (10,)}, [X], {"linear": 1}),
    "MatMul": ([node("Flatten", ["x"], ["f"]), node("MatMul", ["f", "w"], ["y"])],
               {"w": (192, 10)}, [X], {"linear": 1}),
    "BatchNormalization": ([node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])],
                           {k: (3,) for k in "sbmv"}, [X], {"batch_norm": 1}),
    "InstanceNormalization": ([node("InstanceNormalization", ["x", "s", "b"], ["y"])],
                              {"s": (3,), "b": (3,)}, [X], {"layer_norm": 1}),
    "LayerNormalization": ([node("LayerNormalization", ["x", "s", "b"], ["y"], axis=-1)],
                           {"s": (8,), "b": (8,)}, [X], {"layer_norm": 1}),
    "GroupNormalization": ([node("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=3)],
                           {"s": (3,), "b": (3,)}, [X], {"layer_norm": 1}, 21),
    "LRN": ([node("LRN", ["x"], ["y"], size=3)], {}, [X], {"lrn": 1}),
    "MaxPool": ([node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])], {}, [X], {"max_pool": 1}),
    "AveragePool": ([node("AveragePool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])], {}, [X],
                    {"avg_pool": 1}),
    "GlobalAveragePool": ([node("GlobalAveragePool", ["x"], ["y"])], {}, [X], {"global_avg_pool": 1}),
    "GlobalMaxPool": ([node("GlobalMaxPool", ["x"], ["y"])], {}, [X], {"global_max_pool": 1}),
    "ReduceMean": ([node("ReduceMean", ["x", "a"], ["y"], keepdims=1)], {"a": i64(2, 3)}, [X],
                   {"global_avg_pool": 1}, 18),
    "ReduceMax": ([node("ReduceMax", ["x"], ["y"], axes=[-2, -1], keepdims=0)], {}, [X],
                  {"global_max_pool": 1}, 13),
    "ReduceMin": ([node("ReduceMin", ["x"], ["y"], axes=[1], keepdims=1)], {}, [X], {"reduce": 1}, 13),
    "ReduceSum": ([node("Reshape", ["x", "s"], ["r"]), node("ReduceSum", ["r", "a"], ["y"], keepdims=0)],
                  {"s": i64(1, 3, 1, 8, 8), "a": i64(1)}, [X], {"add": 1, "reshape": 1}),
    "ReduceL2": ([node("ReduceL2", ["x"], ["y"], axes=[1], keepdims=1)], {}, [X], {"reduce": 1}, 13),
    "Expand": ([node("ReduceMean", ["x"], ["r"], axes=[1], keepdims=1), node("Expand", ["r", "s"], ["y"])],
               {"s": i64(1, 3, 8, 8)}, [X], {"reduce": 1, "reshape": 1}, 13),
    "Tile": ([node("Tile", ["x", "r"], ["y"])], {"r": i64(1, 2, 1, 1)}, [X], {"reshape": 1}),
    "Pow": _LAYER_NORM,
    "Reciprocal": ([node("Relu", ["x"], ["r"]), node("Reciprocal", ["r"], ["y"])], {}, [X], {"relu": 1}),
    "Neg": ([node("Relu", ["x"], ["r"]), node("Neg", ["r"], ["y"])], {}, [X], {"relu": 1}),
    "Sqrt": _LAYER_NORM,
    "Einsum": ([node("Einsum", ["x", "x"], ["y"], equation="bchw,bckw->bchk")], {}, [X], {"matmul": 1}),
    "Relu": ([node("Relu", ["x"], ["y"])], {}, [X], {"relu": 1}),
    "Sigmoid": ([node("Sigmoid", ["x"], ["y"])], {}, [X], {"sigmoid": 1}),
    "Tanh": ([node("Tanh", ["x"], ["y"])], {}, [X], {"tanh": 1}),
    "Softmax": ([node("Softmax", ["x"], ["y"])], {}, [X], {"softmax": 1}),
    "LogSoftmax": ([node("LogSoftmax", ["x"], ["y"])], {}, [X], {"softmax": 1}),
    "LeakyRelu": ([node("LeakyRelu", ["x"], ["y"], alpha=0.1)], {}, [X], {"leaky_relu": 1}),
    "PRelu": ([node("PRelu", ["x", "s"], ["y"])], {"s": (3, 1, 1)}, [X], {"leaky_relu": 1}),
    "HardSigmoid": ([node("HardSigmoid", ["x"], ["y"])], {}, [X], {"hard_sigmoid": 1}),
    "HardSwish": ([node("HardSwish", ["x"], ["y"])], {}, [X], {"hard_swish": 1}),
    "Gelu": ([node("Gelu", ["x"], ["y"])], {}, [X], {"gelu": 1}, 20),
    "Clip": ([node("Clip", ["x", "lo", "hi"], ["y"])], {"lo": scalar(0), "hi": scalar(6)}, [X], {"relu6": 1}),
    "Max": ([node("Max", ["x", "z"], ["y"])], {"z": scalar(0)}, [X], {"relu": 1}),
    "Min": ([node("Max", ["x", "z"], ["r"]), node("Min", ["r", "six"], ["y"])],
            {"z": scalar(0), "six": scalar(6)}, [X], {"relu6": 1}),
    "Erf": ([node("Div", ["x", "s2"], ["d"]), node("Erf", ["d"], ["e"]), node("Add", ["e", "one"], ["a"]),
             node("Mul", ["x", "a"], ["m"]), node("Mul", ["m", "half"], ["y"])],
            {"s2": scalar(2 ** 0.5), "one": scalar(1), "half": scalar(0.5)}, [X], {"gelu": 1}),
    "Identity": ([node("Relu", ["x"], ["r"]), node("Identity", ["r"], ["y"])], {}, [X], {"relu": 1}),
    "Dropout": ([node("Relu", ["x"], ["r"]), node("Dropout", ["r"], ["y"])], {}, [X], {"relu": 1}),
    "Cast": ([node("Relu", ["x"], ["r"]), node("Cast", ["r"], ["y"], to=1)], {}, [X], {"relu": 1}),
    "Reshape": ([node("Reshape", ["x", "s"], ["y"])], {"s": i64(1, 3, 64)}, [X], {"reshape": 1}),
    "Flatten": ([node("Flatten", ["x"], ["y"])], {}, [X], {"reshape": 1}),
    "Squeeze": ([node("GlobalAveragePool", ["x"], ["p"]), node("Squeeze", ["p", "a"], ["y"])],
                {"a": i64(2, 3)}, [X], {"global_avg_pool": 1, "reshape": 1}),
    "Unsqueeze": ([node("Unsqueeze", ["x", "a"], ["y"])], {"a": i64(2)}, [X], {"reshape": 1}),
    "Transpose": ([node("Transpose", ["x"], ["y"], perm=[0, 1, 3, 2])], {}, [X], {"reshape": 1}),
    # F.fold of 3x3 blocks with padding 1 back into an 8x8 image: a reshape node, as a channel shuffle is
    "Col2Im": ([node("Reshape", ["x", "s"], ["r"]), node("Col2Im", ["r", "img", "blk"], ["y"], pads=[1, 1, 1, 1])],
               {"s": i64(1, 72, 64), "img": i64(8, 8), "blk": i64(3, 3)}, [("x", (1, 72, 8, 8))], {"reshape": 1}, 18),
    "DepthToSpace": ([node("DepthToSpace", ["x"], ["y"], blocksize=2)], {}, [("x", (1, 8, 4, 4))], {"reshape": 1}),
    "SpaceToDepth": ([node("SpaceToDepth", ["x"], ["y"], blocksize=2)], {}, [X], {"reshape": 1}),
    "Pad": ([node("Pad", ["x", "p"], ["q"]), node("Conv", ["q", "w"], ["y"], kernel_shape=[3, 3])],
            {"p": i64(0, 0, 1, 1, 0, 0, 1, 1), "w": (4, 3, 3, 3)}, [X], {"conv": 1}),
    "Slice": ([node("Slice", ["x", "s", "e", "a"], ["y"])], {"s": i64(0), "e": i64(2), "a": i64(1)}, [X],
              {"slice": 1}),
    "Split": ([node("Split", ["x"], ["y", "z"], axis=2, num_outputs=2)], {}, [X], {"slice": 2}, 18),
    # x[0, 1] = relu(x[:, 1:2]): the tensor assembled from its kept part and the update
    "ScatterND": ([node("Slice", ["x", "s", "e", "a"], ["p"]), node("Relu", ["p"], ["r"]),
                   node("ScatterND", ["x", "i", "r"], ["y"])],
                  {"s": i64(1), "e": i64(2), "a": i64(1), "i": i64(0, 1).reshape(1, 1, 2)}, [X],
                  {"slice": 1, "relu": 1, "concat": 1}),
    "Gather": ([node("Gather", ["x", "i"], ["y"], axis=1)], {"i": i64(0, 2)}, [X], {"slice": 1}),
    # the rows of x reversed (dynamo's x[:, :, perm]): one permuting move with the Transpose before it
    "GatherND": ([node("Transpose", ["x"], ["t"], perm=[2, 3, 0, 1]), node("GatherND", ["t", "i"], ["y"])],
                 {"i": i64(*range(7, -1, -1)).reshape(8, 1)}, [X], {"reshape": 1}),
    # a constant condition choosing between two activations
    "Where": ([node("Relu", ["x"], ["r"]), node("Where", ["m", "r", "x"], ["y"])],
              {"m": np.eye(8, dtype=bool)}, [X], {"relu": 1, "concat": 1}),
    "Resize": ([node("Resize", ["x", "", "s"], ["y"])], {"s": f32(1, 1, 2, 2)}, [X], {"resize": 1}),
    "Upsample": ([node("Upsample", ["x", "s"], ["y"])], {"s": f32(1, 1, 2, 2)}, [X], {"resize": 1}, 9),
}


def test_every_registered_op_has_a_case():
    assert sorted(CASES) == sorted(supported_ops())


@pytest.mark.parametrize("op_type", sorted(supported_ops()))
def test_op(op_type):
    if op_type not in CASES:
        pytest.fail(f"no test case for registered op {op_type}")
    nodes, inits, inputs, expected, *rest = CASES[op_type]
    opset = rest[0] if rest else 17
    outputs = [o for n in nodes[-1:] for o in n.output]
    cg = from_onnx(model(nodes, inputs=inputs, outputs=outputs, inits=inits, opset=opset))
    counts = cg.op_counts()
    assert counts.pop("input") == 1 and counts.pop("output") == len(outputs)
    assert counts == expected
    cg.validate()


def test_conv_transpose_geometry():
    nodes, inits, inputs, *_ = CASES["ConvTranspose"]
    up = next(n for n in from_onnx(model(nodes, inputs=inputs, outputs=["y"], inits=inits)).nodes
              if n.op == "conv_transpose")
    assert up.in_shape == (3, 8, 8) and up.out_shape == (4, 16, 16) and up.weight_shape == (4, 3, 2, 2)
    assert up.params == 3 * 4 * 4 + 4 and up.macs == 3 * 8 * 8 * 4 * 2 * 2


def test_lstm_geometry():
    nodes, inits, inputs, *_ = CASES["LSTM"]
    rnn = next(n for n in from_onnx(model(nodes, inputs=inputs, outputs=["y"], inits=inits)).nodes if n.op == "rnn")
    assert rnn.in_shape == (4, 8) and rnn.out_shape == (4, 16) and rnn.weight_shape == (64, 8)
    assert rnn.params == 64 * 8 + 64 * 16 + 128 and rnn.macs == 4 * 64 * (8 + 16)


def test_supported_ops_doc_is_current():
    doc = ROOT / "docs" / "supported_ops.md"
    assert doc.read_text() == render(), "regenerate: python -m gennape.cg.onnx_import.support_table > docs/supported_ops.md"


def test_list_ops_has_a_description_per_op():
    ops = supported_ops()
    assert "Conv" in ops and all(desc for desc in ops.values())


def test_scatter_nd_with_a_constant_side_or_a_reduction():
    """Fixed values written into a tensor move it; a reducing scatter combines
    both sides even when it covers every element."""
    relu = node("Relu", ["x"], ["r"])
    fixed = model([relu, node("ScatterND", ["r", "i", "u"], ["y"])], inputs=[X], outputs=["y"], opset=16,
                  inits={"i": i64(0, 1).reshape(1, 1, 2), "u": np.zeros((1, 1, 8, 8), np.float32)})
    assert from_onnx(fixed).op_counts() == {"input": 1, "relu": 1, "reshape": 1, "output": 1}
    every = np.stack(np.meshgrid(np.arange(1), np.arange(3), indexing="ij"), -1).astype(np.int64)  # [1, 3, 2]
    summed = model([relu, node("ScatterND", ["r", "i", "x"], ["y"], reduction="add")], inputs=[X], outputs=["y"],
                   inits={"i": every}, opset=16)
    assert from_onnx(summed).op_counts()["concat"] == 1


def test_where_masking_by_a_constant_vanishes_and_a_computed_condition_is_unsupported():
    relu = node("Relu", ["x"], ["r"])
    masked = model([relu, node("Where", ["m", "zero", "r"], ["y"])], inputs=[X], outputs=["y"],
                   inits={"m": np.eye(8, dtype=bool), "zero": scalar(0)})
    assert from_onnx(masked).op_counts() == {"input": 1, "relu": 1, "output": 1}
    computed = model([relu, node("Greater", ["r", "zero"], ["c"]), node("Where", ["c", "r", "x"], ["y"])],
                     inputs=[X], outputs=["y"], inits={"zero": scalar(0)})
    with pytest.raises(UnsupportedOpsError, match="Where"):
        from_onnx(computed)


def test_gather_nd_keeping_fewer_elements_is_a_slice_and_from_a_table_unsupported():
    pick = model([node("Transpose", ["x"], ["t"], perm=[2, 3, 0, 1]), node("GatherND", ["t", "i"], ["y"])],
                 inputs=[X], outputs=["y"], inits={"i": i64(0, 3).reshape(2, 1)})
    assert from_onnx(pick).op_counts() == {"input": 1, "reshape": 1, "slice": 1, "output": 1}
    # rows of a table looked up by computed indices (an embedding)
    lookup = model([node("Cast", ["x"], ["i"], to=7), node("GatherND", ["e", "i"], ["y"])],
                   inputs=[X], outputs=["y"], inits={"e": f32(*range(8)).reshape(8, 1)})
    with pytest.raises(UnsupportedOpsError, match="GatherND"):
        from_onnx(lookup)
