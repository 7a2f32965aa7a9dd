"""Evaluation pieces: plotting (optional matplotlib) and text / JSON formatting."""

import sys

import numpy as np
import pytest

from gennape.cg.errors import GennapeError
from gennape.transfer.evaluate import Evaluation, format_metrics
from gennape.pretrain.metrics import all_metrics


def _evaluation():
    rng = np.random.default_rng(0)
    true = rng.uniform(0.8, 0.95, 40)
    pred = true + rng.normal(0, 0.01, 40)
    return Evaluation(all_metrics(pred, true), pred, true, [f"m{i}.onnx" for i in range(40)])


def test_format_metrics_lists_every_metric():
    text = format_metrics(_evaluation(), "labels.csv")
    for word in ("Spearman", "Kendall", "NDCG@10", "precision top 10%", "MAE", "labels.csv"):
        assert word in text
    d = _evaluation().to_dict()
    assert {"n", "spearman", "kendall", "ndcg10", "failed", "excluded"} <= set(d)


def test_plot_writes_image_atomically(tmp_path):
    pytest.importorskip("matplotlib")
    from gennape.transfer.plot import plot_predictions

    ev = _evaluation()
    out = plot_predictions(ev.pred, ev.true, tmp_path / "scatter.png", title="demo")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["scatter.png"]  # no temporary left behind


def test_plot_rejects_bad_paths(tmp_path):
    from gennape.transfer.plot import plot_predictions

    with pytest.raises(GennapeError, match="does not exist"):
        plot_predictions([0.1, 0.2], [0.1, 0.2], tmp_path / "no" / "x.png")
    with pytest.raises(GennapeError, match="must end in"):
        plot_predictions([0.1, 0.2], [0.1, 0.2], tmp_path / "x.txt")


def test_plot_without_matplotlib_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import raises ImportError
    from gennape.transfer.plot import plot_predictions

    with pytest.raises(GennapeError, match=r"gennape\[plot\]"):
        plot_predictions([0.1, 0.2], [0.1, 0.2], tmp_path / "x.png")


# ------------------------------------------------------- the command, end to end
import json  # noqa: E402

from _transfer_helpers import nb201_example_labels, tiny_checkpoint  # noqa: E402
from gennape.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def ckpt(data_dir, tmp_path_factory):
    return tiny_checkpoint(data_dir, tmp_path_factory)


def test_evaluate_json_exclude_and_plot(data_dir, ckpt, tmp_path, capsys):
    from gennape.transfer.labels import write_labels

    rows = nb201_example_labels(data_dir, tmp_path / "labels.csv")
    assert main(["evaluate", "--labels", str(tmp_path / "labels.csv"), "--checkpoint", str(ckpt), "--json"]) == 0
    d = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"spearman", "kendall", "ndcg10", "precision_top10", "mae", "n"} <= set(d)
    assert d["n"] == len(rows) and d["excluded"] == 0 and -1 <= d["spearman"] <= 1
    # the size baselines: the CGs' own counts against the same labels
    from gennape.cg.onnx_import import from_onnx
    from gennape.pretrain.metrics import spearman

    cgs = [from_onnx(path) for path, _ in rows]
    true = [acc for _, acc in rows]
    assert d["params_spearman"] == pytest.approx(spearman(np.array([c.params for c in cgs], float), np.array(true)))
    assert d["flops_spearman"] == pytest.approx(spearman(np.array([c.macs for c in cgs], float), np.array(true)))
    write_labels(tmp_path / "used.csv", [rows[0][0]], [rows[0][1]])
    argv = ["evaluate", "--labels", str(tmp_path / "labels.csv"), "--checkpoint", str(ckpt),
            "--exclude", str(tmp_path / "used.csv")]
    if _has_matplotlib():
        argv += ["--plot", str(tmp_path / "p.png")]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert f"models evaluated   {len(rows) - 1}" in text and "excluded           1" in text
    assert "Spearman, #params" in text and "Spearman, FLOPs" in text
    if _has_matplotlib():
        assert (tmp_path / "p.png").stat().st_size > 1000


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def test_evaluate_failures_and_errors(data_dir, ckpt, tmp_path, capsys):
    nb201_example_labels(data_dir, tmp_path / "labels.csv")
    (tmp_path / "broken.onnx").write_bytes(b"nope")
    with (tmp_path / "labels.csv").open("a") as f:
        f.write("broken.onnx,50\n")
    assert main(["evaluate", "--labels", str(tmp_path / "labels.csv"), "--checkpoint", str(ckpt), "--json"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["failed"] == 1 and "broken.onnx" in captured.err
    (tmp_path / "two.csv").write_text("onnx,accuracy\nbroken.onnx,0.5\nmissing.onnx,0.6\n")
    assert main(["evaluate", "--labels", str(tmp_path / "two.csv"), "--checkpoint", str(ckpt)]) == 2
    assert "only 0 model(s) could be predicted" in capsys.readouterr().err
