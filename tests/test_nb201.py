"""NAS-Bench-201 family: parser, network exactness, fast CG path vs ONNX import."""

from __future__ import annotations

import json

import pytest

from gennape.cg.families import get_family
from gennape.cg.families.nb201 import EDGES, equivalence_check, parse

FAMILY = get_family("nb201")
ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
#: node 1 is all-none and feeds node 2 through a conv (a dead conv edge).
DEAD_CONV = "|none~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|"
#: node 1 is computed but nothing uses it.
UNUSED = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
#: the output node is dead: the network's output does not depend on its input.
CONSTANT = "|none~0|+|none~0|nor_conv_3x3~1|+|none~0|nor_conv_1x1~1|none~2|"


def test_parse_roundtrip():
    spec = parse(ARCH)
    assert spec.ops == ("nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3", "skip_connect", "nor_conv_3x3", "skip_connect")
    assert spec.to_arch() == ARCH
    assert hash(spec) == hash(parse(ARCH))


@pytest.mark.parametrize("bad, message", [
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|", "3 node groups"),
    (ARCH.replace("avg_pool_3x3", "max_pool_3x3"), "unknown op 'max_pool_3x3'"),
    (ARCH.replace("skip_connect~2", "skip_connect~1"), "must read node 2"),
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", "2 input edge"),
    (ARCH.replace("~0|+", "0|+", 1), "op~input"),
])
def test_parse_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        parse(bad)


def test_live_nodes():
    assert parse(ARCH).live_nodes() == (True, True, True, True)
    assert parse(DEAD_CONV).live_nodes() == (True, False, True, True)
    assert parse(CONSTANT).live_nodes() == (True, False, False, False)


def _trainable(module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def test_params_and_cg_of_a_full_cell():
    spec = parse(ARCH)
    module = FAMILY.to_module(spec)
    cg = FAMILY.to_cg(spec)
    # every layer of this cell is live, so the CG holds every parameter
    assert cg.params == _trainable(module)
    ops = cg.op_counts()
    # 15 cells x 3 convs + stem + 2 x (2 convs + 1 shortcut conv)
    assert ops["conv"] == 15 * 3 + 1 + 2 * 3
    assert ops["batch_norm"] == 1  # lastact: after an add, not mergeable
    assert cg.input_shape == (3, 32, 32)


def test_forward_shapes_and_constant_output():
    import torch

    x = torch.randn(3, 3, 32, 32)
    for arch in (ARCH, DEAD_CONV, UNUSED):
        assert FAMILY.to_module(parse(arch)).eval()(x).shape == (3, 10)
    y = FAMILY.to_module(parse(CONSTANT)).eval()(x)
    assert y.shape == (3, 10)
    assert torch.allclose(y[0], y[1]) and torch.allclose(y[0], y[2])
    cg = FAMILY.to_cg(parse(CONSTANT))
    assert cg.op_counts() == {"input": 1, "output": 1} and cg.num_edges == 0


def test_dead_and_unused_layers_leave_the_cg():
    full, dead = FAMILY.to_cg(parse(ARCH)), FAMILY.to_cg(parse(DEAD_CONV))
    # the convs on edges 1->2 and 1->3 read an all-zero node: 15 cells lose both
    import torch

    n_convs = sum(isinstance(m, torch.nn.Conv2d) for m in FAMILY.to_module(parse(DEAD_CONV)).modules())
    assert dead.op_counts()["conv"] == n_convs - 30
    assert FAMILY.to_cg(parse(UNUSED)).op_counts()["conv"] == 1 + 6  # stem + reduction blocks only
    assert full.fingerprint() != dead.fingerprint()


def test_naslib_params_sample(data_dir):
    path = data_dir / "nb201" / "naslib_zc_nasbench201_cifar10_724.json"
    records = list(json.loads(path.read_text())["cifar10"].values())[::60]
    for rec in records:
        spec = parse(rec["arch_str"])
        assert round(_trainable(FAMILY.to_module(spec)) / 1e6, 6) == rec["params"]["score"], rec["arch_str"]


def test_cg_params_of_every_naslib_cell(data_dir):
    """All 724 cells with NASLib params: the benchmark's count is
    ``trainable_params``, and the CG counts it minus exactly the layers off
    every input-to-output path (``path_params``, computed from the spec alone)."""
    from gennape.cg.families.nb201 import path_params

    path = data_dir / "nb201" / "naslib_zc_nasbench201_cifar10_724.json"
    records = list(json.loads(path.read_text())["cifar10"].values())
    assert len(records) == 724
    for rec in records:
        spec = parse(rec["arch_str"])
        assert round(FAMILY.trainable_params(spec) / 1e6, 6) == rec["params"]["score"], rec["arch_str"]
        assert FAMILY.to_cg(spec).params == path_params(spec), rec["arch_str"]


@pytest.mark.parametrize("arch, params", [
    # node 1 is dead and feeds node 2 through a 1x1 conv: 15 dead convs (with their BNs) are left out
    ("|none~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|skip_connect~1|avg_pool_3x3~2|",
     101306 - 5 * sum(c * c + 2 * c for c in (16, 32, 64))),
    # node 1 is used by none edges only: its 15 3x3 convs are unused
    ("|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|",
     372346 - 5 * sum(9 * c * c + 2 * c for c in (16, 32, 64))),
])
def test_converted_export_counts_the_layers_on_a_path(arch, params):
    from gennape.cg.families.nb201 import onnx_cg, path_params

    spec = parse(arch)
    assert FAMILY.trainable_params(spec) - params > 0
    assert onnx_cg(FAMILY, spec).params == path_params(spec) == params


def test_load_labelled(data_dir):
    recs = FAMILY.load_labelled(data_dir)
    assert len(recs) == 15625
    assert all(0.0 <= r.accuracy <= 1.0 for r in recs)
    with_zc = [r for r in recs if "synflow" in r.extra]
    assert len(with_zc) == 724
    assert isinstance(with_zc[0].extra["params"], int)


def test_fast_path_matches_onnx_import():
    pytest.importorskip("gennape.cg.onnx_import")
    specs = [parse(a) for a in (ARCH, DEAD_CONV, UNUSED, CONSTANT)]
    result = equivalence_check(specs=specs)
    assert result["constant_output_skipped"] == 1
    assert result["identical"] == result["checked"] == 3, result["mismatches"]


@pytest.mark.parametrize("arch", [ARCH, DEAD_CONV, UNUSED, CONSTANT,
                                  "|none~0|+|none~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"])
@pytest.mark.parametrize("training", [False, True])
def test_cell_computes_what_autodl_infercell_computes(arch, training):
    """AutoDL's InferCell sums every edge, ``none`` being ``x.mul(0.)``; ours
    leaves ``none`` out and computes dead values from constant zeros."""
    import torch

    from gennape.cg.families.nets.nb201 import InferCell

    torch.manual_seed(0)
    spec = parse(arch)
    cell = InferCell(spec, 8, 6).train(training)
    for m in cell.modules():
        if isinstance(m, torch.nn.BatchNorm2d):  # non-trivial affine and running stats
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
            torch.nn.init.uniform_(m.bias, -1, 1)
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    x = torch.randn(4, 8, 6, 6)

    def reference(x):
        nodes = [x]
        for node in (1, 2, 3):
            total = 0
            for op, (n, src) in zip(spec.ops, EDGES):
                if n == node:
                    total = total + (nodes[src].mul(0.0) if op == "none" else cell.layers[f"{node}<-{src}"](nodes[src]))
            nodes.append(total)
        return nodes[3]

    state = {k: v.clone() for k, v in cell.state_dict().items()}
    want = reference(x)
    cell.load_state_dict(state)  # training mode updates running stats; start both from the same
    got, live = cell(x, True)
    got = torch.zeros(1) if got is None else got
    assert torch.allclose(got.expand_as(want), want, atol=1e-5)
    assert live == spec.live_nodes()[3]


def test_reference_network_gives_the_spec_cg():
    """NAS-Bench-201's own code (``none`` as ``x.mul(0.)``, every edge summed)
    exported as gennape exports: the spec CG for 30 random cells (200 in
    benchmarks/families.py), constant-output cells included."""
    result = equivalence_check(30, seed=11, reference=True)
    assert result["identical"] == result["checked"] == 30, result["mismatches"]


def test_reference_network_of_the_issue_example():
    from gennape.cg.families.nb201 import onnx_cg

    spec = parse("|nor_conv_1x1~0|+|none~0|none~1|+|skip_connect~0|skip_connect~1|none~2|")
    cg = onnx_cg(FAMILY, spec, reference=True)
    assert cg == FAMILY.to_cg(spec)
    assert cg.num_nodes == 66 and cg.op_counts()["add"] == 17


def test_reference_network_computes_what_ours_computes():
    import torch

    from gennape.cg.families.nets.nb201_reference import TinyNetwork

    torch.manual_seed(0)
    for arch in (ARCH, DEAD_CONV, UNUSED, CONSTANT):
        spec = parse(arch)
        ours, ref = FAMILY.to_module(spec).eval(), TinyNetwork(spec).eval()
        ref.load_state_dict(_renamed(ours.state_dict(), ref.state_dict()))
        x = torch.randn(2, 3, 32, 32)
        assert torch.allclose(ours(x), ref(x), atol=1e-5), arch


def _renamed(ours: dict, ref: dict) -> dict:
    """Our state dict under the reference's names (same tensors, in module order
    once the reference's parameter-free ``none`` edges are skipped)."""
    assert len(ours) == len(ref)
    out = {}
    for (_, v), (k, w) in zip(ours.items(), ref.items()):
        assert v.shape == w.shape, k
        out[k] = v
    return out


def test_fast_order_is_graph_builders_order():
    from gennape.cg.families.nb201 import build_cg, random_specs

    for spec in random_specs(40, seed=9) + [parse(a) for a in (DEAD_CONV, UNUSED, CONSTANT)]:
        fast, ref = build_cg(spec), build_cg(spec, reference=True)
        assert fast == ref and fast.edges == ref.edges


def test_trainable_params_without_torch_module():
    from gennape.cg.families.nb201 import random_specs, trainable_params

    for spec in random_specs(10, seed=4) + [parse(a) for a in (ARCH, DEAD_CONV, CONSTANT)]:
        assert trainable_params(spec) == _trainable(FAMILY.to_module(spec))


def test_bad_label_files_name_the_file(tmp_path):
    import gzip

    from gennape.cg.errors import GennapeError

    (tmp_path / "nb201").mkdir()
    labels = tmp_path / "nb201" / "nb201_cifar10_15625.json.gz"
    with pytest.raises(GennapeError, match="not found"):
        FAMILY.load_labelled(tmp_path)
    labels.write_bytes(b"not gzip")
    with pytest.raises(GennapeError, match="nb201_cifar10_15625.json.gz: not an NB-201 label file"):
        FAMILY.load_labelled(tmp_path)
    with gzip.open(labels, "wt") as f:
        json.dump([{"arch": ARCH}], f)
    with pytest.raises(GennapeError, match="record 0: KeyError"):
        FAMILY.load_labelled(tmp_path)
    with gzip.open(labels, "wt") as f:
        json.dump([{"arch": ARCH, "test_acc_200ep": 93.5}], f)
    (recs,) = FAMILY.load_labelled(tmp_path)
    assert recs.accuracy == pytest.approx(0.935) and recs.extra == {}
