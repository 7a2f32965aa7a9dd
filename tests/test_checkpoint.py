import json

import numpy as np
import pytest
import torch

from gennape.cg.errors import GennapeError
from gennape.pretrain.checkpoint import CONFIG_FILE, MODEL_FILE, MODEL_HASH_KEY, load_checkpoint, save_checkpoint, sha256_file
from gennape.pretrain.estimator import FITTED, GennapeEstimator

from _synthetic import toy_dataset


@pytest.fixture(scope="module")
def fitted():
    cgs, y = toy_dataset(60, seed=1, stages=2, cells_per_stage=1)
    est = GennapeEstimator(hidden_channels=8, embed_dim=8, num_layers=1, num_clusters=2, epochs=1,
                           head_epochs=5, head_hidden=8).fit(cgs, y)
    return est, cgs


def test_round_trip_predicts_the_same(tmp_path, fitted):
    est, cgs = fitted
    est.metadata_ = {"command": "test", "training_data": {"sha256": "abc"}}
    est.save(tmp_path / "ck")
    back = GennapeEstimator.load(tmp_path / "ck")
    np.testing.assert_array_equal(back.predict(cgs), est.predict(cgs))
    np.testing.assert_allclose(back.memberships(cgs), est.memberships(cgs))
    np.testing.assert_allclose(back.ood_score(cgs), est.ood_score(cgs), rtol=1e-5)
    assert back.metadata_["command"] == "test"
    assert back.get_params() == est.get_params()


def test_files_are_tensors_and_json(tmp_path, fitted):
    from gennape.cg import __version__
    from gennape.cg.ops import OPS
    from gennape.encoder.features import FEATURIZER_VERSION

    est, _ = fitted
    est.save(tmp_path / "ck")
    tensors = torch.load(tmp_path / "ck" / MODEL_FILE, weights_only=True)
    assert isinstance(tensors, dict) and all(isinstance(v, torch.Tensor) for v in tensors.values())
    config = json.loads((tmp_path / "ck" / CONFIG_FILE).read_text())
    assert config["versions"]["featurizer_version"] == FEATURIZER_VERSION
    assert config["versions"]["package_version"] == __version__
    assert config["op_vocabulary"] == list(OPS)
    assert set(config) == {"estimator", "op_vocabulary", "feature_names", "versions", MODEL_HASH_KEY,
                           "params", "fitted", "metadata"}
    assert set(config["fitted"]) == set(FITTED)
    assert config["fitted"]["target_transform"]["kind"] == "quantile"
    assert config["params"]["num_clusters"] == 2
    # model.pt is the model's state_dict: encoder, heads and the fitted buffers
    assert set(tensors) == set(est.model_.state_dict())
    assert tensors["cluster_centers"].shape == (2, 8)


def test_save_load_save_is_a_fixed_point(tmp_path, fitted):
    """Every fitted key written is read back (and so written again unchanged):
    config.json and model.pt come out byte for byte the same."""
    est, _ = fitted
    est.metadata_ = {"command": "test", "finetune": {"n": 3}}
    est.save(tmp_path / "a")
    GennapeEstimator.load(tmp_path / "a").save(tmp_path / "b")
    for name in (CONFIG_FILE, MODEL_FILE):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def layout1(config: dict) -> dict:
    """A current config.json as the first layout wrote it: fitted keys and
    metadata at the top level, and a copy of the cluster centres."""
    old = {k: v for k, v in config.items() if k not in ("fitted", "metadata")}
    return {**old, **config["fitted"], **config["metadata"], "cluster_centers": [[0.0]]}


def test_a_first_layout_checkpoint_loads_and_saves_in_the_current_one(tmp_path, fitted):
    est, cgs = fitted
    est.metadata_ = {"command": "test"}
    est.save(tmp_path / "new")
    path = tmp_path / "new" / CONFIG_FILE
    current = json.loads(path.read_text())
    path.write_text(json.dumps(layout1(current)))
    old = GennapeEstimator.load(tmp_path / "new")
    np.testing.assert_array_equal(old.predict_details(cgs)["score"], est.predict_details(cgs)["score"])
    assert old.metadata_ == {"command": "test"}
    old.save(tmp_path / "again")
    assert json.loads((tmp_path / "again" / CONFIG_FILE).read_text()) == current


@pytest.mark.parametrize("key,value,named", [("featurizer_version", 999, "featurizer_version"),
                                             ("cg_format_version", 999, "cg_format_version"),
                                             ("package_version", "99.0.0", "package_version")])
def test_version_mismatch_is_refused_naming_the_version(tmp_path, fitted, key, value, named):
    est, _ = fitted
    est.save(tmp_path / "ck")
    path = tmp_path / "ck" / CONFIG_FILE
    config = json.loads(path.read_text())
    config["versions"][key] = value
    path.write_text(json.dumps(config))
    with pytest.raises(GennapeError, match=f"incompatible version.*{named}"):
        GennapeEstimator.load(tmp_path / "ck")


def test_pickles_and_missing_files_are_refused(tmp_path, fitted):
    est, _ = fitted
    with pytest.raises(GennapeError, match="not a gennape checkpoint"):
        GennapeEstimator.load(tmp_path)
    est.save(tmp_path / "ck")
    torch.save({"evil": object()}, tmp_path / "ck" / MODEL_FILE)  # needs full unpickling
    # With a matching hash recorded, the pickle reaches torch.load, which refuses it.
    config = json.loads((tmp_path / "ck" / CONFIG_FILE).read_text())
    config[MODEL_HASH_KEY] = sha256_file(tmp_path / "ck" / MODEL_FILE)
    (tmp_path / "ck" / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(GennapeError, match="tensors-only"):
        load_checkpoint(tmp_path / "ck")


def test_hash_is_checked_before_the_loader_sees_the_bytes(tmp_path, fitted, monkeypatch):
    est, _ = fitted
    est.save(tmp_path / "ck")
    torch.save({"evil": object()}, tmp_path / "ck" / MODEL_FILE)  # swapped in after saving

    def must_not_load(*args, **kwargs):
        raise AssertionError("torch.load reached with bytes that fail the recorded SHA-256")

    monkeypatch.setattr(torch, "load", must_not_load)
    with pytest.raises(GennapeError, match=r"model\.pt: does not match the SHA-256 recorded in config\.json"):
        load_checkpoint(tmp_path / "ck")
    with pytest.raises(TypeError, match="tensors only"):
        save_checkpoint(tmp_path / "x", {"a": 1}, {})


def test_interrupted_write_leaves_the_old_checkpoint(tmp_path, fitted, monkeypatch):
    est, cgs = fitted
    est.save(tmp_path / "ck")
    before = est.predict(cgs)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        est.save(tmp_path / "ck")
    with pytest.raises(KeyboardInterrupt):
        est.save(tmp_path / "new")
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]  # no temporary leftovers, no "new"
    np.testing.assert_array_equal(GennapeEstimator.load(tmp_path / "ck").predict(cgs), before)


def test_every_estimator_of_the_loader_table_is_the_class_of_its_name():
    from gennape.pretrain.base import ESTIMATORS, EstimatorBase, estimator_class

    for name in ESTIMATORS:
        kind = estimator_class(name)
        assert kind.__name__ == name and issubclass(kind, EstimatorBase)


def test_an_unknown_estimator_is_refused_naming_the_valid_ones(tmp_path, fitted):
    est, _ = fitted
    est.save(tmp_path / "ck")
    path = tmp_path / "ck" / CONFIG_FILE
    path.write_text(path.read_text().replace('"estimator": "GennapeEstimator"', '"estimator": "Forest"'))
    with pytest.raises(GennapeError, match=r"ck: unknown estimator 'Forest' in config.json; "
                                           "valid: GennapeEstimator, GennapeEnsemble, GennapeStudent, KShotEstimator"):
        GennapeEstimator.load(tmp_path / "ck")
