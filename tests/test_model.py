"""GennapeModel is the one forward pass (predict, fit_heads and fine-tuning run
it), and the estimator's parameters are the one source of the encoder's and
the pretraining loop's settings."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch
from _hostile import tiny_data, tiny_estimator

from gennape.encoder.gnn import CGEncoder
from gennape.pretrain.base import keyword_defaults
from gennape.pretrain.contrastive import ContrastiveConfig
from gennape.pretrain.estimator import GennapeEstimator
from gennape.pretrain.packed import GRAPH_ATTRS, GraphPack


def test_the_forward_pass_is_what_predict_returns():
    est = tiny_estimator()
    cgs, _ = tiny_data(12, seed=5)
    b = GraphPack.from_items(cgs).collate(np.arange(12))
    model = est.model_
    with torch.no_grad():
        score = model(b.x, b.edge_index, b.batch, graph_attr=b.graph_attr)
        out = model.outputs(b.x, b.edge_index, b.batch, graph_attr=b.graph_attr)
    assert score.shape == (12,) and score.dtype == torch.float64
    np.testing.assert_array_equal(score.numpy(), est.predict_score(cgs))
    np.testing.assert_array_equal(out.membership.numpy(), est.memberships(cgs))
    np.testing.assert_array_equal(out.embedding.numpy(), est.embed(cgs))
    a, b_, c = est.capacity_
    np.testing.assert_allclose(score.numpy(), a * out.head_score.numpy() + b_ * b.log_weights.numpy() + c)


def test_the_size_input_is_a_named_graph_level_keyword():
    est = tiny_estimator()
    cgs, _ = tiny_data(4, seed=5)
    b = GraphPack.from_items(cgs).collate([2, 0])
    assert b.graph_attr.shape == (2, len(GRAPH_ATTRS)) and int(b.batch.max()) == 1
    np.testing.assert_array_equal(b.log_weights, b.graph_attr[:, GRAPH_ATTRS.index("log_weights")])
    model = copy.deepcopy(est.model_)
    model.set_capacity((1.0, 0.5, 0.1))
    with pytest.raises(ValueError, match="pass graph_attr"):
        model(b.x, b.edge_index, b.batch)
    model.set_capacity((1.0, 0.0, 0.0))  # no size term: the keyword may be left out
    with torch.no_grad():
        np.testing.assert_array_equal(model(b.x, b.edge_index, b.batch),
                                      model(b.x, b.edge_index, b.batch, graph_attr=b.graph_attr))


def test_model_state_is_the_checkpoint_tensors_and_capacity_lives_in_config():
    state = tiny_estimator().model_.state_dict()
    assert {"cluster_centers", "embedding_mean", "embedding_std", "reference_embeddings"} <= set(state)
    assert "capacity" not in state
    assert all(k.startswith(("encoder.", "heads.")) for k in state if "." in k)


def test_encoder_and_pretraining_settings_come_from_the_estimators_parameters():
    params = GennapeEstimator().get_params()
    # Every pretraining setting is an estimator parameter of the same name, with no default of its own.
    assert {f.name for f in dataclasses.fields(ContrastiveConfig)} <= set(params)
    assert all(f.default is dataclasses.MISSING for f in dataclasses.fields(ContrastiveConfig))
    # The encoder's own defaults (for use on its own) agree with the estimator's.
    shared = {k: v for k, v in keyword_defaults(CGEncoder).items() if k in params}
    assert set(shared) >= {"hidden_channels", "num_layers", "conv", "direction", "readout", "dropout", "op_encoding"}
    assert shared == {k: params[k] for k in shared}
    assert keyword_defaults(CGEncoder)["out_channels"] == params["embed_dim"]
    est = GennapeEstimator(readout="mean+max", hidden_channels=12, embed_dim=6, num_layers=3, conv="gin")
    enc = est._new_encoder()
    assert enc.readout == "mean+max" and len(enc.convs) == 3 and enc.input.out_features == 12
    assert enc.project[-1].out_features == 6


def test_finetune_is_a_warm_started_fit_returning_self():
    est = copy.deepcopy(tiny_estimator())
    cgs, y = tiny_data(12, seed=9)
    before = est.predict_score(cgs)
    assert est.finetune(cgs, y * 0.9, epochs=2, seed=5) is est
    assert est.seed == tiny_estimator().seed  # the estimator's own seed is not borrowed
    run = est.metadata_["finetune"]
    assert {k: run[k] for k in ("mode", "epochs", "lr", "encoder_lr", "seed", "n")} == {
        "mode": "encoder", "epochs": 2, "lr": 5e-4, "encoder_lr": 1e-4, "seed": 5, "n": 12}
    # the size term was chosen on the labels (auto) and the choice recorded
    assert run["size_term_requested"] == "auto" and run["refit_size_term"] == (run["size_term"] == "refit")
    assert est.metadata_["label"] == "your labels"
    assert not np.array_equal(before, est.predict_score(cgs))
    with pytest.raises(ValueError, match="valid modes: heads, encoder"):
        est.finetune(cgs, y, mode="centres")


def test_fit_heads_takes_its_seed_as_an_argument():
    cgs, y = tiny_data(12, seed=9)
    a = copy.deepcopy(tiny_estimator()).fit_heads(cgs, y, epochs=3, seed=4)
    b = copy.deepcopy(tiny_estimator()).set_params(seed=4).fit_heads(cgs, y, epochs=3)
    np.testing.assert_array_equal(a.predict_score(cgs), b.predict_score(cgs))


def test_estimator_params_api():
    est = GennapeEstimator(readout="mean", seed=3)
    assert repr(est) == "GennapeEstimator(readout='mean', seed=3)"
    assert est.set_params(seed=4) is est and est.get_params()["seed"] == 4
    assert est.get_params(deep=False) == est.get_params()
    with pytest.raises(ValueError, match="unknown parameter 'sead' of GennapeEstimator; valid parameters: hidden"):
        est.set_params(sead=1)


def test_log_macs_column_is_the_graphs_total_macs():
    cgs, _ = tiny_data(3, seed=2)
    pack = GraphPack.from_items(cgs)
    np.testing.assert_allclose(pack.graph_column("log_macs"), np.log1p([cg.macs for cg in cgs]))
    np.testing.assert_array_equal(pack.subset([2, 0]).graph_attr, pack.graph_attr[[2, 0]])
    with pytest.raises(ValueError, match="valid: log_weights, log_macs"):
        pack.graph_column("depth")


def test_size_measure_is_chosen_by_name_and_read_by_the_forward():
    from gennape.pretrain.size_measure import pack_size

    cgs, _ = tiny_data(6, seed=4)
    pack = GraphPack.from_items(cgs)
    both = 0.5 * (pack.graph_column("log_weights") + pack.graph_column("log_macs"))
    np.testing.assert_allclose(pack_size(pack, "weights_macs"), both)
    np.testing.assert_array_equal(pack_size(pack, "weights"), pack.log_weights)
    np.testing.assert_array_equal(pack_size(pack, "macs"), pack.graph_column("log_macs"))
    with pytest.raises(ValueError, match="valid: weights, weights_macs, macs"):
        pack_size(pack, "flops")
    est = tiny_estimator()
    model = copy.deepcopy(est.model_)
    model.size_mix = torch.tensor([0.5, 0.5], dtype=torch.float64)
    model.set_capacity((1.0, 0.25, 0.0))
    b = pack.collate(np.arange(6))
    with torch.no_grad():
        out = model.outputs(b.x, b.edge_index, b.batch, graph_attr=b.graph_attr)
    np.testing.assert_allclose(out.score.numpy(), out.head_score.numpy() + 0.25 * both)


def test_ood_head_trust_pulls_far_networks_toward_the_heads_mean():
    from gennape.pretrain.head_trust import trusted_head

    head = torch.tensor([2.0, 2.0, 2.0], dtype=torch.float64)
    ood = torch.tensor([0.5, 1.0, 4.0], dtype=torch.float64)
    np.testing.assert_allclose(trusted_head(head, ood, 1.0).numpy(), [2.0, 2.0, 1.25])
    est = tiny_estimator()
    cgs, _ = tiny_data(6, seed=4)
    b = GraphPack.from_items(cgs).collate(np.arange(6))
    model = copy.deepcopy(est.model_)
    model.head_trust = "ood"
    with torch.no_grad():
        out = model.outputs(b.x, b.edge_index, b.batch, graph_attr=b.graph_attr)
        a, b_, c = est.capacity_
        used = trusted_head(out.head_score, model.ood(out.embedding), model.head_mean)
        np.testing.assert_allclose(out.score.numpy(), (a * used + b_ * model.size(b.graph_attr) + c).numpy())
        np.testing.assert_allclose(model.ood(out.embedding).numpy(), est.ood_score(cgs))
    assert est.head_mean_ != 0.0  # fit records the heads' training mean
    with pytest.raises(ValueError, match="valid: constant, ood"):
        GennapeEstimator(head_trust="far")._new_model(est.model_.encoder, est.model_.heads)
