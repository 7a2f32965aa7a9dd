import dataclasses

import numpy as np
import pytest
import torch

from gennape.cg.graph import CG
from gennape.cg.ops import OPS
from gennape.encoder.features import NUM_FEATURES, featurize
from gennape.encoder.gnn import CGEncoder
from gennape.encoder.op_encoding import ENCODINGS, OP_CLASSES, OpEncoding, op_matrix
from gennape.pretrain.estimator import GennapeEstimator
from gennape.pretrain.packed import GraphPack

from _synthetic import toy_cg, toy_dataset


def _swap_op(cg: CG, old: str, new: str) -> CG:
    nodes = tuple(dataclasses.replace(n, op=new) if n.op == old else n for n in cg.nodes)
    return dataclasses.replace(cg, nodes=nodes)


def test_every_op_type_is_in_exactly_one_class():
    members = [op for ops in OP_CLASSES.values() for op in ops]
    assert sorted(members) == sorted(OPS)
    assert torch.equal(op_matrix("class").sum(1), torch.ones(len(OPS)))


def test_unknown_encoding_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid choices: class, op"):
        op_matrix("fine")
    with pytest.raises(ValueError, match="unknown op encoding"):
        CGEncoder(NUM_FEATURES, op_encoding="onehot")


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_output_width_and_numeric_columns_pass_through(encoding):
    enc = OpEncoding(NUM_FEATURES, encoding)
    x = featurize(toy_cg(["conv3", "pool"]).to_pyg())
    out = enc(x)
    n_ops = len(OPS) if encoding == "op" else len(OP_CLASSES)
    assert enc.out_channels == out.shape[1] == n_ops + NUM_FEATURES - len(OPS)
    assert torch.equal(out[:, n_ops:], x[:, len(OPS):])


def test_class_encoding_merges_average_and_max_pooling():
    cg = toy_cg(["conv3", "pool"])
    x_max, x_avg = (featurize(c.to_pyg()) for c in (cg, _swap_op(cg, "max_pool", "avg_pool")))
    assert not torch.equal(x_max, x_avg)  # the featuriser still tells them apart
    assert torch.equal(OpEncoding(NUM_FEATURES, "class")(x_max), OpEncoding(NUM_FEATURES, "class")(x_avg))
    assert not torch.equal(OpEncoding(NUM_FEATURES, "op")(x_max), OpEncoding(NUM_FEATURES, "op")(x_avg))


def test_seen_mask_zeroes_columns_absent_from_training():
    pack = GraphPack.from_items([toy_cg(["conv3", "pool"])])
    enc = OpEncoding(NUM_FEATURES, "class")
    enc.set_seen(torch.as_tensor(pack.feature_presence()))
    seen = dict(zip(OP_CLASSES, enc.seen[:len(OP_CLASSES)].tolist()))
    assert seen["pool"] == seen["conv"] == seen["activation"] == 1.0
    assert seen["norm"] == seen["mul"] == seen["matmul"] == 0.0
    x = torch.zeros(1, NUM_FEATURES)
    x[0, OPS.index("batch_norm")] = 1.0  # a node of a class training never saw
    assert torch.equal(enc(x), torch.zeros(1, enc.out_channels))
    with pytest.raises(ValueError, match="expected"):
        enc.set_seen(torch.ones(3, dtype=torch.bool))


def test_seen_mask_is_saved_with_the_encoder_and_the_matrix_is_not():
    state = CGEncoder(NUM_FEATURES).state_dict()
    assert "op_encoding.seen" in state and "op_encoding.matrix" not in state


def test_fitted_estimator_treats_an_unseen_op_like_its_seen_class_mate():
    cgs, y = toy_dataset(60, seed=0, stages=2, cells_per_stage=1)
    params = dict(hidden_channels=16, embed_dim=16, num_layers=2, num_clusters=2, epochs=1, batch_size=32,
                  head_epochs=5, head_hidden=16)
    est = GennapeEstimator(**params).fit(cgs, y)
    pooled = [c for c in cgs if any(n.op == "max_pool" for n in c.nodes)][:5]
    averaged = [_swap_op(c, "max_pool", "avg_pool") for c in pooled]
    np.testing.assert_array_equal(est.predict_score(pooled), est.predict_score(averaged))
    per_op = GennapeEstimator(**params, op_encoding="op").fit(cgs, y)
    assert not np.array_equal(per_op.predict_score(pooled), per_op.predict_score(averaged))
