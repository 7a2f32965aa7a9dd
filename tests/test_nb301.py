"""DARTS / NAS-Bench-301 family: parser, network exactness, fast CG path vs ONNX import."""

from __future__ import annotations

import json

import pytest

from gennape.cg.families import get_family
from gennape.cg.families.nb301 import OPS, parse, random_specs

FAMILY = get_family("nb301")
ARCH = ("[[(0, 0), (1, 5), (1, 1), (0, 1), (1, 3), (0, 3), (1, 3), (3, 2)], "
        "[(1, 0), (0, 2), (1, 3), (0, 3), (3, 0), (0, 1), (2, 0), (3, 6)]]")


def test_parse_roundtrip_tuples_and_lists():
    spec = parse(ARCH)
    assert spec.to_arch() == ARCH
    as_lists = ARCH.replace("(", "[").replace(")", "]")
    assert parse(as_lists) == spec
    assert parse(json.loads(as_lists)) == spec
    assert spec.ops(False)[1] == ("dil_conv_3x3", 1)
    assert spec.ops(True)[7] == (OPS[6], 3)


@pytest.mark.parametrize("bad, message", [
    ("[[(0, 0)]]", r"\[normal, reduce\]"),
    ("not a list", "not a literal list"),
    (ARCH.replace("(3, 2)]", "(3, 9)]", 1), "op_index 9"),
    (ARCH.replace("(0, 0), (1, 5)", "(2, 0), (1, 5)", 1), "from node 2"),
    (ARCH.replace("(0, 0), (1, 5)", "(1, 0), (1, 5)", 1), "both node 1"),
    (ARCH.replace("(0, 0), ", "", 1), "8 \\(input_node"),
])
def test_parse_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        parse(bad)


def _trainable(module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def test_network_and_cg():
    import torch

    spec = parse(ARCH)
    module = FAMILY.to_module(spec).eval()
    assert module(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    cg = FAMILY.to_cg(spec)
    assert cg.params == _trainable(module) == 856298
    ops = cg.op_counts()
    assert ops["concat"] >= 8  # one per cell, plus FactorizedReduce concats
    assert ops["slice"] % 2 == 0  # x[:, :, 1:, 1:] exports as one Slice per axis


def test_naslib_params_sample(data_dir):
    path = data_dir / "nb301" / "naslib_zc_nasbench301_725.json"
    records = list(json.loads(path.read_text())["cifar10"].values())[::50]
    for rec in records:
        spec = parse(rec["arch"])
        assert round(_trainable(FAMILY.to_module(spec)) / 1e6, 6) == rec["params"]["score"], rec["arch"]
        assert FAMILY.to_cg(spec).params == round(rec["params"]["score"] * 1e6)


def test_load_labelled(data_dir):
    recs = FAMILY.load_labelled(data_dir)
    assert len(recs) == 725
    assert all(0.0 < r.accuracy <= 1.0 for r in recs)
    assert parse(recs[0].key) == recs[0].spec


def test_random_specs_are_valid():
    for spec in random_specs(20, seed=3):
        assert parse(spec.to_arch()) == spec


def test_fast_path_matches_onnx_import():
    """Node for node and edge for edge the same CG, params included: a
    non-affine BN owns no parameters on either path (the exporter writes its
    ones / zeros as Constant nodes, which the importer does not count)."""
    pytest.importorskip("gennape.cg.onnx_import")
    from gennape.cg.families.nb201 import onnx_cg

    for spec in [parse(ARCH)] + random_specs(1, seed=5):
        fast, imported = FAMILY.to_cg(spec), onnx_cg(FAMILY, spec)
        assert fast == imported


def test_reference_network_gives_the_spec_cg():
    """DARTS's own model code, exported as gennape exports: the spec CG for 6
    random genotypes (about 3 s each; 200 in benchmarks/families.py)."""
    from gennape.cg.families.nb301 import equivalence_check

    result = equivalence_check(6, seed=21, reference=True)
    assert result["identical"] == result["checked"] == 6, result["mismatches"]


def test_fast_order_is_graph_builders_order():
    from gennape.cg.families.nb301 import build_cg

    for spec in random_specs(15, seed=9):
        fast, ref = build_cg(spec), build_cg(spec, reference=True)
        assert fast == ref and fast.edges == ref.edges
