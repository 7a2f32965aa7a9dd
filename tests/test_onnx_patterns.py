"""Pair tests, one per canonical rule: two ONNX spellings of the same network
(built with onnx.helper) give the same CG."""

from __future__ import annotations

import numpy as np
import pytest
from _onnx_graphs import i64, model, node, scalar

from gennape.cg.onnx_import import from_onnx

W0 = {"w0": (8, 3, 3, 3)}


def net(middle, inits=None, opset=17, tail=True):
    """x -> Conv -> a -> [middle: a ... b] -> Relu -> y."""
    nodes = [node("Conv", ["x", "w0"], ["a"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]), *middle]
    if tail:
        nodes.append(node("Relu", ["b"], ["y"]))
    else:
        nodes[-1].output[0] = "y"
    return from_onnx(model(nodes, inits={**W0, **(inits or {})}, opset=opset))


def same(a, b, params=True):
    assert [n.order_key() for n in a.nodes] == [n.order_key() for n in b.nodes]
    assert a.edges == b.edges
    if params:
        assert a.params == b.params


def ops(cg):
    counts = cg.op_counts()
    counts.pop("input"), counts.pop("output")
    return counts


def test_gemm_equals_matmul_add():
    inits = {"w": (10, 512), "wt": (512, 10), "bias": (10,)}
    gemm = net([node("Flatten", ["a"], ["f"]), node("Gemm", ["f", "w", "bias"], ["b"], transB=1)], inits)
    mm = net([node("Flatten", ["a"], ["f"]), node("MatMul", ["f", "wt"], ["m"]),
              node("Add", ["m", "bias"], ["b"])], inits)
    same(gemm, mm)
    assert ops(gemm) == {"conv": 1, "linear": 1, "relu": 1}
    linear = next(n for n in gemm.nodes if n.op == "linear")
    assert linear.in_shape == (512,) and linear.weight_shape == (10, 512) and linear.params == 5130
    assert linear.macs == 5120


@pytest.mark.parametrize("variant", ["attr13", "input18", "keepdims0"])
def test_global_average_pool_equals_reduce_mean(variant):
    gap = net([node("GlobalAveragePool", ["a"], ["b"])])
    if variant == "attr13":
        rm = net([node("ReduceMean", ["a"], ["b"], axes=[2, 3], keepdims=1)], opset=13)
    elif variant == "input18":
        rm = net([node("ReduceMean", ["a", "ax"], ["b"], keepdims=1)], {"ax": i64(-1, -2)}, opset=18)
    else:  # keepdims=0 then a Reshape back: the reshape is a no-op in the CG
        rm = net([node("ReduceMean", ["a"], ["r"], axes=[2, 3], keepdims=0),
                  node("Reshape", ["r", "s"], ["b"])], {"s": i64(1, 8, 1, 1)}, opset=13)
    same(gap, rm)
    pool = next(n for n in gap.nodes if n.op == "global_avg_pool")
    assert pool.out_shape == (8, 1, 1)


def _clip(src, dst, opset, lo=0.0, hi=6.0, k=""):
    if opset < 11:
        return [node("Clip", [src], [dst], min=lo, max=hi)], {}
    return [node("Clip", [src, f"lo{k}", f"hi{k}"], [dst])], {f"lo{k}": scalar(lo), f"hi{k}": scalar(hi)}


@pytest.mark.parametrize("opset", [9, 13])
def test_hard_swish_spellings(opset):
    ref = net([node("HardSwish", ["a"], ["b"])], opset=14)
    hsig = net([node("HardSigmoid", ["a"], ["h"], alpha=1 / 6), node("Mul", ["a", "h"], ["b"])], opset=opset)
    clip, cinit = _clip("p", "r", opset)
    decomposed = net([node("Add", ["a", "three"], ["p"]), *clip, node("Mul", ["a", "r"], ["m"]),
                      node("Div", ["m", "six"], ["b"])], {"three": scalar(3), "six": scalar(6), **cinit}, opset)
    gate_first = net([node("Add", ["a", "three"], ["p"]), *clip, node("Div", ["r", "six"], ["h"]),
                      node("Mul", ["h", "a"], ["b"])], {"three": scalar(3), "six": scalar(6), **cinit}, opset)
    for other in (hsig, decomposed, gate_first):
        same(ref, other)
    assert ops(ref) == {"conv": 1, "hard_swish": 1, "relu": 1}


def test_hard_sigmoid_from_relu6():
    ref = net([node("HardSigmoid", ["a"], ["b"], alpha=1 / 6)])
    clip, cinit = _clip("p", "r", 13)
    dec = net([node("Add", ["a", "three"], ["p"]), *clip, node("Mul", ["r", "sixth"], ["b"])],
              {"three": scalar(3), "sixth": scalar(1 / 6), **cinit})
    same(ref, dec)


def test_silu_equals_x_sigmoid_x():
    ref = net([node("Sigmoid", ["a"], ["s"]), node("Mul", ["a", "s"], ["b"])])
    swapped = net([node("Sigmoid", ["a"], ["s"]), node("Mul", ["s", "a"], ["b"])])
    same(ref, swapped)
    assert ops(ref) == {"conv": 1, "silu": 1, "relu": 1}


def test_sigmoid_gate_of_another_tensor_stays_a_mul():
    cg = net([node("Relu", ["a"], ["r"]), node("Sigmoid", ["r"], ["s"]), node("Mul", ["a", "s"], ["b"])])
    assert ops(cg) == {"conv": 1, "relu": 2, "sigmoid": 1, "mul": 1}


@pytest.mark.parametrize("variant", ["clip_attr9", "clip_input13", "min_max"])
def test_relu6_spellings(variant):
    ref = net([node("Clip", ["a", "lo", "hi"], ["b"])], {"lo": scalar(0), "hi": scalar(6)}, opset=13)
    if variant == "clip_attr9":
        other = net([node("Clip", ["a"], ["b"], min=0.0, max=6.0)], opset=9)
    elif variant == "clip_input13":
        other = net([node("Constant", [], ["lo"], value_float=0.0), node("Constant", [], ["hi"], value_float=6.0),
                     node("Clip", ["a", "lo", "hi"], ["b"])], opset=13)
    else:
        other = net([node("Max", ["a", "z"], ["r"]), node("Min", ["r", "six"], ["b"])],
                    {"z": scalar(0), "six": scalar(6)}, opset=13)
    same(ref, other)
    assert ops(ref) == {"conv": 1, "relu6": 1, "relu": 1}


def test_clip_with_other_bounds_is_unsupported():
    from gennape.cg.errors import UnsupportedOpsError

    with pytest.raises(UnsupportedOpsError, match="Clip"):
        net([node("Clip", ["a", "lo", "hi"], ["b"])], {"lo": scalar(-1), "hi": scalar(1)})


@pytest.mark.parametrize("opset", [9, 13])
def test_pad_merges_into_consumer(opset):
    pads = [0, 0, 1, 1, 0, 0, 1, 1]
    pad = (node("Pad", ["a"], ["p"], pads=pads) if opset < 11 else node("Pad", ["a", "pads"], ["p"]))
    cg = net([pad, node("Conv", ["p", "w1"], ["b"], kernel_shape=[3, 3])],
             {"w1": (4, 8, 3, 3), "pads": i64(*pads)}, opset=opset)
    assert ops(cg) == {"conv": 2, "relu": 1}
    second = [n for n in cg.nodes if n.op == "conv"][1]
    assert second.in_shape == (8, 8, 8) and second.out_shape == (4, 8, 8)
    ref = net([node("Pad", ["a", "pads"], ["p"]), node("Conv", ["p", "w1"], ["b"], kernel_shape=[3, 3])],
              {"w1": (4, 8, 3, 3), "pads": i64(*pads)}, opset=13)
    same(ref, cg)
    fused = net([node("Conv", ["a", "w1"], ["b"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])], {"w1": (4, 8, 3, 3)})
    same(fused, cg)  # the dynamo exporter's optimizer folds the Pad into the Conv


def test_shape_subgraph_reshape_before_linear_vanishes():
    inits = {"w": (10, 512), "bias": (10,)}
    flat = net([node("Flatten", ["a"], ["f"]), node("Gemm", ["f", "w", "bias"], ["b"], transB=1)], inits)
    dynamic = net([
        node("Shape", ["a"], ["sh"]), node("Gather", ["sh", "zero"], ["n"], axis=0),
        node("Unsqueeze", ["n", "ax0"], ["n1"]), node("Concat", ["n1", "minus1"], ["shape"], axis=0),
        node("Reshape", ["a", "shape"], ["f"]), node("Gemm", ["f", "w", "bias"], ["b"], transB=1),
    ], {**inits, "zero": i64(0).reshape(()), "ax0": i64(0), "minus1": i64(-1)})
    same(flat, dynamic)
    assert ops(flat) == {"conv": 1, "linear": 1, "relu": 1}


def test_channel_shuffle_is_one_reshape_and_noop_reshape_vanishes():
    shuffle = net([node("Reshape", ["a", "s1"], ["r"]), node("Transpose", ["r"], ["t"], perm=[0, 2, 1, 3, 4]),
                   node("Reshape", ["t", "s2"], ["b"])], {"s1": i64(1, 2, 4, 8, 8), "s2": i64(1, 8, 8, 8)})
    assert ops(shuffle) == {"conv": 1, "reshape": 1, "relu": 1}
    rs = next(n for n in shuffle.nodes if n.op == "reshape")
    assert rs.in_shape == rs.out_shape == (8, 8, 8)
    noop = net([node("Reshape", ["a", "s1"], ["r"]), node("Reshape", ["r", "s2"], ["b"])],
               {"s1": i64(1, 2, 4, 8, 8), "s2": i64(1, 8, 8, 8)})
    assert ops(noop) == {"conv": 1, "relu": 1}


def test_batch_norm_folds_into_conv_and_affine_into_producer():
    bn = {k: (8,) for k in ("s", "sh", "m", "v")}
    with_bn = net([node("BatchNormalization", ["a", "s", "sh", "m", "v"], ["b"])], bn)
    plain = net([node("Identity", ["a"], ["b"])])
    same(with_bn, plain, params=False)
    assert with_bn.params - plain.params == 16
    # caffe-style scale layer: per-channel Mul and Add of (C,1,1) parameters
    scale = net([node("Mul", ["a", "g"], ["m"]), node("Add", ["m", "beta"], ["b"])],
                {"g": (8, 1, 1), "beta": (8, 1, 1)})
    same(scale, with_bn)
    # a BN whose conv output has another consumer stays a batch_norm node
    branch = net([node("BatchNormalization", ["a", "s", "sh", "m", "v"], ["n"]), node("Add", ["n", "a"], ["b"])], bn)
    assert ops(branch) == {"conv": 1, "batch_norm": 1, "add": 1, "relu": 1}


def test_scalars_are_not_params_and_vanish():
    cg = net([node("Mul", ["a", "k"], ["m"]), node("Add", ["m", "k"], ["b"])], {"k": scalar(2.0)})
    assert ops(cg) == {"conv": 1, "relu": 1}
    assert cg.params == 8 * 3 * 9


def test_identity_dropout_cast_vanish():
    ref = net([node("Relu", ["a"], ["b"])])
    other = net([node("Identity", ["a"], ["i"]), node("Dropout", ["i"], ["d"]), node("Cast", ["d"], ["c"], to=1),
                 node("Relu", ["c"], ["b"])])
    same(ref, other)


def test_average_pool_over_whole_map_is_global():
    full = net([node("AveragePool", ["a"], ["b"], kernel_shape=[8, 8])])
    gap = net([node("GlobalAveragePool", ["a"], ["b"])])
    same(full, gap)


def test_conv_kinds_and_macs():
    cg = from_onnx(model([
        node("Conv", ["x", "w1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]),
        node("Conv", ["c1", "w2"], ["c2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=8),
        node("Conv", ["c2", "w3"], ["y"], kernel_shape=[1, 1], group=2),
    ], inits={"w1": (8, 3, 3, 3), "w2": (8, 1, 3, 3), "w3": (4, 4, 1, 1)}))
    conv, dw, grp = [n for n in cg.nodes if "conv" in n.op]
    assert (conv.op, dw.op, grp.op) == ("conv", "depthwise_conv", "group_conv")
    assert conv.macs == 8 * 4 * 4 * 3 * 9 and conv.stride == (2, 2)
    assert dw.macs == 8 * 4 * 4 * 1 * 9 and dw.groups == 8
    assert grp.macs == 4 * 4 * 4 * 4 and grp.weight_shape == (4, 4, 1, 1)


def _old_and_new(opset):
    """Same network in opset 7 (attributes) and opset 13 (inputs)."""
    old = opset < 11
    inits = {"w": (8, 3, 3, 3), "s": (8,), "sh": (8,), "m": (8,), "v": (8,), "fc": (10, 8), "fb": (10,)}
    nodes = [
        node("Pad", ["x"], ["p"], pads=[0, 0, 1, 1, 0, 0, 1, 1]) if old else node("Pad", ["x", "pads"], ["p"]),
        node("Conv", ["p", "w"], ["c"], kernel_shape=[3, 3]),
        node("BatchNormalization", ["c", "s", "sh", "m", "v"], ["b"]),
        node("Clip", ["b"], ["r"], min=0.0, max=6.0) if old else node("Clip", ["b", "lo", "hi"], ["r"]),
        node("Upsample", ["r"], ["u"], scales=[1.0, 1.0, 2.0, 2.0]) if old
        else node("Resize", ["r", "", "scales"], ["u"]),
        node("Dropout", ["u"], ["d"]),
        node("ReduceMean", ["d"], ["g"], axes=[2, 3], keepdims=1),
        node("Squeeze", ["g"], ["q"], axes=[2, 3]) if old else node("Squeeze", ["g", "ax"], ["q"]),
        node("Gemm", ["q", "fc", "fb"], ["y"], transB=1),
    ]
    if not old:
        inits.update(pads=i64(0, 0, 1, 1, 0, 0, 1, 1), lo=scalar(0), hi=scalar(6), ax=i64(2, 3),
                     scales=np.asarray([1, 1, 2, 2], dtype=np.float32))
    return from_onnx(model(nodes, inits=inits, opset=opset))


def test_opset7_attributes_equal_opset13_inputs():
    old, new = _old_and_new(7), _old_and_new(13)
    same(old, new)
    assert ops(old) == {"conv": 1, "relu6": 1, "resize": 1, "global_avg_pool": 1, "linear": 1}


def test_equal_parameter_free_nodes_on_one_input_are_one():
    """Common subexpressions the rules expose: pool(a) and pool(a + 0)."""
    pool = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "strides": [1, 1]}
    twice = net([node("Add", ["a", "zero"], ["a0"]), node("AveragePool", ["a"], ["p"], **pool),
                 node("AveragePool", ["a0"], ["q"], **pool), node("Add", ["p", "q"], ["b"])], {"zero": scalar(0)})
    once = net([node("AveragePool", ["a"], ["p"], **pool), node("Add", ["p", "p"], ["b"])])
    same(twice, once)
    assert ops(once) == {"conv": 1, "avg_pool": 1, "add": 1, "relu": 1}


@pytest.mark.parametrize("zero_first", [False, True])
def test_product_with_a_zero_scalar_leaves_no_branch(zero_first):
    mul = ["z", "r"] if zero_first else ["r", "z"]
    zeroed = net([node("Relu", ["a"], ["r"]), node("Mul", mul, ["m"]), node("Add", ["a", "m"], ["b"])],
                 {"z": scalar(0)})
    plain = net([node("Identity", ["a"], ["b"])])
    same(zeroed, plain)


def test_a_lone_sqrt_is_unsupported():
    from gennape.cg.errors import UnsupportedOpsError

    with pytest.raises(UnsupportedOpsError, match="Sqrt"):
        net([node("Sqrt", ["a"], ["b"])])


# --------------------------------------------------------------- the registry
#: Every canonical rule -> the tests that exercise it (a rule without one fails).
def _branches():
    """a -> four 1x1 convs c0..c3 (8 channels each)."""
    return [node("Conv", ["a", f"w{k}"], [f"c{k}"], kernel_shape=[1, 1]) for k in range(1, 5)]


BRANCH_W = {f"w{k}": (8, 8, 1, 1) for k in range(1, 5)}


@pytest.mark.parametrize("axis", [1, -3])
def test_nested_concats_equal_one_concat(axis):
    flat = net([*_branches(), node("Concat", ["c1", "c2", "c3", "c4"], ["b"], axis=1)], BRANCH_W)
    nested = net([*_branches(), node("Concat", ["c2", "c3"], ["i"], axis=axis),
                  node("Concat", ["c1", "i", "c4"], ["b"], axis=1)], BRANCH_W)
    same(flat, nested)
    assert ops(nested)["concat"] == 1


def test_a_nested_concat_with_another_reader_or_axis_stays():
    other_reader = net([*_branches(), node("Concat", ["c2", "c3"], ["i"], axis=1),
                        node("Concat", ["c1", "i", "c4"], ["j"], axis=1), node("Relu", ["i"], ["r"]),
                        node("Concat", ["j", "r"], ["b"], axis=1)], BRANCH_W)
    assert ops(other_reader)["concat"] == 2  # i stays for its relu; j is spliced into b
    assert any(other_reader.nodes[s].op == "concat" and other_reader.nodes[d].op == "relu"
               for s, d in other_reader.edges)
    other_axis = net([*_branches(), node("Concat", ["c2", "c3"], ["i"], axis=2),
                      node("Concat", ["i", "i"], ["b"], axis=1)], BRANCH_W)
    assert ops(other_axis)["concat"] == 2


def _as_strided(indices):
    """a (8x8x8) -> flatten -> Gather(indices) back to (1, 8, 8, 8): the dynamo exporter's as_strided."""
    return [node("Reshape", ["a", "flat"], ["f"]), node("Gather", ["f", "idx"], ["b"], axis=0)], \
        {"flat": i64(-1), "idx": indices}


def test_gather_of_every_element_in_order_is_a_no_op_reshape():
    middle, inits = _as_strided(np.arange(512, dtype=np.int64).reshape(1, 8, 8, 8))
    same(net(middle, inits), net([node("Identity", ["a"], ["b"])]))


def test_gather_of_every_element_with_unreadable_indices_is_a_no_op_reshape():
    from onnx import TensorProto

    middle, inits = _as_strided(np.arange(512, dtype=np.int64).reshape(1, 8, 8, 8))
    m = model([node("Conv", ["x", "w0"], ["a"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]), *middle,
               node("Relu", ["b"], ["y"])], inits={**W0, **inits})
    idx = next(t for t in m.graph.initializer if t.name == "idx")
    idx.ClearField("raw_data")  # as the dynamo exporter saves it: in the (absent) external-data file
    entry = idx.external_data.add()
    entry.key, entry.value = "location", "model.onnx.data"
    idx.data_location = TensorProto.EXTERNAL
    same(from_onnx(m), net([node("Identity", ["a"], ["b"])]))


def test_slice_that_keeps_the_whole_shape_vanishes_unless_it_reverses():
    def sliced(steps):
        return net([node("Slice", ["a", "st", "en", "ax", "sp"], ["b"])],
                   {"st": i64(0 if steps[0] > 0 else -1), "en": i64(8 if steps[0] > 0 else -9), "ax": i64(2),
                    "sp": i64(*steps)})

    same(sliced([1]), net([node("Identity", ["a"], ["b"])]))
    flipped = sliced([-1])  # all 8 rows, in reverse
    assert ops(flipped)["slice"] == 1
    assert next(n for n in flipped.nodes if n.op == "slice").out_shape == (8, 8, 8)


def test_gather_that_shuffles_every_element_is_one_reshape_and_a_partial_one_a_slice():
    shuffled = np.random.default_rng(0).permutation(512).astype(np.int64).reshape(1, 8, 8, 8)
    middle, inits = _as_strided(shuffled)
    assert ops(net(middle, inits)) == {"conv": 1, "reshape": 1, "relu": 1}
    partial = net([node("Reshape", ["a", "flat"], ["f"]), node("Gather", ["f", "idx"], ["b"], axis=0)],
                  {"flat": i64(-1), "idx": np.arange(256, dtype=np.int64)}, tail=False)
    assert "slice" in ops(partial)


def test_gelu_tanh_written_out_equals_the_gelu_op():
    consts = {"c1": scalar(0.044715), "c2": scalar((2 / np.pi) ** 0.5), "one": scalar(1.0), "half": scalar(0.5)}
    written = net([node("Mul", ["a", "a"], ["sq"]), node("Mul", ["a", "sq"], ["cube"]),
                   node("Mul", ["c1", "cube"], ["m"]), node("Add", ["a", "m"], ["inner"]),
                   node("Mul", ["c2", "inner"], ["s"]), node("Tanh", ["s"], ["t"]), node("Add", ["one", "t"], ["p"]),
                   node("Mul", ["a", "p"], ["q"]), node("Mul", ["q", "half"], ["b"])], consts)
    same(written, net([node("Gelu", ["a"], ["b"], approximate="tanh")], opset=20))
    assert ops(written) == {"conv": 1, "gelu": 1, "relu": 1}


def test_transposes_that_cancel_vanish_even_when_the_first_has_another_reader():
    to_nhwc, to_nchw = dict(perm=[0, 2, 3, 1]), dict(perm=[0, 3, 1, 2])
    both = net([node("Transpose", ["a"], ["t"], **to_nhwc), node("Transpose", ["t"], ["u"], **to_nchw),
                node("Relu", ["t"], ["r"]), node("Transpose", ["r"], ["rr"], **to_nchw), node("Add", ["u", "rr"], ["b"])])
    direct = net([node("Transpose", ["a"], ["t"], **to_nhwc), node("Relu", ["t"], ["r"]),
                  node("Transpose", ["r"], ["rr"], **to_nchw), node("Add", ["a", "rr"], ["b"])])
    same(both, direct)


def test_equal_reshapes_of_one_tensor_are_one():
    shape = {"s": i64(1, 8, 64)}
    twice = net([node("Reshape", ["a", "s"], ["r1"]), node("Reshape", ["a", "s"], ["r2"]),
                 node("Transpose", ["r2"], ["r2t"], perm=[0, 2, 1]), node("MatMul", ["r1", "r2t"], ["m"]),
                 node("Softmax", ["m"], ["b"])], shape, tail=False)
    once = net([node("Reshape", ["a", "s"], ["r1"]), node("Transpose", ["r1"], ["r1t"], perm=[0, 2, 1]),
                node("MatMul", ["r1", "r1t"], ["m"]), node("Softmax", ["m"], ["b"])], shape, tail=False)
    same(twice, once)
    assert ops(once) == {"conv": 1, "reshape": 2, "matmul": 1, "softmax": 1}


def test_a_self_product_is_a_square_like_pow_2():
    squared = net([node("Relu", ["a"], ["r"]), node("Mul", ["r", "r"], ["b"])], tail=False)
    powered = net([node("Relu", ["a"], ["r"]), node("Pow", ["r", "two"], ["b"])], {"two": scalar(2.0)}, tail=False)
    same(squared, powered)
    assert ops(squared) == {"conv": 1, "relu": 1}
    gated = net([node("Relu", ["a"], ["r"]), node("Mul", ["a", "r"], ["b"])], tail=False)
    assert ops(gated) == {"conv": 1, "relu": 1, "mul": 1}


def test_matmul_with_a_learned_query_on_the_left_is_a_matmul():
    """timm's latent attention pool: ``q @ k^T`` with ``q`` a parameter."""
    cg = net([node("Reshape", ["a", "s"], ["k"]), node("MatMul", ["q", "k"], ["m"]), node("Softmax", ["m"], ["b"])],
             {"s": i64(1, 8, 64), "q": (1, 1, 8)}, tail=False)
    mm = next(n for n in cg.nodes if n.op == "matmul")
    assert mm.out_shape == (1, 64) and mm.macs == 64 * 8 and mm.params == 8
    assert ops(cg) == {"conv": 1, "reshape": 1, "matmul": 1, "softmax": 1}


RULE_TESTS = {
    "zero_branches": ["test_product_with_a_zero_scalar_leaves_no_branch",
                      "test_torch_patterns.py::test_product_with_zero_removes_the_branch",
                      "test_torch_patterns.py::test_darts_strided_zero",
                      "test_nb201.py::test_reference_network_gives_the_spec_cg"],
    "dead_code": ["test_torch_patterns.py::test_a_layer_fed_only_by_zeros_is_a_constant_branch",
                  "test_torch_patterns.py::test_dead_code_through_a_shape_read_vanishes"],
    "chained_reductions": ["test_torch_patterns.py::test_chained_means_over_h_and_w_are_a_global_pool",
                           "test_torch_patterns.py::test_chained_max_is_a_global_max_pool"],
    "spatial_reductions": ["test_global_average_pool_equals_reduce_mean"],
    "adaptive_avg_pool": ["test_onnx_exporters.py::test_adaptive_pool_over_unequal_windows_is_one_avg_pool",
                          "test_window_gather_reduced_otherwise_is_not_an_average_pool"],
    "layer_norm": ["test_torch_patterns.py::test_layer_norm_written_out_is_layer_norm",
                   "test_torch_patterns.py::test_convnext_channels_first_layer_norm"],
    "group_std": ["test_torch_patterns.py::test_evonorm_s0_maps_to_the_vocabulary"],
    "l2_normalize": ["test_torch_patterns.py::test_l2_normalize_is_a_norm"],
    "rms_norm": ["test_torch_patterns.py::test_rms_norm_written_out_is_a_norm"],
    "group_norm": ["test_torch_patterns.py::test_torch_group_norm_is_one_layer_norm"],
    "relu6": ["test_relu6_spellings"],
    "hard_sigmoid": ["test_hard_sigmoid_from_relu6"],
    "gates": ["test_silu_equals_x_sigmoid_x", "test_sigmoid_gate_of_another_tensor_stays_a_mul"],
    "relu6_swish": ["test_hard_swish_spellings"],
    "erf_gelu": ["test_torch_patterns.py::test_gelu_via_erf_is_gelu"],
    "self_products": ["test_a_self_product_is_a_square_like_pow_2"],
    "tanh_gelu": ["test_gelu_tanh_written_out_equals_the_gelu_op",
                  "test_onnx_exporters.py::test_timm_patterns_legacy_equals_dynamo"],
    "unmatched_parts": ["test_onnx_errors.py::test_unmatched_pattern_part_is_unsupported",
                        "test_a_lone_sqrt_is_unsupported"],
    "other_reductions": ["test_torch_patterns.py::test_reductions_that_are_not_pools_are_reduce",
                         "test_torch_patterns.py::test_split_attention_sum_is_an_add",
                         "test_torch_patterns.py::test_mean_of_stacked_heads_is_an_add"],
    "merge_batch_norm": ["test_batch_norm_folds_into_conv_and_affine_into_producer"],
    "merge_affine": ["test_batch_norm_folds_into_conv_and_affine_into_producer", "test_gemm_equals_matmul_add"],
    "drop_scalars": ["test_scalars_are_not_params_and_vanish"],
    "merge_pads": ["test_pad_merges_into_consumer", "test_onnx_exporters.py::test_timm_patterns_legacy_equals_dynamo"],
    "slice_assignments": ["test_onnx_exporters.py::test_slice_assignment_legacy_equals_dynamo",
                          "test_scatter_between_transposes_that_do_not_cancel_keeps_them"],
    "nested_concats": ["test_nested_concats_equal_one_concat", "test_a_nested_concat_with_another_reader_or_axis_stays"],
    "common_subexpressions": ["test_equal_parameter_free_nodes_on_one_input_are_one",
                              "test_equal_reshapes_of_one_tensor_are_one"],
    "softmax_transposes": ["test_onnx_exporters.py::test_softmax_over_an_axis_is_one_graph_at_every_opset"],
    "consecutive_transposes": ["test_transposes_that_cancel_vanish_even_when_the_first_has_another_reader",
                               "test_onnx_exporters.py::test_timm_patterns_legacy_equals_dynamo"],
    "data_movement": ["test_channel_shuffle_is_one_reshape_and_noop_reshape_vanishes",
                      "test_shape_subgraph_reshape_before_linear_vanishes"],
}


def _window_gather(*then, inits=None):
    """x [1, 3, 8, 8] -> its 3 x 3 windows of 4 x 4 with stride 2, as the dynamo
    exporter gathers them: [1, 3, oh, kh, ow, kw]."""
    rows = np.array([0, 2, 4])[:, None] + np.arange(4)  # [oh, kh]
    index = np.stack(np.broadcast_arrays(rows[:, :, None, None], rows[None, None]), -1).astype(np.int64)
    nodes = [node("Transpose", ["x"], ["t"], perm=[2, 3, 0, 1]), node("GatherND", ["t", "i"], ["g"]),
             node("Transpose", ["g"], ["w"], perm=[4, 5, 0, 1, 2, 3]), *then]
    return model(nodes, inputs=[("x", (1, 3, 8, 8))], outputs=[then[-1].output[0]], inits={"i": index, **(inits or {})},
                 opset=18)


def test_window_gather_reduced_otherwise_is_not_an_average_pool():
    mean = from_onnx(_window_gather(node("ReduceMean", ["w", "a"], ["y"], keepdims=0), inits={"a": i64(3, 5)}))
    assert mean.op_counts() == {"input": 1, "avg_pool": 1, "output": 1}
    largest = from_onnx(_window_gather(node("ReduceMax", ["w", "a"], ["y"], keepdims=0), inits={"a": i64(3, 5)}))
    assert "avg_pool" not in largest.op_counts() and largest.op_counts()["reduce"] == 1
    one_axis = from_onnx(_window_gather(node("ReduceMean", ["w", "a"], ["y"], keepdims=0), inits={"a": i64(3)}))
    assert "avg_pool" not in one_axis.op_counts()


def test_scatter_between_transposes_that_do_not_cancel_keeps_them():
    def scatter(back):
        nodes = [node("Relu", ["x"], ["r"]), node("Transpose", ["x"], ["tx"], perm=[3, 1, 2, 0]),
                 node("Transpose", ["r"], ["tr"], perm=[3, 1, 2, 0]),
                 node("ScatterND", ["tx", "i", "tr"], ["s"]), node("Transpose", ["s"], ["y"], perm=back)]
        every = np.arange(8, dtype=np.int64).reshape(8, 1)[::-1].copy()  # every row, reversed: not in order
        return from_onnx(model(nodes, inputs=[("x", (1, 3, 8, 8))], outputs=["y"], inits={"i": every}))

    assert scatter([3, 1, 2, 0]).op_counts() == {"input": 1, "relu": 1, "concat": 1, "output": 1}
    assert scatter([0, 1, 3, 2]).op_counts()["reshape"] >= 1


def test_concat_with_a_negative_axis_below_opset_11_converts():
    """torch writes ``torch.cat(..., -1)`` with ``axis=-1`` at opset 9 too, which
    that opset's schema does not allow (onnx infers no shape for it)."""
    nodes = [node("Relu", ["x"], ["r"]), node("Concat", ["x", "r"], ["c"], axis=-1), node("Relu", ["c"], ["y"])]
    cg = from_onnx(model(nodes, inputs=[("x", (1, 3, 8, 8))], outputs=["y"], opset=9))
    assert cg.op_counts() == {"input": 1, "relu": 2, "concat": 1, "output": 1}
    assert next(n for n in cg.nodes if n.op == "concat").out_shape == (3, 8, 16)


def test_every_rule_has_a_test():
    from pathlib import Path

    from gennape.cg.onnx_import.canonical import rules

    assert sorted(RULE_TESTS) == sorted(r.name for r in rules())
    here = Path(__file__).resolve().parent
    for name, tests in RULE_TESTS.items():
        for ref in tests:
            path, _, fn = ref.rpartition("::")
            assert f"def {fn}(" in (here / (path or Path(__file__).name)).read_text(), (name, ref)


def test_rules_run_in_order_with_one_description_each():
    from gennape.cg.onnx_import.canonical import rules

    table = rules()
    assert [r.order for r in table] == sorted(r.order for r in table)
    assert all(r.description and not r.description.startswith(" ") for r in table)


def test_rule_names_and_orders_are_unique():
    from gennape.cg.onnx_import.canonical import RULES, rule

    with pytest.raises(ValueError, match="already registered"):
        rule(999, "gates")(lambda ir: None)
    with pytest.raises(ValueError, match="share order 10"):
        rule(10, "a_new_rule")(lambda ir: None)
    assert "a_new_rule" not in RULES


def test_canonical_rules_doc_is_current():
    from pathlib import Path

    from gennape.cg.onnx_import.rules_table import render

    doc = Path(__file__).resolve().parent.parent / "docs" / "canonical_rules.md"
    assert doc.read_text() == render(), \
        "regenerate: python -m gennape.cg.onnx_import.rules_table > docs/canonical_rules.md"
