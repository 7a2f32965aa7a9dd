"""gennape finetune: labels from the shared data (made on the fly), checkpoint on the new scale."""

import json
import shlex

import numpy as np
import pytest

from _transfer_helpers import EXAMPLES, nb201_example_labels, tiny_checkpoint
from gennape.cli import main
from gennape.transfer.finetune import choose_samples


@pytest.fixture(scope="module")
def ckpt(data_dir, tmp_path_factory):
    return tiny_checkpoint(data_dir, tmp_path_factory)


def test_finetune_cli_saves_a_checkpoint_on_the_family_scale(data_dir, ckpt, tmp_path, capsys):
    from gennape.pretrain.estimator import GennapeEstimator
    from gennape.transfer.labels import read_labels

    rows = nb201_example_labels(data_dir, tmp_path / "labels.csv", percent=True)
    out = tmp_path / "tuned"
    argv = ["finetune", "--labels", str(tmp_path / "labels.csv"), "--checkpoint", str(ckpt), "--out", str(out),
            "--mode", "encoder", "--epochs", "30", "--seed", "1"]
    assert main(argv) == 0
    assert f"on {len(rows)} of {len(rows)} labelled model(s) (percent labels" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert config["metadata"]["finetune"]["mode"] == "encoder" and config["metadata"]["finetune"]["seed"] == 1
    # auto: fewer than MIN_REFIT_NETWORKS labelled networks, so nothing to choose by: kept
    assert config["metadata"]["finetune"]["size_term_requested"] == "auto"
    assert len(rows) < 10 and config["metadata"]["finetune"]["size_term"] == "keep"
    assert config["metadata"]["finetune"]["labels_scale"] == "percent"
    assert config["metadata"]["label"] == f"your labels ({tmp_path / 'labels.csv'})"
    assert config["metadata"]["finetune"]["command"] == "gennape " + shlex.join(argv)  # what main received
    used = read_labels(out / "labels_used.csv")
    assert sorted(used.paths) == sorted(r[0] for r in rows)
    np.testing.assert_allclose(sorted(used.accuracies), sorted(r[1] for r in rows))
    # predictions come out on NB-201's scale (fractions within the labels' range)
    assert main(["predict", str(EXAMPLES), "--checkpoint", str(out), "-q", "-o", str(tmp_path / "p.json")]) == 0
    predicted = json.loads((tmp_path / "p.json").read_text())
    assert predicted["scale"] == config["metadata"]["label"]  # the output says which scale
    preds = [p["predicted_accuracy"] for p in predicted["predictions"]]
    lo, hi = min(r[1] for r in rows), max(r[1] for r in rows)
    assert lo - 0.1 <= np.median(preds) <= hi
    # same seed, same checkpoint predictions
    assert main(argv[:-4] + ["--out", str(tmp_path / "again"), "--epochs", "30", "--seed", "1"]) == 0
    from gennape.cg import from_onnx

    cgs = [from_onnx(p) for p in sorted(EXAMPLES.glob("*.onnx"))]
    np.testing.assert_array_equal(GennapeEstimator.load(out).predict(cgs),
                                  GennapeEstimator.load(tmp_path / "again").predict(cgs))


def test_finetune_cli_default_is_the_frozen_select_correction(data_dir, ckpt, tmp_path, capsys):
    from gennape.pretrain.kshot_estimator import KShotEstimator
    from gennape.transfer.model import load_estimator

    rows = nb201_example_labels(data_dir, tmp_path / "labels.csv", percent=True)
    out = tmp_path / "tuned"
    assert main(["finetune", "--labels", str(tmp_path / "labels.csv"), "--checkpoint", str(ckpt),
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "leave-one-out" in printed
    config = json.loads((out / "config.json").read_text())
    assert config["estimator"] == "KShotEstimator" and config["metadata"]["finetune"]["mode"] == "select"
    assert config["metadata"]["finetune"]["n"] == len(rows)
    # the self-check: how these labels rank by the start checkpoint, by size, by the correction
    from gennape.cg import from_onnx
    from gennape.pretrain.metrics import spearman

    check = config["metadata"]["finetune"]["self_check"]
    assert check["n"] == len(rows) and f"Spearman on these {len(rows)} labels" in printed
    cgs, true = [from_onnx(r[0]) for r in rows], np.array([r[1] for r in rows])
    assert check["flops"] == pytest.approx(spearman(np.array([c.macs for c in cgs], float), true))
    assert check["zero_shot"] == pytest.approx(spearman(load_estimator(ckpt).predict_score(cgs), true))
    assert {"cross_validated", "folds", "std_error"} <= set(check)
    assert main(["predict", str(EXAMPLES), "--checkpoint", str(out), "-q", "-o", str(tmp_path / "p.json")]) == 0
    predicted = json.loads((tmp_path / "p.json").read_text())
    assert predicted["scale"] == config["metadata"]["label"]
    lo, hi = min(r[1] for r in rows), max(r[1] for r in rows)
    assert lo - 0.1 <= np.median([p["predicted_accuracy"] for p in predicted["predictions"]]) <= hi + 0.1
    assert isinstance(load_estimator(out), KShotEstimator)


def test_finetune_samples_and_failures(data_dir, ckpt, tmp_path, capsys):
    rows = nb201_example_labels(data_dir, tmp_path / "labels.csv", percent=False)
    (tmp_path / "broken.onnx").write_bytes(b"nope")
    with (tmp_path / "labels.csv").open("a") as f:
        f.write("broken.onnx,0.5\n")
    out = tmp_path / "tuned"
    code = main(["finetune", "--labels", str(tmp_path / "labels.csv"), "--checkpoint", str(ckpt),
                 "--out", str(out), "--mode", "encoder", "--epochs", "5"])
    assert code == 1  # saved, but one file was skipped
    captured = capsys.readouterr()
    assert "broken.onnx" in captured.err and f"on {len(rows)} of {len(rows) + 1}" in captured.out
    assert (out / "model.pt").is_file()
    code = main(["finetune", "--labels", str(tmp_path / "labels.csv"), "--checkpoint", str(ckpt),
                 "--out", str(tmp_path / "three"), "--mode", "heads", "--epochs", "5", "--samples", "3", "--seed", "2",
                 "--keep-size-term"])
    assert code in (0, 1)
    assert json.loads((tmp_path / "three" / "config.json").read_text())["metadata"]["finetune"]["refit_size_term"] is False
    from gennape.transfer.labels import read_labels

    assert len(read_labels(tmp_path / "three" / "labels_used.csv")) + ("broken.onnx" in capsys.readouterr().err) == 3


@pytest.mark.parametrize("extra,match", [
    (["--samples", "1"], "--samples must be at least 2"),
    (["--epochs", "0"], "--epochs must be at least 1"),
    (["--samples", "3"], "labels.csv: the k-shot selection needs at least 5 labelled networks, got 3"),
])
def test_finetune_usage_errors_exit_2(data_dir, ckpt, tmp_path, capsys, extra, match):
    nb201_example_labels(data_dir, tmp_path / "labels.csv")
    argv = ["finetune", "--labels", str(tmp_path / "labels.csv"), "--checkpoint", str(ckpt),
            "--out", str(tmp_path / "o"), *extra]
    assert main(argv) == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_finetune_missing_labels_exit_2(tmp_path, capsys):
    assert main(["finetune", "--labels", str(tmp_path / "none.csv"), "--out", str(tmp_path / "o")]) == 2
    assert "labels file not found" in capsys.readouterr().err


def test_choose_samples_is_seeded_and_local():
    np.random.seed(123)
    state = np.random.get_state()[1].copy()
    a, b = choose_samples(100, 10, seed=5), choose_samples(100, 10, seed=5)
    np.testing.assert_array_equal(a, b)
    assert len(set(a)) == 10 and not np.array_equal(a, choose_samples(100, 10, seed=6))
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # global state untouched
    np.testing.assert_array_equal(choose_samples(5, None, 0), np.arange(5))
