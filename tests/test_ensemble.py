import json

import numpy as np
import pytest

from gennape.cg.errors import GennapeError
from gennape.pretrain.ensemble import GennapeEnsemble, load_fitted
from gennape.pretrain.estimator import GennapeEstimator, NotFittedError
from gennape.transfer.finetune import FinetuneConfig, finetune_estimator
from gennape.transfer.model import load_estimator

from _synthetic import toy_dataset

MEMBER = GennapeEstimator(hidden_channels=16, embed_dim=16, num_layers=2, num_clusters=2, epochs=1, batch_size=32,
                          head_epochs=10, head_hidden=16, seed=3)


@pytest.fixture(scope="module")
def data():
    cgs, y = toy_dataset(80, seed=0, stages=2, cells_per_stage=1)
    return cgs[:60], y[:60], cgs[60:], y[60:]


@pytest.fixture(scope="module")
def ensemble(data):
    return GennapeEnsemble(MEMBER, n_members=2).fit(data[0], data[1])


def test_members_are_the_template_with_consecutive_seeds(data, ensemble):
    assert [m.seed for m in ensemble.members_] == [3, 4]
    alone = GennapeEstimator(**{**MEMBER.get_params(), "seed": 4}).fit(data[0], data[1])
    np.testing.assert_array_equal(ensemble.members_[1].predict_score(data[2]), alone.predict_score(data[2]))


def test_scores_are_the_members_mean_and_details_agree(data, ensemble):
    test = data[2]
    mean = np.mean([m.predict_score(test) for m in ensemble.members_], axis=0)
    np.testing.assert_allclose(ensemble.predict_score(test), mean)
    details = ensemble.predict_details(test)
    np.testing.assert_allclose(details["score"], mean)
    np.testing.assert_allclose(details["accuracy"], ensemble.predict(test))
    np.testing.assert_allclose(details["memberships"], ensemble.members_[0].memberships(test))
    np.testing.assert_allclose(details["ood_score"], ensemble.ood_score(test))
    assert details["ood"].dtype == bool
    np.testing.assert_allclose(details["member_scores"], [m.predict_score(test) for m in ensemble.members_])
    # the uncertainty: the members' accuracies' spread, on the accuracy scale
    np.testing.assert_allclose(details["accuracy_std"], np.std([m.predict(test) for m in ensemble.members_], axis=0))
    assert np.all(details["accuracy_std"] > 0)


def test_checkpoint_round_trip_and_loader_dispatch(data, ensemble, tmp_path):
    ensemble.metadata_ = {"command": "test"}
    path = ensemble.save(tmp_path / "ens")
    config = json.loads((path / "config.json").read_text())
    assert config["estimator"] == "GennapeEnsemble" and config["params"]["n_members"] == 2
    assert len(config["fitted"]["members"]) == 2
    loaded = load_estimator(path)
    assert isinstance(loaded, GennapeEnsemble) and loaded.metadata_ == {"command": "test"}
    np.testing.assert_allclose(loaded.predict_score(data[2]), ensemble.predict_score(data[2]), rtol=1e-6)
    with pytest.raises(GennapeError, match="a GennapeEnsemble checkpoint, not a GennapeEstimator one"):
        GennapeEstimator.load(path)
    single = ensemble.members_[0].save(tmp_path / "one")
    assert isinstance(load_fitted(single), GennapeEstimator)


def test_save_load_save_is_a_fixed_point(ensemble, tmp_path):
    ensemble.metadata_ = {"command": "test"}
    ensemble.save(tmp_path / "a")
    load_estimator(tmp_path / "a").save(tmp_path / "b")
    for name in ("config.json", "model.pt"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_a_first_layout_ensemble_checkpoint_loads(data, ensemble, tmp_path):
    """The layout before config.json had sections: member configs (each with
    its fitted keys, op vocabulary and a copy of the centres at the top level)
    under ``members``, the ensemble's metadata beside them."""
    ensemble.metadata_ = {"command": "test"}
    path = ensemble.save(tmp_path / "ens") / "config.json"
    config = json.loads(path.read_text())
    envelope = {k: config[k] for k in ("op_vocabulary", "feature_names")}
    members = [{"estimator": "GennapeEstimator", **envelope, "params": m["params"], **m["fitted"],
                "cluster_centers": [[0.0]]} for m in config["fitted"]["members"]]
    path.write_text(json.dumps({"estimator": "GennapeEnsemble", "versions": config["versions"], "n_members": 2,
                                "members": members, "command": "test"}))
    loaded = load_estimator(path.parent)
    np.testing.assert_array_equal(loaded.predict_score(data[2]), ensemble.predict_score(data[2]))
    assert loaded.metadata_ == {"command": "test"} and loaded.estimator.get_params() == MEMBER.get_params()
    loaded.save(tmp_path / "again")
    assert json.loads((tmp_path / "again" / "config.json").read_text()) == config


def test_params_api_is_scikit_learns(ensemble):
    params = ensemble.get_params()
    assert params["estimator"] is MEMBER and params["n_members"] == 2 and params["estimator__seed"] == 3
    assert set(ensemble.get_params(deep=False)) == {"estimator", "n_members"}
    template = GennapeEstimator(seed=1)
    other = GennapeEnsemble(template, n_members=3).set_params(estimator__seed=7, n_members=4)
    assert other.estimator is template and template.seed == 7 and other.n_members == 4
    assert repr(other) == "GennapeEnsemble(estimator=GennapeEstimator(seed=7), n_members=4)"
    assert repr(GennapeEnsemble()) == "GennapeEnsemble()"
    with pytest.raises(ValueError, match="no parameters to set"):
        GennapeEnsemble().set_params(estimator__seed=1)


def test_finetune_is_a_warm_started_fit_returning_self(data, ensemble):
    import copy

    est = copy.deepcopy(ensemble)
    cgs, y = data[2][:12], data[3][:12]
    assert est.finetune(cgs, y, epochs=2, seed=1) is est
    assert est.metadata_["finetune"]["epochs"] == 2 and all(m.metadata_["finetune"]["seed"] == 1 for m in est.members_)
    assert [m.seed for m in est.members_] == [3, 4]  # the members' own seeds are not touched


def test_finetuning_tunes_every_member(data, ensemble):
    cgs, y = data[2][:12], data[3][:12]
    tuned = finetune_estimator(ensemble, cgs, y, FinetuneConfig(mode="encoder", epochs=3, seed=0))
    assert tuned is not ensemble and len(tuned.members_) == 2
    assert tuned.metadata_["finetune"]["n"] == 12
    for before, after in zip(ensemble.members_, tuned.members_):
        assert not np.array_equal(before.predict_score(cgs), after.predict_score(cgs))
    np.testing.assert_allclose(tuned.predict_score(cgs), np.mean([m.predict_score(cgs) for m in tuned.members_], 0))


def test_unfitted_and_bad_arguments_say_so():
    with pytest.raises(NotFittedError, match="not fitted yet"):
        GennapeEnsemble().predict_score([])
    with pytest.raises(ValueError, match="n_members must be >= 1"):
        GennapeEnsemble(MEMBER, n_members=0).fit([], [])
    with pytest.raises(ValueError, match="valid parameters: estimator, n_members"):
        GennapeEnsemble().set_params(members=3)
