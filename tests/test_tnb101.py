"""TransNAS-Bench-101 micro and macro families: specs, networks, CGs, labels."""

from __future__ import annotations

import gzip
import json
import random

import pytest

from gennape.cg.errors import GennapeError
from gennape.cg.families import get_family
from gennape.cg.families.tnb101_macro import TNB101MacroSpec
from gennape.cg.families.tnb101_micro import TNB101MicroSpec

MICRO = get_family("tnb101_micro")
MACRO = get_family("tnb101_macro")
#: node 1 is dead (a zero edge) and feeds nodes 2 and 3 through convs: constants added into live nodes.
DEAD_CONV = "64-41414-0_33_333"
#: every path to node 3 passes a zero: the output does not depend on the input.
CONSTANT = "64-41414-0_03_023"


# ------------------------------------------------------------------ parsing
def test_micro_parse_forms_and_round_trip():
    spec = MICRO.parse("64-41414-2_32_323")
    assert spec == TNB101MicroSpec((2, 3, 2, 3, 2, 3)) == MICRO.parse("[2, 3, 2, 3, 2, 3]")
    assert spec.task == "class_object" and spec.to_arch() == "64-41414-2_32_323"
    scene = MICRO.parse(" 64-41414-2_32_323@class_scene ")
    assert scene.task == "class_scene" and scene.to_arch() == "64-41414-2_32_323@class_scene"
    assert MICRO.parse(scene.to_arch()) == scene != spec
    assert MICRO.parse("64-41414-2_32_323@class_object") == spec


@pytest.mark.parametrize("arch, message", [
    ("64-11111-2_32_323", "must look like 64-41414-a_bc_def"),
    ("64-41414-2_32_32", "the cell must be a_bc_def"),
    ("64-41414-2_32_324", "op codes 0-3"),
    ("[2, 3, 2, 3, 2]", "must have 6 codes"),
    ("[2, 3, 2, 3, 2, 7]", "code 5 is 7; valid codes 0..3"),
    ("[2, 3, 2, 3, 2, true]", "code 5 is True"),
    ("[2, 3,", "not a JSON list"),
    ("64-41414-2_32_323@jigsaw", "task 'jigsaw' (its decoder is not built here); valid tasks: class_object"),
    ("64-41414-2_32_323@bogus", "task 'bogus'; valid tasks: class_object, class_scene, room_layout"),
])
def test_micro_parse_errors(arch, message):
    with pytest.raises(ValueError, match="TNB-101 micro") as err:
        MICRO.parse(arch)
    assert message in str(err.value)


def test_macro_parse_forms_and_round_trip():
    spec = MACRO.parse("64-111114-basic")
    assert spec == TNB101MacroSpec((1, 1, 1, 1, 1, 4)) == MACRO.parse("[1, 1, 1, 1, 1, 4]")
    assert MACRO.parse("[4, 2, 3, 4, 0, 0]") == TNB101MacroSpec((4, 2, 3, 4))  # the file's 0 padding
    assert MACRO.parse("64-4234-basic@room_layout").to_arch() == "64-4234-basic@room_layout"
    assert spec.arch_str == spec.to_arch() == "64-111114-basic"


@pytest.mark.parametrize("arch, message", [
    ("64-111114", "must look like 64-<4 to 6 codes 1-4>-basic"),
    ("32-111114-basic", "must look like"),
    ("64-114-basic", "must have 4 to 6 codes"),
    ("64-1111114-basic", "must have 4 to 6 codes"),
    ("64-111115-basic", "code 5 is 5; valid codes 1..4"),
    ("64-111111-basic", "0 module(s) halve the resolution"),
    ("64-333311-basic", "0 double the channels"),
    ("64-444411-basic", "4 double the channels"),
    ("[4, 0, 2, 3, 4, 0]", "0 is padding and may only end the list"),
    ("64-111114-basic@normal", "task 'normal' (its decoder is not built here)"),
])
def test_macro_parse_errors(arch, message):
    with pytest.raises(ValueError, match="TNB-101 macro") as err:
        MACRO.parse(arch)
    assert message in str(err.value)


def test_spaces():
    assert len(MACRO.all_specs()) == MACRO.space_size == 3256  # NASLib's sampler's space
    micro = MICRO.all_specs()
    assert len(set(micro)) == 4096
    assert sum(not s.live_nodes()[3] for s in micro) == 169
    assert not MICRO.output_depends_on_input(MICRO.parse(CONSTANT))
    for fam in (MICRO, MACRO):
        specs = fam.random_specs(30, seed=1)
        assert len(set(specs)) == 30 and specs == fam.random_specs(30, seed=1)


def test_every_file_arch_parses_to_its_arch_str(data_dir):
    for fam, name in ((MICRO, "tnb101_micro_4096.json.gz"), (MACRO, "tnb101_macro.json.gz")):
        with gzip.open(data_dir / "tnb101" / name, "rt") as f:
            for rec in json.load(f):
                assert fam.parse(json.dumps(rec["arch"])).to_arch() == rec["arch_str"]
                assert fam.parse(rec["arch_str"]).to_arch() == rec["arch_str"]


# ------------------------------------------------------------- labels, params
def test_labels(data_dir):
    micro = MICRO.load_labelled(data_dir)
    assert len(micro) == 4096
    rec = next(r for r in micro if r.key == "64-41414-2_32_323")
    assert rec.accuracy == pytest.approx(0.42759754)  # the final-epoch top-level key
    assert rec.extra["best_accuracy"] >= rec.accuracy and rec.extra["params"] == 22391940
    assert sum("params" in r.extra for r in micro) == 711
    scene = MICRO.load_labelled(data_dir, task="class_scene")
    assert scene[0].key.endswith("@class_scene") and scene[0].spec.task == "class_scene"
    macro = MACRO.load_labelled(data_dir, task="class_scene")
    assert len(macro) == 662 and all("params" in r.extra for r in macro)
    first = MACRO.load_labelled(data_dir)[0]
    assert first.key == "64-111114-basic" and first.accuracy == pytest.approx(0.44999004)  # best epoch
    with pytest.raises(ValueError, match="accuracies for class_object, class_scene"):
        MACRO.load_labelled(data_dir, task="room_layout")


def test_label_file_errors(tmp_path):
    with pytest.raises(GennapeError, match="tnb101_micro_4096.json.gz: benchmark data file not found"):
        MICRO.load_labelled(tmp_path)
    (tmp_path / "tnb101").mkdir()
    path = tmp_path / "tnb101" / "tnb101_macro.json.gz"
    path.write_bytes(b"not gzip")
    with pytest.raises(GennapeError, match="tnb101_macro.json.gz: not a TNB-101 label file"):
        MACRO.load_labelled(tmp_path)
    with gzip.open(path, "wt") as f:
        json.dump([{"arch": [1, 1, 1, 1, 1, 1], "class_object": 40.0}], f)
    with pytest.raises(GennapeError, match="record 0: ValueError: .*0 module\\(s\\) halve") as err:
        MACRO.load_labelled(tmp_path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("fam", [MICRO, MACRO], ids=lambda f: f.name)
def test_params_and_flops_match_the_file(fam, data_dir):
    """A sample of labelled networks per task: trainable parameters exactly, the
    benchmark's FLOPs within the README's 1.5% (all of them: benchmarks/families.py)."""
    for task in ("class_object", "class_scene"):
        recs = [r for r in fam.load_labelled(data_dir, task=task) if "params" in r.extra]
        for r in random.Random(0).sample(recs, 60):
            assert fam.trainable_params(r.spec) == r.extra["params"], r.key
            assert fam.benchmark_flops(r.spec) / 1e6 == pytest.approx(r.extra["flops"], rel=0.015), r.key


def test_macro_cg_params_are_the_trainable_params():
    for spec in MACRO.random_specs(40, seed=2):
        assert MACRO.to_cg(spec).params == MACRO.trainable_params(spec)


@pytest.mark.parametrize("arch", ["64-41414-2_32_323@room_layout", DEAD_CONV, CONSTANT, "64-41414-1_11_111"])
def test_module_counts_the_trainable_params(arch):
    pytest.importorskip("torch")
    spec = MICRO.parse(arch)
    module = MICRO.to_module(spec)
    assert sum(p.numel() for p in module.parameters() if p.requires_grad) == MICRO.trainable_params(spec)


def test_macro_module_counts_the_trainable_params():
    pytest.importorskip("torch")
    spec = MACRO.parse("64-4234-basic@class_scene")
    module = MACRO.to_module(spec)
    assert sum(p.numel() for p in module.parameters() if p.requires_grad) == MACRO.trainable_params(spec)


def test_forward_shapes_and_constant_output():
    torch = pytest.importorskip("torch")
    x = torch.randn(2, 3, 256, 256)
    with torch.no_grad():
        assert MICRO.to_module(MICRO.parse(DEAD_CONV + "@class_scene")).eval()(x).shape == (2, 63)
        y = MICRO.to_module(MICRO.parse(CONSTANT)).eval()(x)
        assert y.shape == (2, 100) and torch.equal(y[0], y[1])
        assert MACRO.to_module(MACRO.parse("64-111114-basic@room_layout")).eval()(x).shape == (2, 9)


@pytest.mark.parametrize("training", [False, True])
def test_micro_cell_computes_what_tnb_microcell_computes(training):
    """TNB's MicroCell sums every edge (``torch.stack(...).sum(0)``), zero edges
    included (``x.mul(0.)`` / ``new_zeros``), FactorizedReduce padding before
    ``[1:, 1:]``; ours leaves zeros out and computes dead values from constants."""
    torch = pytest.importorskip("torch")
    from torch import nn

    from gennape.cg.families.nets.tnb101 import MicroCell
    from gennape.cg.families.tnb101_micro import EDGES

    torch.manual_seed(0)
    for arch in ("64-41414-1_32_323", DEAD_CONV, "64-41414-0_01_200", "64-41414-3_13_101"):
        spec = MICRO.parse(arch)
        cell = MicroCell(spec, 8, 16, 2, 4).train(training)
        for m in cell.modules():
            if isinstance(m, nn.BatchNorm2d):  # non-trivial statistics and affine terms
                m.running_mean.uniform_(-1, 1), m.running_var.uniform_(0.5, 2)
                m.weight.data.uniform_(0.5, 2), m.bias.data.uniform_(-1, 1)
        x = torch.randn(3, 8, 8, 8)

        def edge(node, src, v):
            op = spec.ops[EDGES.index((node, src))]
            if op == 0:
                return torch.zeros(3, 16, 4, 4) if src == 0 else v.mul(0.)  # new_zeros / x.mul(0.)
            layer = cell.layers[f"{node}<-{src}"]
            if op == 1 and src == 0:  # TNB's FactorizedReduce: pad, then [1:, 1:]
                r = layer.relu(v)
                y = nn.functional.pad(r, (0, 1, 0, 1))
                return layer.bn(torch.cat([layer.conv_1(r), layer.conv_2(y[:, :, 1:, 1:])], dim=1))
            return layer(v)

        nodes = [x]
        for node in (1, 2, 3):
            nodes.append(torch.stack([edge(node, src, nodes[src]) for src in range(node)]).sum(0))
        ours, live = cell(x, True)
        expected = nodes[3]
        assert live == spec.live_nodes()[3]
        assert torch.allclose(ours.expand_as(expected), expected, atol=1e-5), arch


# -------------------------------------------------------------- equivalence
def test_fast_cg_is_the_graph_builder_cg():
    from gennape.cg.families.tnb101_macro import build_cg as macro_cg
    from gennape.cg.families.tnb101_micro import build_cg as micro_cg

    for spec in MICRO.random_specs(20, seed=3) + [MICRO.parse(a) for a in (DEAD_CONV, CONSTANT)]:
        assert micro_cg(spec) == micro_cg(spec, reference=True)
    for spec in MACRO.random_specs(10, seed=3):
        assert macro_cg(spec) == macro_cg(spec, reference=True)


@pytest.mark.parametrize("fam", [MICRO, MACRO], ids=lambda f: f.name)
def test_fast_cg_equals_onnx_import(fam):
    """6 random specs (micro: plus a dead-conv and a constant-output cell); exporting a
    22 M-weight TNB network takes seconds, so the 50-spec check is benchmarks/families.py."""
    pytest.importorskip("torch")
    pytest.importorskip("gennape.cg.onnx_import")
    specs = fam.random_specs(6, seed=0)
    if fam is MICRO:
        specs += [fam.parse(DEAD_CONV + "@class_scene"), fam.parse(CONSTANT)]
    result = fam.equivalence_check(specs=specs)
    constant = sum(not fam.output_depends_on_input(s) for s in specs)
    assert result["constant_output_skipped"] == constant
    assert result["identical"] == result["checked"] == len(specs) - constant, result["mismatches"]
