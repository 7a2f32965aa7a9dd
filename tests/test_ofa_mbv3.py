"""OFA-MobileNetV3 w1.0 family: spec parsing, the torch subnet, the fast CG builder."""

from __future__ import annotations

import importlib
import io
import json
import random
import subprocess
import sys
import warnings

import pytest

from gennape.cg.errors import GennapeError
from gennape.cg.families import get_family
from gennape.cg.families.ofa_mbv3 import (
    EXPAND_RATIOS, KERNEL_SIZES, DEPTHS, RESOLUTIONS, OFASpec, build_cg, make_divisible,
)
from gennape.cg.graph import GraphBuilder

FAMILY = get_family("ofa_mbv3")


def random_spec(rng: random.Random, r: int | None = None) -> OFASpec:
    return OFASpec(
        [rng.choice(KERNEL_SIZES) for _ in range(20)],
        [rng.choice(EXPAND_RATIOS) for _ in range(20)],
        [rng.choice(DEPTHS) for _ in range(5)],
        rng.choice(RESOLUTIONS) if r is None else r,
    )


def trainable_params(module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


MAX_SPEC = OFASpec([7] * 20, [6] * 20, [4] * 5, 224)
MIN_SPEC = OFASpec([3] * 20, [3] * 20, [2] * 5, 128)


# ------------------------------------------------------------------ specs
def test_make_divisible_matches_ofa_rounding():
    assert [make_divisible(v) for v in (16, 24, 40, 80, 112, 160, 960, 1280)] == [
        16, 24, 40, 80, 112, 160, 960, 1280]
    assert make_divisible(round(24 * 3)) == 72 and make_divisible(round(40 * 3) // 4) == 32
    assert make_divisible(3) == 8  # never below the divisor
    assert make_divisible(75) == 72 and make_divisible(76) == 80  # nearest multiple of 8


def test_parse_round_trip_and_defaults():
    spec = FAMILY.parse(MAX_SPEC.to_arch())
    assert spec == MAX_SPEC and hash(spec) == hash(MAX_SPEC)
    assert json.loads(spec.to_arch()) == {"ks": [7] * 20, "e": [6] * 20, "d": [4] * 5, "r": 224}
    no_r = FAMILY.parse(json.dumps({"ks": [5] * 20, "e": [4] * 20, "d": [3] * 5}))
    assert no_r.r == 224
    assert FAMILY.example_input_shape(MIN_SPEC) == (3, 128, 128)
    assert FAMILY.input_shape == (3, 224, 224)


def test_unused_blocks_do_not_change_the_spec():
    a = OFASpec([3, 5, 7, 7] * 5, [3, 4, 6, 6] * 5, [2] * 5, 224)
    b = OFASpec([3, 5, 3, 5] * 5, [3, 4, 4, 3] * 5, [2] * 5, 224)
    assert a == b and hash(a) == hash(b) and a.to_arch() == b.to_arch()
    assert a.ks == (3, 5, 0, 0) * 5 and a.e == (3, 4, 0, 0) * 5  # OFA's feature2arch convention
    assert FAMILY.parse(a.to_arch()) == a
    assert build_cg(a) == build_cg(b)
    assert OFASpec([3, 5, 7, 7] * 5, [3, 4, 6, 6] * 5, [3] * 5) != a


@pytest.mark.parametrize("arch, message", [
    ("not json", "JSON object"),
    ("[1, 2]", "JSON object"),
    ('{"ks": [3], "e": [3]}', "missing d"),
    ('{"ks": [], "e": [], "d": [], "res": 1}', "unknown key(s) res"),
    (json.dumps({"ks": [3] * 19, "e": [3] * 20, "d": [2] * 5}), "ks must be a list of 20"),
    (json.dumps({"ks": [3] * 20, "e": [3] * 20, "d": [2] * 4}), "d must be a list of 5"),
    (json.dumps({"ks": [4] + [3] * 19, "e": [3] * 20, "d": [2] * 5}), "ks[0] must be one of [3, 5, 7]"),
    (json.dumps({"ks": [3] * 20, "e": [3] * 5 + [2] + [3] * 14, "d": [2] * 5}), "e[5] must be one of [3, 4, 6]"),
    (json.dumps({"ks": [3] * 20, "e": [3] * 20, "d": [2, 2, 5, 2, 2]}), "d[2] must be one of [2, 3, 4]"),
    (json.dumps({"ks": [3] * 20, "e": [3] * 20, "d": [1] * 5}), "d[0] must be one of"),
    (json.dumps({"ks": [3, 0] + [3] * 18, "e": [3] * 20, "d": [2] * 5}), "ks[1] is 0 but block 2 of stage 1 is active"),
    (json.dumps({"ks": [3.0] * 20, "e": [3] * 20, "d": [2] * 5}), "ks[0] must be one of"),
    (json.dumps({"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": 226}), "r must be an input resolution"),
    (json.dumps({"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": 124}), "r must be an input resolution"),
    (json.dumps({"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": "224"}), "r must be an input resolution"),
    (json.dumps({"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": True}), "r must be an input resolution"),
])
def test_parse_rejects_bad_arch_with_a_reason(arch, message):
    with pytest.raises(ValueError) as err:
        FAMILY.parse(arch)
    assert message in str(err.value)


def test_family_module_does_not_import_torch():
    code = "import sys, gennape.cg.families.ofa_mbv3 as m; m.build_cg(m.OFASpec([3]*20, [3]*20, [2]*5)); " \
           "sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# ------------------------------------------------------------ the network
def test_block_layout_follows_ofa():
    blocks = MAX_SPEC.blocks()
    assert len(blocks) == 21
    first = blocks[0]
    assert (first.in_channels, first.mid_channels, first.out_channels, first.expand, first.residual) == (
        16, 16, 16, False, True)
    stage_first = [blocks[1 + 4 * s] for s in range(5)]
    assert [b.out_channels for b in stage_first] == [24, 40, 80, 112, 160]
    assert [b.stride for b in stage_first] == [2, 2, 2, 1, 2]
    assert [b.act for b in stage_first] == ["relu", "relu", "h_swish", "h_swish", "h_swish"]
    assert [bool(b.se_channels) for b in stage_first] == [False, True, False, True, True]
    assert not any(b.residual for b in stage_first)  # 80 -> 112 at stride 1 has no shortcut
    assert all(b.residual for s in range(5) for b in blocks[2 + 4 * s: 5 + 4 * s])
    # expanded width from the block's input width; SE squeeze is make_divisible(mid // 4, 8)
    b = blocks[5]  # stage 2, block 1: 24 -> 40, e 6
    assert (b.mid_channels, b.se_channels) == (144, 40)
    b = MIN_SPEC.blocks()[4]  # stage 2, block 2: 40 -> 40, e 3
    assert (b.mid_channels, b.se_channels) == (120, 32)


def test_module_runs_and_cg_shapes_follow_the_module():
    torch = pytest.importorskip("torch")
    rng = random.Random(3)
    for spec in (MIN_SPEC, random_spec(rng, r=164)):
        module = FAMILY.to_module(spec).eval()
        shapes = []
        hooks = [m.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:])))
                 for m in module.modules() if isinstance(m, torch.nn.Conv2d)]
        with torch.no_grad():
            out = module(torch.zeros(2, *FAMILY.example_input_shape(spec)))
        for h in hooks:
            h.remove()
        assert out.shape == (2, 1000)
        cg = FAMILY.to_cg(spec)
        assert shapes == [n.out_shape for n in cg.nodes if n.op.endswith("conv")]
        assert cg.params == trainable_params(module)


def test_layers_compute_what_ofa_computes():
    """nn.Hardswish / nn.Hardsigmoid / AdaptiveAvgPool2d stand in for OFA's
    Hswish, Hsigmoid and x.mean(3).mean(2): same numbers."""
    torch = pytest.importorskip("torch")
    from torch.nn.functional import relu, relu6

    from gennape.cg.families.nets.ofa_mbv3 import SqueezeExcite, build_activation

    x = torch.randn(2, 24, 7, 7, generator=torch.Generator().manual_seed(0)) * 4
    assert torch.allclose(build_activation("h_swish")(x.clone()), x * relu6(x + 3.0) / 6.0)
    se = SqueezeExcite(24, 8).eval()
    y = x.mean(3, keepdim=True).mean(2, keepdim=True)
    gate = relu6(se.fc.expand(relu(se.fc.reduce(y))) + 3.0) / 6.0
    assert torch.allclose(se(x), x * gate, atol=1e-6)
    with pytest.raises(ValueError, match="valid activations: relu, h_swish"):
        build_activation("swish")


def test_reset_parameters_reinitialises_every_layer():
    torch = pytest.importorskip("torch")
    module = FAMILY.to_module(MIN_SPEC)
    with torch.no_grad():
        for p in module.parameters():
            p.fill_(0.5)
    module.reset_parameters()
    assert all(not torch.all(p == 0.5) for p in module.parameters())


# ---------------------------------------------------------------- the CG
def random_topological_order(preds: list[list[int]], rng: random.Random) -> list[int]:
    indeg = [len(p) for p in preds]
    succ = [[] for _ in preds]
    for d, ps in enumerate(preds):
        for s in ps:
            succ[s].append(d)
    ready, order = [i for i, n in enumerate(indeg) if n == 0], []
    while ready:
        i = ready.pop(rng.randrange(len(ready)))
        order.append(i)
        for d in succ[i]:
            indeg[d] -= 1
            if indeg[d] == 0:
                ready.append(d)
    return order


def test_cg_is_in_graphbuilder_canonical_order():
    """The builder skips GraphBuilder's hashing when the order is forced; the
    result must be what GraphBuilder gives from any insertion order."""
    rng = random.Random(0)
    for spec in (MAX_SPEC, MIN_SPEC, random_spec(rng)):
        cg = FAMILY.to_cg(spec)
        preds = cg.predecessors()
        b, ids = GraphBuilder(), {}
        for i in random_topological_order(preds, rng):
            ids[i] = b.add(cg.nodes[i], [ids[p] for p in preds[i]])
        assert b.build() == cg


def test_cg_totals_and_ops():
    cg = FAMILY.to_cg(MAX_SPEC)
    assert cg.input_shape == (3, 224, 224)
    ops = cg.op_counts()
    assert ops["depthwise_conv"] == 21 and ops["mul"] == 12 and ops["hard_sigmoid"] == 12
    assert ops["add"] == 16 and ops["linear"] == 1 and ops["global_avg_pool"] == 13
    assert cg.nodes[-2].op == "linear" and cg.nodes[-2].in_shape == (1280,)
    assert not any(n.op == "batch_norm" for n in cg.nodes)


# -------------------------------------------------------- the labelled file
@pytest.fixture(scope="module")
def labelled(data_dir):
    return FAMILY.load_labelled(data_dir)


def test_load_labelled(labelled):
    assert len(labelled) == 2223
    assert len({r.key for r in labelled}) == 2162  # 57 networks appear 2-3 times
    assert all(0.70 < r.accuracy < 0.78 for r in labelled)
    r = labelled[0]
    assert r.key == r.spec.to_arch() and set(r.extra) == {"macs", "params"}
    assert FAMILY.parse(r.key) == r.spec


def test_params_and_macs_match_the_file_on_a_sample(labelled):
    pytest.importorskip("torch")
    for r in random.Random(1).sample(labelled, 25):
        cg = FAMILY.to_cg(r.spec)
        assert cg.params == r.extra["params"], r.key
        assert cg.macs == r.extra["macs"], r.key  # OFA's profile counts conv + linear MACs only
        assert trainable_params(FAMILY.to_module(r.spec)) == r.extra["params"], r.key


def test_load_labelled_errors(tmp_path):
    with pytest.raises(GennapeError, match="benchmark data file not found"):
        FAMILY.load_labelled(tmp_path)
    (tmp_path / "ofa_mbv3").mkdir()
    (tmp_path / "ofa_mbv3" / "ofa_mbv3_w10_imagenet.csv").write_text(
        'ks,e,d,r,top1,macs,params\n"[3]","[3]","[2]",224,70.0,1,1\n')
    with pytest.raises(GennapeError, match="line 2: d must be a list of 5"):
        FAMILY.load_labelled(tmp_path)


# ------------------------------------------------------ ONNX equivalence
def _has_importer() -> bool:
    try:
        return hasattr(importlib.import_module("gennape.cg.onnx_import"), "from_onnx")
    except ImportError:  # the importer is not written yet
        return False


@pytest.mark.skipif(not _has_importer(), reason="gennape.cg.onnx_import.from_onnx not written yet")
@pytest.mark.parametrize("which", ["max", "min", "random"])
def test_cg_equals_the_cg_of_the_exported_module(which):
    torch = pytest.importorskip("torch")
    from gennape.cg import from_onnx

    spec = {"max": MAX_SPEC, "min": MIN_SPEC, "random": random_spec(random.Random(7))}[which]
    module = FAMILY.to_module(spec).eval()
    f = io.BytesIO()
    with warnings.catch_warnings():
        # torch's legacy exporter warns about its own deprecation (from torch.onnx and typing_extensions)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(module, torch.zeros(1, *FAMILY.example_input_shape(spec)), f,
                          dynamo=False, do_constant_folding=False)
    imported = from_onnx(f.getvalue())
    built = FAMILY.to_cg(spec)
    assert imported.params == built.params == trainable_params(module)
    assert imported.macs == built.macs
    assert imported == built
