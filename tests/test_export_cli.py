"""``gennape export``: benchmark networks as ONNX files."""

from __future__ import annotations

import importlib.util

import pytest

from gennape.cli import main

NB101_ARCH = ('{"matrix": [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]],'
              ' "ops": ["input", "conv3x3-bn-relu", "maxpool3x3", "output"]}')

# One small valid ARCH per family (see ``gennape export --help``).
EXAMPLES = {
    "nb101": NB101_ARCH,
    "nb201": "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|",
    "nb301": "[[[0, 3], [1, 4], [0, 0], [1, 2], [2, 5], [0, 6], [3, 1], [1, 3]],"
             " [[0, 0], [1, 1], [2, 2], [0, 3], [3, 4], [1, 5], [4, 6], [0, 0]]]",
    "ofa_mbv3": '{"ks": [3, 5, 7, 3, 5, 7, 3, 5, 7, 3, 5, 7, 3, 5, 7, 3, 5, 7, 3, 5],'
                ' "e": [3, 4, 6, 3, 4, 6, 3, 4, 6, 3, 4, 6, 3, 4, 6, 3, 4, 6, 3, 4],'
                ' "d": [2, 3, 4, 2, 3], "r": 160}',
    "tnb101_micro": "64-41414-1_02_001@class_scene",
    "tnb101_macro": "64-1234-basic",
}


def _family_available(name: str) -> bool:
    return importlib.util.find_spec(f"gennape.cg.families.{name}") is not None


@pytest.mark.parametrize("family", sorted(EXAMPLES))
def test_export_round_trip(family, tmp_path, capsys):
    pytest.importorskip("torch")
    if not _family_available(family):
        pytest.skip(f"gennape.cg.families.{family} is not written yet")
    from gennape.cg.families import get_family
    from gennape.cg.onnx_import import from_onnx

    out = tmp_path / "net.onnx"
    assert main(["export", "--family", family, "--arch", EXAMPLES[family], str(out)]) == 0
    assert "trainable parameters" in capsys.readouterr().out
    fam = get_family(family)
    spec = fam.parse(EXAMPLES[family])
    imported = from_onnx(out)
    module = fam.to_module(spec)
    # BN stays a separate node in the file, so the CG counts exactly the
    # trainable parameters (a non-affine BN's constant ones / zeros are not).
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    assert imported.params == trainable
    assert imported.num_nodes == fam.to_cg(spec).num_nodes
    # Node-for-node equality with each family's fast path is each family's own
    # test (nb101: tests/test_nb101.py) and benchmarks/families.py.
    assert not list(tmp_path.glob(".*.tmp"))


def test_exported_file_keeps_batch_norm(tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("torch")
    out = tmp_path / "net.onnx"
    assert main(["export", "--family", "nb101", "--arch", NB101_ARCH, str(out)]) == 0
    ops = [n.op_type for n in onnx.load(str(out), load_external_data=False).graph.node]
    # Stem, 3 x (projection per vertex + conv3x3), 3 x 2 ... : one BN per conv.
    assert ops.count("BatchNormalization") == ops.count("Conv") > 0


@pytest.mark.parametrize("family, arch, message", [
    ("nb101", "not json", "invalid nb101 ARCH: NB-101 arch is not JSON"),
    ("nb101", '{"matrix": [[0, 0], [0, 0]], "ops": ["input", "output"]}', "not connected"),
    ("nb201", "|bogus~0|", "invalid nb201 ARCH"),
    ("nb301", "[[1, 2]]", "invalid nb301 ARCH"),
    ("ofa_mbv3", '{"ks": [3]}', "invalid ofa_mbv3 ARCH"),
    ("tnb101_micro", "64-41414-2_32_3", "invalid tnb101_micro ARCH: TNB-101 micro arch"),
    ("tnb101_macro", "64-1111-basic", "invalid tnb101_macro ARCH: TNB-101 macro arch [1, 1, 1, 1]"),
])
def test_bad_arch_is_one_line_exit_2(family, arch, message, tmp_path, capsys):
    if not _family_available(family):
        pytest.skip(f"gennape.cg.families.{family} is not written yet")
    out = tmp_path / "net.onnx"
    assert main(["export", "--family", family, "--arch", arch, str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gennape export: error: ") and message in err
    assert err.count("\n") == 1
    assert not out.exists()


def test_unknown_family_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["export", "--family", "nb999", "--arch", "x", "out.onnx"])
    assert exc.value.code == 2


def test_unwritable_output(tmp_path, capsys):
    pytest.importorskip("torch")
    out = tmp_path / "missing-dir" / "net.onnx"
    assert main(["export", "--family", "nb101", "--arch", NB101_ARCH, str(out)]) == 2
    assert "cannot write" in capsys.readouterr().err
