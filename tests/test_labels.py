"""LABELS.csv reading: columns, relative paths, percent/fraction detection, errors with file:line."""

import pytest

from gennape.cg.errors import GennapeError
from gennape.transfer.labels import read_labels, write_labels


def _write(tmp_path, text, name="labels.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_percent_detected_paths_relative_extra_columns_ignored(tmp_path):
    path = _write(tmp_path, "note,accuracy,onnx\nx,93.5,nets/a.onnx\n\ny,50,/abs/b.onnx\n")
    labels = read_labels(path)
    assert labels.scale == "percent"
    assert labels.accuracies == pytest.approx([0.935, 0.5])
    assert labels.paths[0] == tmp_path / "nets" / "a.onnx"
    assert str(labels.paths[1]) == "/abs/b.onnx"
    assert [r.line for r in labels.rows] == [2, 4]


def test_fraction_detected_when_any_value_at_most_one(tmp_path):
    labels = read_labels(_write(tmp_path, "onnx,accuracy\na.onnx,0.93\nb.onnx,1.0\nc.onnx,0.1\n"))
    assert labels.scale == "fraction"
    assert labels.accuracies == pytest.approx([0.93, 1.0, 0.1])


@pytest.mark.parametrize("text,match", [
    ("", "empty file"),
    ("onnx,acc\na.onnx,0.5\n", "lacks column"),
    ("onnx,accuracy\n", "no labelled rows"),
    ("onnx,accuracy\na.onnx,0.5\nb.onnx,high\n", r"labels.csv:3: accuracy 'high' is not a number"),
    ("onnx,accuracy\na.onnx,0.5\nb.onnx,93\n", r"labels.csv:3: accuracy 93.0 is above 1"),
    ("onnx,accuracy\na.onnx,95\nb.onnx,193\n", r"labels.csv:3: .*above 100"),
    ("onnx,accuracy\na.onnx,-0.5\n", r"labels.csv:2: .*>= 0"),
    ("onnx,accuracy\na.onnx,nan\n", r"labels.csv:2: .*finite"),
    ("onnx,accuracy\n,0.5\n", r"labels.csv:2: empty onnx path"),
    ("onnx,accuracy\na.onnx\n", r"labels.csv:2: expected at least 2 columns"),
    ("onnx,accuracy\na.onnx,0.5\n./a.onnx,0.6\n", r"labels.csv:3: .*listed twice \(first on line 2\)"),
])
def test_errors_name_file_and_line(tmp_path, text, match):
    with pytest.raises(GennapeError, match=match):
        read_labels(_write(tmp_path, text))


def test_missing_file(tmp_path):
    with pytest.raises(GennapeError, match="not found"):
        read_labels(tmp_path / "nope.csv")


def test_write_read_round_trip_and_exclude(tmp_path):
    files = [tmp_path / "m" / f"{i}.onnx" for i in range(4)]
    write_labels(tmp_path / "all.csv", files, [0.1, 0.2, 0.3, 0.4])
    write_labels(tmp_path / "used.csv", files[:2], [0.1, 0.2])
    assert (tmp_path / "all.csv").read_text().splitlines()[1] == "m/0.onnx,0.1"
    rest = read_labels(tmp_path / "all.csv").exclude(read_labels(tmp_path / "used.csv"))
    assert rest.paths == files[2:]
    assert rest.accuracies == pytest.approx([0.3, 0.4])
