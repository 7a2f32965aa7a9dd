"""``gennape convert``: summary, JSON, drawing, op list, and one-line errors
with exit code 2 on bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gennape.cg.graph import CG
from gennape.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def resnet(light_dir):
    return light_dir / "light_resnet50.onnx"


def test_summary(resnet, capsys):
    assert main(["convert", str(resnet)]) == 0
    out = capsys.readouterr().out
    assert "params 25,557,032" in out and "nodes 124" in out and "conv 53" in out


def test_json_file_round_trips(resnet, tmp_path, capsys):
    path = tmp_path / "r.json"
    assert main(["convert", str(resnet), "--json", str(path)]) == 0
    data = json.loads(path.read_text())
    assert {"nodes", "edges", "summary"} <= set(data)
    assert data["summary"]["params"] == 25_557_032 and data["summary"]["ops"]["conv"] == 53
    assert {"num_nodes", "num_edges", "macs"} <= set(data["summary"])
    cg = CG.from_json(path.read_text())
    assert cg.num_nodes == 124 and not list(tmp_path.glob("*.tmp"))


def test_json_to_stdout(resnet, capsys):
    assert main(["convert", str(resnet), "--json", "-"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["summary"]["num_nodes"] == 124
    assert "params" in captured.err  # the human summary moves to stderr


def test_draw_svg_and_png(light_dir, tmp_path, capsys):
    model = light_dir / "light_squeezenet.onnx"
    svg = tmp_path / "g.svg"
    assert main(["convert", str(model), "--draw", str(svg)]) == 0
    assert f"wrote {svg} and {tmp_path / 'g.dot'}" in capsys.readouterr().out
    text = svg.read_text()
    dot = (tmp_path / "g.dot").read_text()
    assert len(re.findall(r"^\s*n\d+ \[label=", dot, re.M)) == 67  # every node, even a repeated one
    assert text.startswith("<svg") and 0 < text.count("<rect") <= 67
    pytest.importorskip("matplotlib")
    png = tmp_path / "g.png"
    assert main(["convert", str(model), "--draw", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_draw_png_without_matplotlib(light_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails
    assert main(["convert", str(light_dir / "light_squeezenet.onnx"), "--draw", str(tmp_path / "g.png")]) == 2
    err = capsys.readouterr().err
    assert "matplotlib" in err and err.count("\n") == 1


def test_list_ops(capsys):
    assert main(["convert", "--list-ops"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Add") and "Conv" in out and "HardSwish" in out


def test_input_shape_and_unknown_ops(tmp_path, capsys):
    import onnx
    from _onnx_graphs import model, node

    m = model([node("Relu", ["x"], ["r"]), node("Softplus", ["r"], ["y"])], inputs=[("x", ("N", 3, "H", "W"))])
    path = tmp_path / "m.onnx"
    onnx.save(m, path)
    assert main(["convert", str(path)]) == 2
    assert "unknown dimensions" in capsys.readouterr().err
    assert main(["convert", str(path), "--input-shape", "1x3x32x32"]) == 2
    err = capsys.readouterr().err
    assert "Softplus" in err and "--unknown-ops other" in err and err.count("\n") == 1
    assert main(["convert", str(path), "--input-shape", "1x3x32x32", "--unknown-ops", "other"]) == 0
    captured = capsys.readouterr()
    assert "other 1" in captured.out and "warning" in captured.err
    with pytest.raises(SystemExit) as exc:  # a usage error, like any malformed option value
        main(["convert", str(path), "--input-shape", "1xAx32"])
    assert exc.value.code == 2 and "argument --input-shape: input shape '1xAx32'" in capsys.readouterr().err


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "gennape", "convert", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


@pytest.mark.parametrize("kind", ["not_onnx", "truncated", "missing"])
def test_bad_input_exit_2_one_line(kind, light_dir, tmp_path):
    path = tmp_path / f"{kind}.onnx"
    if kind == "not_onnx":
        path.write_text("hello, world\n")
    elif kind == "truncated":
        path.write_bytes((light_dir / "light_resnet50.onnx").read_bytes()[:20000])
    proc = _cli(path)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("gennape convert: error: ") and str(path) in proc.stderr
