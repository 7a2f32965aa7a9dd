"""The Python API and the issue's CI check: a tiny model pretrained on NB-101
ranks unseen NB-201 cells clearly better than chance, and fine-tuning on a
small labelled set improves Spearman on the rest."""

import numpy as np
import pytest

from _transfer_helpers import EXAMPLES, nb201_records, tiny_estimator
from gennape.cg.errors import GennapeError
from gennape.cg.families import family_names
from gennape.pretrain.metrics import spearman
from gennape.transfer import default_checkpoint, predict_cgs, predict_module, predict_onnx
from gennape.transfer.finetune import FinetuneConfig, finetune_estimator
from gennape.transfer.model import load_estimator


@pytest.fixture(scope="module")
def nb201_sample(data_dir):
    from gennape.cg.families import get_family

    nb201 = get_family("nb201")
    recs = nb201_records(data_dir)
    sel = np.random.default_rng(0).choice(len(recs), 340, replace=False)
    return [nb201.to_cg(recs[i].spec) for i in sel], np.array([recs[i].accuracy for i in sel])


def test_zero_shot_beats_chance_and_finetuning_improves(data_dir, nb201_sample):
    est = tiny_estimator(data_dir)
    cgs, y = nb201_sample
    zero = spearman([p.predicted_accuracy for p in predict_cgs(cgs[40:], est).predictions], y[40:])
    # Chance: |rho| ~ 1/sqrt(299) = 0.06; measured 0.58 for this seed.
    assert zero > 0.3
    tuned = finetune_estimator(est, cgs[:40], y[:40], FinetuneConfig(mode="encoder", seed=0))
    pred = tuned.predict(cgs[40:])
    assert spearman(pred, y[40:]) > zero + 0.05  # measured 0.58 -> 0.84 (encoder), 0.75 (heads)
    # predictions are now on NB-201's scale: inside the labelled range
    assert y[:40].min() <= np.median(pred) <= y[:40].max()
    # the argument is left untouched
    assert spearman(est.predict(cgs[40:]), y[40:]) == pytest.approx(zero)


@pytest.mark.parametrize("mode", ["heads", "encoder"])
def test_finetune_is_reproducible_with_a_seed(data_dir, nb201_sample, mode):
    est = tiny_estimator(data_dir)
    cgs, y = nb201_sample
    cfg = FinetuneConfig(mode=mode, epochs=10, seed=3)
    a = finetune_estimator(est, cgs[:20], y[:20], cfg)
    b = finetune_estimator(est, cgs[:20], y[:20], cfg)
    np.testing.assert_array_equal(a.predict(cgs[20:60]), b.predict(cgs[20:60]))
    assert a.metadata_["finetune"]["mode"] == mode and a.metadata_["finetune"]["n"] == 20
    # the tuned networks join the out-of-distribution reference set
    assert len(a.model_.reference_embeddings) == len(est.model_.reference_embeddings) + 20


def test_finetune_rejects_bad_input(data_dir, nb201_sample):
    est = tiny_estimator(data_dir)
    cgs, y = nb201_sample
    encoder = FinetuneConfig(mode="encoder")
    with pytest.raises(GennapeError, match="at least 2"):
        finetune_estimator(est, cgs[:1], y[:1], encoder)
    with pytest.raises(GennapeError, match="differ"):
        finetune_estimator(est, cgs[:3], [0.9, 0.9, 0.9], encoder)
    with pytest.raises(GennapeError, match="at least 5"):  # the default, select
        finetune_estimator(est, cgs[:4], y[:4])
    with pytest.raises(GennapeError, match="differ"):
        finetune_estimator(est, cgs[:6], [0.9] * 6)
    with pytest.raises(ValueError, match="valid modes: select, heads, encoder"):
        FinetuneConfig(mode="centres")


def test_predict_onnx_ranks_files_and_reports_bad_ones(data_dir, tmp_path):
    est = tiny_estimator(data_dir)
    (tmp_path / "broken.onnx").write_bytes(b"not a protobuf")
    run = predict_onnx([EXAMPLES, tmp_path], est)
    assert len(run.predictions) == len(list(EXAMPLES.glob("*.onnx")))
    assert [f.path for f in run.failures] == [str(tmp_path / "broken.onnx")]
    assert sorted(p.rank for p in run.predictions) == list(range(1, len(run.predictions) + 1))
    for p in run.predictions:
        assert sum(p.memberships) == pytest.approx(1.0)
        assert p.ood_score >= 0 and p.ood == (p.ood_score > est.ood_threshold_)
    # the same file predicts the same whatever it is batched with
    alone = predict_onnx(EXAMPLES / "darts_v2.onnx", est).predictions[0]
    together = next(p for p in run.predictions if p.path.endswith("darts_v2.onnx"))
    assert alone.predicted_accuracy == pytest.approx(together.predicted_accuracy, abs=1e-6)


def test_predict_module_matches_the_exported_file(data_dir):
    from gennape.cg.families import get_family

    est = tiny_estimator(data_dir)
    nb201 = get_family("nb201")
    spec = nb201.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
    module = nb201.to_module(spec)
    p = predict_module(module, (3, 32, 32), est)
    assert p.path == type(module).__name__
    q = predict_onnx(EXAMPLES / "nb201_mixed.onnx", est).predictions[0]
    assert p.predicted_accuracy == pytest.approx(q.predicted_accuracy, abs=1e-6)


def test_default_checkpoint_is_inside_the_package(tmp_path):
    path = default_checkpoint()
    assert path.parts[-3:] == ("transfer", "checkpoints", "default")
    with pytest.raises(GennapeError, match="checkpoint folder not found"):
        predict_onnx(EXAMPLES, tmp_path / "nowhere")


def test_shipped_checkpoint_predicts_the_examples():
    """Runs once the lead has placed the pretrained checkpoint in the package."""
    import json

    path = default_checkpoint()
    if not (path / "config.json").is_file():
        pytest.skip(f"no shipped checkpoint at {path} yet")
    size = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
    assert size <= 10 * 2**20
    config = json.loads((path / "config.json").read_text())
    metadata = config["metadata"]
    assert metadata["command"].startswith("gennape pretrain --families all")
    hashes = metadata["training_data"]["sha256"]  # the labels of every family it was trained on
    assert {t.split("[")[0] for t in hashes} == set(family_names()) and all(len(h) == 64 for h in hashes.values())
    run = predict_onnx(EXAMPLES)
    assert not run.failures and len(run.predictions) == len(list(EXAMPLES.glob("*.onnx")))
    # on the within-family quantile scale, with the members' spread as the uncertainty
    assert metadata["label"].startswith("within-family quantile") and run.scale == metadata["label"]
    assert all(0 < p.accuracy_std < 0.5 for p in run.predictions)


def test_the_nb101_checkpoint_is_shipped_by_name():
    import json

    from gennape.pretrain.data import NB101_LABEL
    from gennape.transfer.model import checkpoint_path, shipped_checkpoints

    assert {"default", "nb101"} <= set(shipped_checkpoints())
    config = json.loads((checkpoint_path("nb101") / "config.json").read_text())
    assert len(config["metadata"]["training_data"]["sha256"]) == 64
    run = predict_onnx(EXAMPLES, "nb101")
    assert run.scale == NB101_LABEL and not run.failures


def test_shipped_checkpoint_is_in_the_current_layout_and_saves_back_unchanged(tmp_path):
    """Saving the loaded shipped checkpoint writes its own config.json and
    model.pt again, byte for byte (every fitted key is read and written)."""
    path = default_checkpoint()
    if not (path / "config.json").is_file():
        pytest.skip(f"no shipped checkpoint at {path} yet")
    load_estimator(path).save(tmp_path / "again")
    for name in ("config.json", "model.pt"):
        assert (tmp_path / "again" / name).read_bytes() == (path / name).read_bytes(), name
