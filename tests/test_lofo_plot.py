"""benchmarks/lofo_plot.py: a LOFO run's saved stdout is read by its last JSON
line and drawn; a file without one is a one-line error naming it."""

import importlib.util
import json
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "_bench_lofo_plot", Path(__file__).resolve().parent.parent / "benchmarks" / "lofo_plot.py")
lofo_plot = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lofo_plot)

RUN = {"nb201": {"zero_shot": 0.85, "shipped_variant": 0.85, "params": 0.83, "flops": 0.83, "k_shot_mean": None},
       "torchvision_eval": {"zero_shot": 0.55, "shipped_variant": 0.60, "params": 0.44, "flops": 0.64,
                            "k_shot_mean": None}}


def _saved_run(tmp_path, *json_lines) -> Path:
    out = tmp_path / "lofo.out"
    out.write_text("### a table\n\n| variant | nb201 |\n" + "\n".join(json.dumps(j) for j in json_lines) + "\n")
    return out


def test_the_run_is_its_last_json_line(tmp_path):
    older = {"nb201": {**RUN["nb201"], "zero_shot": 0.1}}
    assert lofo_plot.read_run(_saved_run(tmp_path, older, RUN)) == RUN


def test_a_file_without_a_result_line_names_the_file(tmp_path):
    path = _saved_run(tmp_path, {"queries": 1000})
    with pytest.raises(SystemExit, match=f"{path}: no LOFO result line"):
        lofo_plot.read_run(path)
    with pytest.raises(SystemExit, match="cannot read"):
        lofo_plot.read_run(tmp_path / "missing.out")


def test_families_get_registered_titles_and_scored_only_ones_their_name():
    assert lofo_plot.column_title("nb201") == "NB-201 (CIFAR-10)"
    assert lofo_plot.column_title("torchvision_eval") == "torchvision_eval (scored only)"


def test_the_picture_is_written(tmp_path):
    pytest.importorskip("matplotlib")
    out = lofo_plot.plot_lofo(RUN, tmp_path / "lofo.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
