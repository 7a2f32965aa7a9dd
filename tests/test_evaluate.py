"""Evaluation pieces: plotting (optional matplotlib) and text / JSON formatting."""

import sys

import numpy as np
import pytest

from cg.errors import GennapeError
from transfer.evaluate import Evaluation, format_metrics
from transfer.metrics import all_metrics


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
    from transfer.plot import plot_predictions

    ev = _evaluation()
    out = plot_predictions(ev.pred, ev.true, tmp_path / "scatter.png", title="demo")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["scatter.png"]  # no temporary left behind


def test_plot_rejects_bad_paths(tmp_path):
    from transfer.plot import plot_predictions

    with pytest.raises(GennapeError, match="does not exist"):
        plot_predictions([0.1, 0.2], [0.1, 0.2], tmp_path / "no" / "x.png")
    with pytest.raises(GennapeError, match="must end in"):
        plot_predictions([0.1, 0.2], [0.1, 0.2], tmp_path / "x.txt")


def test_plot_without_matplotlib_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import raises ImportError
    from transfer.plot import plot_predictions

    with pytest.raises(GennapeError, match=r"gennape\[plot\]"):
        plot_predictions([0.1, 0.2], [0.1, 0.2], tmp_path / "x.png")
