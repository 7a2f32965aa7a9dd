import pytest
import torch

from gennape.cg.ops import OPS
from gennape.encoder.features import FEATURE_NAMES, NUM_FEATURES, featurize, to_data
from gennape.encoder.gnn import CONVS, DIRECTIONS, READOUTS, CGEncoder
from gennape.pretrain.packed import GraphPack

from _synthetic import toy_cg

OPS_CELL = ["conv3", "pool", "conv1"]


def test_feature_matrix_shape_and_one_hot():
    cg = toy_cg(OPS_CELL)
    x = featurize(cg.to_pyg())
    assert x.shape == (cg.num_nodes, NUM_FEATURES) == (cg.num_nodes, len(FEATURE_NAMES))
    assert x.dtype == torch.float32
    onehot = x[:, :len(OPS)]
    assert torch.equal(onehot.argmax(1), torch.tensor([OPS.index(n.op) for n in cg.nodes]))
    assert torch.all(onehot.sum(1) == 1)
    assert torch.isfinite(x).all()


def _numeric(cg):
    return featurize(cg.to_pyg())


def test_features_do_not_depend_on_resolution():
    base = _numeric(toy_cg(OPS_CELL, stem=16, resolution=32))
    # Only the classifier's MACs do not scale with resolution: shares move a hair.
    assert torch.allclose(base, _numeric(toy_cg(OPS_CELL, stem=16, resolution=224)), atol=1e-3)


def test_cell_features_do_not_depend_on_stem_width():
    base = _numeric(toy_cg(OPS_CELL, stem=16))
    wide = _numeric(toy_cg(OPS_CELL, stem=64))
    # Away from the RGB input and the 10-class output (whose widths are fixed),
    # only the weight / MAC shares move, and only a little.
    cells = slice(3, -3)
    shares = [i for i, n in enumerate(FEATURE_NAMES) if "weight" in n or "mac" in n]
    others = [i for i in range(NUM_FEATURES) if i not in shares]
    assert torch.equal(base[cells][:, others], wide[cells][:, others])
    assert torch.allclose(base[cells][:, shares], wide[cells][:, shares], atol=0.1)


def test_features_ignore_bn_folding():
    # BN folding changes only `params`, which the featuriser never reads.
    assert torch.equal(_numeric(toy_cg(OPS_CELL, bn=True)), _numeric(toy_cg(OPS_CELL, bn=False)))


def test_named_columns_mean_what_they_say():
    cg = toy_cg(["conv3"], stages=2, cells_per_stage=1)
    x = featurize(cg.to_pyg())
    col = {n: i for i, n in enumerate(FEATURE_NAMES)}
    convs = [i for i, n in enumerate(cg.nodes) if n.op == "conv"]
    assert torch.allclose(x[:, col["weight_share"]].sum(), torch.tensor(1.0))
    assert torch.allclose(x[:, col["mac_share"]].sum(), torch.tensor(1.0))
    strided = [i for i in convs if cg.nodes[i].stride == (2, 2)]
    assert x[strided, col["log_stride"]].tolist() == [1.0]
    assert x[strided, col["log_spatial_change"]].tolist() == [1.0]
    assert x[convs, col["group_width"]].min() > 0.99  # dense convs
    assert x[:, col["downsample_level"]].max() == 1.0
    assert x[0, col["position"]] == 0 and x[-1, col["position"]] == 1


def test_pack_collates_what_featurize_computes():
    cgs = [toy_cg(["conv3"]), toy_cg(["pool", "conv1"], stem=8)]
    pack = GraphPack.from_items(cgs)
    x, ei, batch = pack.batch([1, 0])
    expected = torch.cat([featurize(cgs[1].to_pyg()), featurize(cgs[0].to_pyg())])
    assert torch.allclose(x, expected, atol=2e-3)  # float16 storage of numeric columns
    assert ei.shape[1] == cgs[0].num_edges + cgs[1].num_edges
    assert batch.bincount().tolist() == [cgs[1].num_nodes, cgs[0].num_nodes]
    assert int(ei.max()) < x.shape[0]
    sub = pack.subset([1])
    assert torch.equal(sub.batch([0])[0], pack.batch([1])[0])


@pytest.mark.parametrize("conv", list(CONVS))
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_encoder_shapes_for_every_conv_and_direction(conv, direction):
    pack = GraphPack.from_items([toy_cg(["conv3"]), toy_cg(["pool"])])
    enc = CGEncoder(NUM_FEATURES, hidden_channels=8, out_channels=5, num_layers=2, conv=conv, direction=direction)
    out = enc(*pack.batch([0, 1]))
    assert out.shape == (2, 5)
    out.sum().backward()
    assert all(p.grad is not None for p in enc.parameters() if p.requires_grad)


@pytest.mark.parametrize("readout", READOUTS)
def test_every_readout(readout):
    data = to_data(toy_cg(["conv3"]))
    enc = CGEncoder(NUM_FEATURES, hidden_channels=8, out_channels=4, num_layers=1, readout=readout)
    assert enc(data.x, data.edge_index).shape == (1, 4)


@pytest.mark.parametrize("kind,kwargs", [("convolution", {"conv": "bogus"}), ("direction", {"direction": "up"}),
                                         ("readout", {"readout": "median"})])
def test_bad_option_names_list_valid_choices(kind, kwargs):
    with pytest.raises(ValueError, match=f"unknown {kind}.*valid choices"):
        CGEncoder(NUM_FEATURES, **kwargs)


def test_direction_matters_and_reset_parameters_restores():
    data = to_data(toy_cg(["conv3", "pool"]))
    torch.manual_seed(0)
    fwd = CGEncoder(NUM_FEATURES, hidden_channels=8, out_channels=4, num_layers=2, direction="forward")
    torch.manual_seed(0)
    bwd = CGEncoder(NUM_FEATURES, hidden_channels=8, out_channels=4, num_layers=2, direction="backward")
    assert not torch.allclose(fwd(data.x, data.edge_index), bwd(data.x, data.edge_index))
    torch.manual_seed(1)
    fwd.reset_parameters()
    first = fwd(data.x, data.edge_index)
    torch.manual_seed(1)
    fwd.reset_parameters()
    assert torch.equal(first, fwd(data.x, data.edge_index))
