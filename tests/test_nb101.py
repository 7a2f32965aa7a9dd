"""NAS-Bench-101 specs, hash, network and fast CG path."""

from __future__ import annotations

import json
import random

import pytest

from gennape.cg.families import get_family
from gennape.cg.families.nb101 import (
    FAMILY, NB101Spec, build_cg, canonical_order, compute_vertex_channels, hash_module, prune,
)

C3, C1, MP = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"

# The example cell of the nasbench README (an Inception-like module).
INCEPTION = {
    "matrix": [[0, 1, 1, 1, 0, 1, 0],
               [0, 0, 0, 0, 0, 0, 1],
               [0, 0, 0, 0, 0, 0, 1],
               [0, 0, 0, 0, 1, 0, 0],
               [0, 0, 0, 0, 0, 0, 1],
               [0, 0, 0, 0, 0, 0, 1],
               [0, 0, 0, 0, 0, 0, 0]],
    "ops": ["input", C1, C3, C3, C3, MP, "output"],
}


@pytest.fixture(scope="module")
def labelled(data_dir):
    return FAMILY.load_labelled(data_dir)


def test_registered():
    assert get_family("nb101") is FAMILY


def test_parse_round_trip():
    spec = FAMILY.parse(json.dumps(INCEPTION))
    assert isinstance(spec, NB101Spec)
    assert FAMILY.parse(spec.to_arch()) == spec
    assert hash(spec) == hash(FAMILY.parse(spec.to_arch()))


@pytest.mark.parametrize("arch, message", [
    ("not json", "not JSON"),
    ("[1, 2]", "JSON object"),
    ('{"matrix": [[0, 1], [0, 0]]}', "JSON object"),
    ('{"matrix": [[0, 1], [0, 0]], "ops": ["input", "conv"]}', "last op must be 'output'"),
    ('{"matrix": [[0, 1], [0, 0]], "ops": ["conv", "output"]}', "first op must be 'input'"),
    ('{"matrix": [[0, 1, 0], [0, 0, 1], [0, 0, 0]], "ops": ["input", "conv5x5", "output"]}', "valid cell ops"),
    ('{"matrix": [[0, 1], [1, 0]], "ops": ["input", "output"]}', "upper-triangular"),
    ('{"matrix": [[0, 2], [0, 0]], "ops": ["input", "output"]}', "0 or 1"),
    ('{"matrix": [[0, 1, 0], [0, 0]], "ops": ["input", "maxpool3x3", "output"]}', "square"),
    ('{"matrix": [[0, 1], [0, 0]], "ops": ["input", "maxpool3x3", "output"]}', "3 ops for a 2x2"),
    ('{"matrix": [[0, 0], [0, 0]], "ops": ["input", "output"]}', "not connected"),
])
def test_parse_errors(arch, message):
    with pytest.raises(ValueError, match=message):
        FAMILY.parse(arch)


def test_limits_after_pruning():
    # 8 vertices, but the dangling one is pruned: a valid 7-vertex cell.
    m = [[0] * 8 for _ in range(8)]
    for v in range(1, 7):
        m[v - 1][v] = 1
    m[6][7] = 1
    m[0][7] = 0
    ops = ["input", C3, C3, C3, C3, C3, C3, "output"]
    with pytest.raises(ValueError, match="at most 7"):
        NB101Spec.from_lists(m, ops)
    dangling = [row[:] for row in m]
    dangling[0][1] = 0  # vertex 1 has no input: pruned, and so is nothing else
    dangling[0][2] = 1
    spec = NB101Spec.from_lists(dangling, ops)
    assert spec.num_vertices == 7
    # 10 edges on 7 vertices.
    full = [[1 if j > i else 0 for j in range(7)] for i in range(7)]
    with pytest.raises(ValueError, match="at most 9"):
        NB101Spec.from_lists(full, ["input", C3, C3, C3, C3, C3, "output"])


def test_prune_like_model_spec():
    # Vertex 2 feeds nothing; vertex 3 is fed by nothing: both are pruned.
    m = [[0, 1, 1, 0, 0],
         [0, 0, 0, 0, 1],
         [0, 0, 0, 0, 0],
         [0, 0, 0, 0, 1],
         [0, 0, 0, 0, 0]]
    pm, pops = prune(m, ["input", C3, MP, C1, "output"])
    assert pm == [[0, 1, 0], [0, 0, 1], [0, 0, 0]]
    assert pops == ["input", C3, "output"]


def test_hash_matches_nasbench_readme_example():
    # The official hash of the README's Inception-like cell (ModelSpec.hash_spec).
    spec = FAMILY.parse(json.dumps(INCEPTION))
    labels = [-1] + [["conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"].index(o)
                     for o in INCEPTION["ops"][1:-1]] + [-2]
    assert spec.hash == hash_module(INCEPTION["matrix"], labels)


def test_vertex_channels_split():
    spec = FAMILY.parse(json.dumps(INCEPTION))
    # Four vertices feed the output: 128 = 32 * 4; vertex 3 feeds only vertex 4.
    assert compute_vertex_channels(128, 128, spec.matrix) == [128, 32, 32, 32, 32, 32, 128]
    m = [[0, 1, 1, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
    assert compute_vertex_channels(128, 128, m) == [128, 43, 43, 42, 128]


def test_canonical_order_is_the_first_enumerated():
    # Two parallel branches with different ops: the benchmark's representative
    # puts the lower op index (conv3x3 = 0) first.
    m = [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]]
    a = NB101Spec.from_lists(m, ["input", MP, C3, "output"])
    b = NB101Spec.from_lists(m, ["input", C3, MP, "output"])
    assert a == b and a.ops == ("input", C3, MP, "output")
    raw = NB101Spec.from_lists(m, ["input", MP, C3, "output"], canonical=False)
    assert raw.ops == ("input", MP, C3, "output") and raw.canonical() == a and raw.hash == a.hash
    cm, cops = canonical_order([list(r) for r in raw.matrix], list(raw.ops))
    assert (tuple(map(tuple, cm)), tuple(cops)) == (a.matrix, a.ops)


def test_cg_structure_of_smallest_cell():
    spec = FAMILY.parse('{"matrix": [[0, 1], [0, 0]], "ops": ["input", "output"]}')
    cg = build_cg(spec)
    # input, stem conv+relu, 9 x projection conv+relu, 2 pools, gap, linear, output.
    assert cg.op_counts() == {"conv": 10, "relu": 10, "max_pool": 2, "global_avg_pool": 1,
                              "input": 1, "linear": 1, "output": 1}
    assert cg.params == 128 * 27 + 256 + 3 * (128 * 128 + 256) + (256 * 128 + 512) \
        + 2 * (256 * 256 + 512) + (512 * 256 + 1024) + 2 * (512 * 512 + 1024) + 5130
    assert cg.nodes[0].op == "input" and cg.nodes[-1].op == "output"


def test_module_params_equal_cg_params():
    torch = pytest.importorskip("torch")
    spec = FAMILY.parse(json.dumps(INCEPTION))
    net = FAMILY.to_module(spec)
    assert sum(p.numel() for p in net.parameters()) == build_cg(spec).params
    net.eval()
    with torch.no_grad():
        assert net(torch.zeros(1, 3, 32, 32)).shape == (1, 10)


def test_labelled_file(labelled):
    recs = labelled
    assert len(recs) == 30001
    assert len({r.key for r in recs}) == 30001
    rng = random.Random(0)
    sample = rng.sample(recs, 300)
    for r in sample:
        assert r.spec.hash == r.key
        assert FAMILY.to_cg(r.spec).params == r.extra["params"], r.key
        assert 0.0 <= r.accuracy <= 1.0
    torch = pytest.importorskip("torch")
    del torch
    for r in sample[:5]:
        net = FAMILY.to_module(r.spec)
        assert sum(p.numel() for p in net.parameters() if p.requires_grad) == r.extra["params"]


def test_all_specs_file_head(data_dir):
    it = FAMILY.iter_specs(data_dir)
    specs = [next(it) for _ in range(200)]
    assert specs[0].num_vertices == 2
    assert all(isinstance(s, NB101Spec) for s in specs)


def test_fast_builder_equals_graph_builder(labelled):
    for r in random.Random(2).sample(labelled, 150):
        fast, ref = build_cg(r.spec), build_cg(r.spec, reference=True)
        assert fast == ref and fast.edges == ref.edges


# Cells covering every wiring case: input -> output only, a single vertex plus
# the projected input added, truncation plus output projection, a 7-vertex cell
# and common subexpressions.
EDGE_CASES = [
    '{"matrix": [[0, 1], [0, 0]], "ops": ["input", "output"]}',
    '{"matrix": [[0, 1, 1], [0, 0, 1], [0, 0, 0]], "ops": ["input", "conv3x3-bn-relu", "output"]}',
    json.dumps({"matrix": [[0, 1, 1, 0, 0, 0, 1], [0, 0, 0, 1, 0, 0, 1], [0, 0, 0, 0, 1, 0, 0],
                           [0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1],
                           [0, 0, 0, 0, 0, 0, 0]],
                "ops": ["input", C1, MP, MP, C1, MP, "output"]}),
    json.dumps(INCEPTION),
    # Exporters merge common subexpressions; so must the fast path. Two max-pool
    # vertices fed by one vertex:
    json.dumps({"matrix": [[0, 1, 0, 0, 0, 1, 1], [0, 0, 1, 0, 0, 0, 0], [0, 0, 0, 1, 1, 0, 0],
                           [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1],
                           [0, 0, 0, 0, 0, 0, 0]],
                "ops": ["input", C1, C3, MP, MP, MP, "output"]}),
    # two truncations of one vertex to the same width:
    json.dumps({"matrix": [[0, 1, 0, 0, 1, 0, 0], [0, 0, 1, 1, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1],
                           [0, 0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1],
                           [0, 0, 0, 0, 0, 0, 0]],
                "ops": ["input", MP, C3, C3, C1, MP, "output"]}),
    # two vertices whose input sums start with the same Add:
    json.dumps({"matrix": [[0, 1, 0, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0, 0], [0, 0, 0, 1, 1, 1, 0],
                           [0, 0, 0, 0, 1, 1, 0], [0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1],
                           [0, 0, 0, 0, 0, 0, 0]],
                "ops": ["input", MP, MP, C3, C3, C3, "output"]}),
]


@pytest.mark.parametrize("arch", EDGE_CASES)
def test_cg_identical_to_onnx_import(arch):
    pytest.importorskip("torch")
    from gennape.cg.families.export import export_bytes
    from gennape.cg.onnx_import import from_onnx

    spec = FAMILY.parse(arch)
    imported = from_onnx(export_bytes(FAMILY, spec))
    fast = FAMILY.to_cg(spec)
    assert imported == fast
    assert imported.edges == fast.edges
    assert imported.params == sum(p.numel() for p in FAMILY.to_module(spec).parameters())


def test_edge_cases_cover_truncation_and_projections():
    from gennape.cg.families.nb101 import cell_plan, stack_channels

    plans = [cell_plan(FAMILY.parse(a), cin, cout) for a in EDGE_CASES for cin, cout, _ in stack_channels()]
    assert any(trunc is not None for p in plans for srcs in p.vertex_inputs for _, trunc in srcs)
    assert any(p.project_output and p.concat for p in plans)
    assert any(not p.concat for p in plans)
    assert any(len(p.concat) == 1 for p in plans)
