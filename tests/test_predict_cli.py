"""gennape predict: file collection, ranking, output files, progress, exit codes."""

import csv
import io
import json
import os

import pytest

from gennape.cg.errors import GennapeError
from gennape.transfer.predict import (
    FailedModel, ModelPrediction, Progress, PredictionRun, assign_ranks, collect_onnx,
    format_table, to_csv, write_output,
)


def test_collect_onnx_recurses_sorts_and_deduplicates(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for rel in ("a/b/z.onnx", "a/y.onnx", "a/notes.txt", "x.onnx"):
        (tmp_path / rel).write_bytes(b"")
    found = collect_onnx([tmp_path / "a", tmp_path / "x.onnx", tmp_path / "a" / "y.onnx"])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a/b/z.onnx", "a/y.onnx", "x.onnx"]
    with pytest.raises(GennapeError, match="no such file or folder"):
        collect_onnx([tmp_path / "missing.onnx"])


def test_special_files_are_per_file_failures_not_skipped(tmp_path):
    """A FIFO named *.onnx, in a searched folder or given explicitly, is listed and
    then fails on its own with a precise cause; nothing opens it (that would block)."""
    from gennape.transfer.predict import predict_files

    (tmp_path / "d").mkdir()
    os.mkfifo(tmp_path / "d" / "pipe.onnx")
    os.mkfifo(tmp_path / "given.onnx")
    found = collect_onnx([tmp_path / "d", tmp_path / "given.onnx"])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["d/pipe.onnx", "given.onnx"]

    class NeverCalled:
        def predict_details(self, cgs):
            raise AssertionError("no graph should reach the estimator")

    run = predict_files(found, NeverCalled())
    assert run.predictions == []
    assert [(f.path, f.error) for f in run.failures] == [(str(p), "not a regular file") for p in found]


def _run():
    preds = [ModelPrediction(f"m{i}.onnx", acc, (0.25, 0.75), 0.5 * i, i == 2, accuracy_std=0.01 * i)
             for i, acc in enumerate([0.90, 0.93, 0.90, 0.80])]
    preds[0].accuracy_std = float("nan")  # a single estimator: no uncertainty
    assign_ranks(preds)
    return PredictionRun(preds, [FailedModel("bad.onnx", "not an ONNX model")], "ckpt", scale="NB-101 val")


def test_ranks_best_first_ties_share_rank():
    run = _run()
    assert [(p.path, p.rank) for p in run.ranked] == [
        ("m1.onnx", 1), ("m0.onnx", 2), ("m2.onnx", 2), ("m3.onnx", 4)]


def test_table_csv_and_json_outputs(tmp_path):
    run = _run()
    table = format_table(run).splitlines()
    assert table[0].split()[:5] == ["rank", "accuracy%", "std%", "ood_score", "ood"]
    assert table[1].split()[:3] == ["1", "93.00", "1.00"] and table[1].endswith("m1.onnx")
    assert table[2].split()[:3] == ["2", "90.00", "-"]
    assert table[-1] == "accuracy% is on the scale of: NB-101 val"
    write_output(run, tmp_path / "out.csv")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out.csv").read_text())))
    assert [r["path"] for r in rows] == ["m1.onnx", "m0.onnx", "m2.onnx", "m3.onnx", "bad.onnx"]
    assert rows[0]["membership_1"] == "0.75" and rows[2]["ood"] == "1"
    assert rows[0]["accuracy_std"] == "0.01" and rows[1]["accuracy_std"] == ""
    assert [r["scale"] for r in rows] == ["NB-101 val"] * 4 + [""]
    assert rows[-1]["error"] == "not an ONNX model" and rows[-1]["predicted_accuracy"] == ""
    write_output(run, tmp_path / "out.json")
    data = json.loads((tmp_path / "out.json").read_text())
    assert data["scale"] == "NB-101 val"
    assert data["predictions"][0] == {"path": "m1.onnx", "predicted_accuracy": 0.93, "accuracy_std": 0.01,
                                      "rank": 1, "memberships": [0.25, 0.75], "ood_score": 0.5, "ood": False,
                                      "params": None, "macs": None}  # no CG behind these predictions
    assert data["predictions"][1]["accuracy_std"] is None
    assert data["failures"] == [{"path": "bad.onnx", "error": "not an ONNX model"}]
    with pytest.raises(GennapeError, match=r"\.csv or \.json"):
        write_output(run, tmp_path / "out.txt")
    assert to_csv(run).count("\n") == 6



def test_counts_in_the_table_fit_seven_characters():
    from gennape.transfer.predict import _count

    assert [_count(n) for n in (None, 950, 3_500, 25_557_032, 4_089_000_000, 143_667_240)] == [
        "-", "950", "3.50K", "25.56M", "4.09G", "144M"]

class _Stream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


def test_progress_only_on_a_terminal_and_many_files():
    for tty, total, shown in ((True, 100, True), (False, 100, False), (True, 5, False)):
        stream = _Stream(tty)
        bar = Progress("predict", stream=stream)
        bar(50, total)
        bar.close()
        assert ("50/100" in stream.getvalue()) == shown


# ------------------------------------------------------- the command, end to end
from _transfer_helpers import EXAMPLES, tiny_checkpoint  # noqa: E402
from gennape.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def ckpt(data_dir, tmp_path_factory):
    return tiny_checkpoint(data_dir, tmp_path_factory)


def test_predict_examples_table_and_csv(ckpt, tmp_path, capsys):
    out = tmp_path / "pred.csv"
    assert main(["predict", str(EXAMPLES), "--checkpoint", str(ckpt), "--output", str(out)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert lines[0].split()[:2] == ["rank", "accuracy%"]
    assert len(lines) == 2 + len(list(EXAMPLES.glob("*.onnx")))
    # a tiny estimator fitted without metadata: the scale is unknown, and it has no uncertainty
    assert lines[-1] == "accuracy% is on the scale of: unknown (the checkpoint does not record its label)"
    assert captured.err == ""  # no progress bar off a terminal
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [int(r["rank"]) for r in rows] == sorted(int(r["rank"]) for r in rows)
    assert {"membership_0", "membership_2", "ood_score", "ood", "error", "accuracy_std", "scale"} <= set(rows[0])
    assert {r["accuracy_std"] for r in rows} == {""}
    from gennape.cg.onnx_import import from_onnx

    for r in rows:  # each network's cost, as its CG counts it
        cg = from_onnx(r["path"])
        assert (int(r["params"]), int(r["macs"])) == (cg.params, cg.macs)
    header = lines[0].split()
    assert header[5:7] == ["params", "MACs"]


def test_one_bad_file_is_reported_and_skipped_exit_1(ckpt, tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage")
    out = tmp_path / "pred.json"
    code = main(["predict", str(EXAMPLES / "nb201_mixed.onnx"), str(bad), "--checkpoint", str(ckpt), "-o", str(out)])
    assert code == 1
    err = capsys.readouterr().err
    assert f"{bad}:" in err and "1 of 2 file(s) failed" in err
    data = json.loads(out.read_text())
    assert len(data["predictions"]) == 1 and data["failures"][0]["path"] == str(bad)


@pytest.mark.parametrize("argv,match", [
    (["predict", "{tmp}/bad.onnx"], "none of the 1 file"),
    (["predict", "{tmp}/missing.onnx"], "no such file or folder"),
    (["predict", "{tmp}/empty_dir"], "no .onnx files found"),
    (["predict", "{examples}", "--output", "{tmp}/x.txt"], r"must end in \.csv or \.json"),
    (["predict", "{examples}", "--checkpoint", "{tmp}"], "not a gennape checkpoint"),
])
def test_usage_and_input_errors_exit_2(ckpt, tmp_path, capsys, argv, match):
    (tmp_path / "bad.onnx").write_bytes(b"garbage")
    (tmp_path / "empty_dir").mkdir()
    argv = [a.format(tmp=tmp_path, examples=EXAMPLES) for a in argv]
    if "--checkpoint" not in argv:
        argv += ["--checkpoint", str(ckpt)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("gennape predict: error:")
    import re

    assert re.search(match, err[-1])


def test_predictions_are_identical_across_runs(ckpt, tmp_path):
    for name in ("a.json", "b.json"):
        assert main(["predict", str(EXAMPLES), "--checkpoint", str(ckpt), "-q", "-o", str(tmp_path / name),
                     "--chunk-size", "3" if name == "a.json" else "64"]) == 0
    a, b = (json.loads((tmp_path / n).read_text())["predictions"] for n in ("a.json", "b.json"))
    assert [p["path"] for p in a] == [p["path"] for p in b]
    for p, q in zip(a, b):
        assert p["predicted_accuracy"] == pytest.approx(q["predicted_accuracy"], abs=1e-6)


def test_prediction_streams_in_chunks(data_dir, tmp_path):
    """The estimator never sees more than chunk_size graphs at once, and a chunk
    that fails as a whole is retried file by file so only the culprit fails."""
    from _transfer_helpers import tiny_estimator
    from gennape.transfer.predict import collect_onnx, predict_files

    est = tiny_estimator(data_dir)

    class Spy:
        def __init__(self):
            self.sizes = []

        def predict_details(self, cgs):
            self.sizes.append(len(cgs))
            if any(c.num_nodes == 21 for c in cgs) and len(cgs) > 1:  # nb201_skips poisons a batch
                raise RuntimeError("batch failure")
            if len(cgs) == 1 and cgs[0].num_nodes == 21:
                raise RuntimeError("this graph")
            return est.predict_details(cgs)

    spy = Spy()
    files = collect_onnx([EXAMPLES])
    run = predict_files(files, spy, chunk_size=3)
    assert max(spy.sizes) == 3
    assert [f.path for f in run.failures] == [str(EXAMPLES / "nb201_skips.onnx")]
    assert "this graph" in run.failures[0].error
    assert len(run.predictions) == len(files) - 1
