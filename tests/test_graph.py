import pytest

from gennape.cg.graph import CG, FORMAT_VERSION, GraphBuilder, Node
from gennape.cg.ops import OPS, check_op, conv_op_for


def _diamond(order: str) -> CG:
    b = GraphBuilder()
    x = b.add(Node("input", out_shape=(3, 8, 8)))
    conv = Node("conv", (3, 8, 8), (4, 8, 8), kernel=(3, 3), weight_shape=(4, 3, 3, 3), params=108, macs=6912)
    pool = Node("max_pool", (3, 8, 8), (3, 8, 8), kernel=(3, 3))
    if order == "conv-first":
        a = b.add(conv, [x])
        p = b.add(pool, [x])
    else:
        p = b.add(pool, [x])
        a = b.add(conv, [x])
    c = b.add(Node("concat", (4, 8, 8), (7, 8, 8)), [a, p])
    b.add(Node("output", (7, 8, 8), (7, 8, 8)), [c])
    return b.build()


def test_canonical_order_independent_of_insertion_order():
    assert _diamond("conv-first") == _diamond("pool-first")


def test_concat_operand_order_is_kept():
    cg = _diamond("conv-first")
    concat = next(i for i, n in enumerate(cg.nodes) if n.op == "concat")
    srcs = [s for s, d in cg.edges if d == concat]
    assert [cg.nodes[s].op for s in srcs] == ["conv", "max_pool"]


def test_json_round_trip_is_lossless():
    cg = _diamond("conv-first")
    back = CG.from_json(cg.to_json())
    assert back == cg
    assert [n.name for n in back.nodes] == [n.name for n in cg.nodes]
    d = cg.to_dict()
    assert d["format_version"] == FORMAT_VERSION
    assert set(d["summary"]) >= {"num_nodes", "num_edges", "params", "macs", "ops"}
    assert d["summary"]["ops"]["conv"] == 1


def test_wrong_format_version_is_refused():
    d = _diamond("conv-first").to_dict()
    d["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(ValueError, match="format version"):
        CG.from_dict(d)


def test_cycle_is_rejected():
    b = GraphBuilder()
    b.add(Node("relu"), [1])
    b.add(Node("relu"), [0])
    with pytest.raises(ValueError, match="cycle"):
        b.build()


def test_to_pyg_shapes():
    data = _diamond("conv-first").to_pyg()
    assert data.num_nodes == 5
    assert data.edge_index.shape == (2, 5)
    assert data.op.tolist()[0] == OPS.index("input")
    assert data.attrs.shape[0] == 5
    assert int(data.input_resolution) == 8


def test_op_vocabulary_helpers():
    assert conv_op_for(1, 16) == "conv"
    assert conv_op_for(16, 16) == "depthwise_conv"
    assert conv_op_for(4, 16) == "group_conv"
    with pytest.raises(ValueError, match="valid op types: input, output"):
        check_op("convolution")
