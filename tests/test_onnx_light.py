"""The nine weightless model-zoo models the onnx package ships convert, and
their parameter counts and MACs agree with independent counts and published
figures."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

from gennape.cg.onnx_import import from_onnx

LIGHT = ("bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50",
         "shufflenet", "squeezenet", "vgg19", "zfnet512")

#: Published parameter counts for models whose file holds exactly the published
#: layers (torchvision model docs for resnet50 / vgg19 / squeezenet1_1; the Caffe
#: model zoo's bvlc_alexnet, with grouped convs, for alexnet).
PUBLISHED_PARAMS = {
    "resnet50": 25_557_032,
    "vgg19": 143_667_240,
    "squeezenet": 1_235_496,  # SqueezeNet 1.1
    "bvlc_alexnet": 60_965_224,
}
#: torchvision's DenseNet-121 (7,978,856) has one affine per BN; the caffe2 file
#: keeps each BN's own scale/shift (placeholders) AND a separate Scale layer
#: (Mul + Add), so it holds 2C more per BN; checked below.
DENSENET121_PUBLISHED = 7_978_856

#: Published GMACs (torchvision model docs, "GFLOPS" column, which counts
#: multiply-adds). The caffe2 ResNet-50 here strides in the 3x3 conv (like
#: torchvision's v1.5), hence 4.09 and not v1's 3.86.
PUBLISHED_GMACS = {"resnet50": 4.09, "vgg19": 19.63, "densenet121": 2.83, "squeezenet": 0.35}


def _load(light_dir, name):
    return light_dir / f"light_{name}.onnx"


def weight_sizes(model: onnx.ModelProto) -> dict[str, int]:
    """Element count of every float weight tensor: initializers, and
    ConstantOfShape outputs sized from their int64 shape initializer."""
    g = model.graph
    ints = {i.name: numpy_helper.to_array(i) for i in g.initializer if i.data_type == TensorProto.INT64}
    sizes = {i.name: int(np.prod(i.dims)) for i in g.initializer if i.data_type == TensorProto.FLOAT}
    for n in g.node:
        if n.op_type == "ConstantOfShape":
            sizes[n.output[0]] = int(np.prod(ints[n.input[0]]))
    return sizes


def implied_params(model: onnx.ModelProto) -> int:
    """Independent count: every non-scalar weight except batch-norm running statistics."""
    stats = {t for n in model.graph.node if n.op_type == "BatchNormalization" for t in n.input[3:5]}
    return sum(s for name, s in weight_sizes(model).items() if name not in stats and s > 1)


@pytest.fixture(scope="module")
def cgs(light_dir):
    return {name: from_onnx(_load(light_dir, name)) for name in LIGHT}


@pytest.mark.parametrize("name", LIGHT)
def test_light_model_converts(cgs, light_dir, name):
    cg = cgs[name]
    assert cg.input_shape == (3, 224, 224)
    assert cg.op_counts()["input"] == 1 and cg.op_counts()["output"] == 1
    assert "other" not in cg.op_counts()
    cg.validate()
    model = onnx.load(_load(light_dir, name))
    assert cg.params == implied_params(model)


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_published_params(cgs, name):
    assert cgs[name].params == PUBLISHED_PARAMS[name]


def test_densenet_params_differ_from_published_by_scale_layers(cgs, light_dir):
    model = onnx.load(_load(light_dir, "densenet121"))
    sizes = weight_sizes(model)
    # Each caffe2 BN's own scale and shift: the vectors the Scale layer duplicates.
    bn_affine = sum(sizes[n.input[1]] + sizes[n.input[2]]
                    for n in model.graph.node if n.op_type == "BatchNormalization")
    assert cgs["densenet121"].params == DENSENET121_PUBLISHED + bn_affine


@pytest.mark.parametrize("name", sorted(PUBLISHED_GMACS))
def test_published_macs(cgs, name):
    assert cgs[name].macs / 1e9 == pytest.approx(PUBLISHED_GMACS[name], rel=0.02)


def test_canonical_forms(cgs):
    # Caffe2's 7x7 AveragePool on a 7x7 map is a global pool; Reshape before Gemm vanishes.
    resnet = cgs["resnet50"].op_counts()
    assert resnet["global_avg_pool"] == 1 and "avg_pool" not in resnet and "reshape" not in resnet
    assert resnet["add"] == 16 and resnet["conv"] == 53 and "batch_norm" not in resnet
    # ShuffleNet's Reshape -> Transpose -> Reshape channel shuffles: one node each.
    assert cgs["shufflenet"].op_counts()["reshape"] == 16
    # DenseNet: BN after a concat stays; BN after a conv merges.
    dn = cgs["densenet121"].op_counts()
    assert dn["batch_norm"] == 62 and dn["conv"] == 121


@pytest.mark.parametrize("opset", [10, 11, 13, 18, 21])
@pytest.mark.parametrize("name", ["resnet50", "shufflenet", "inception_v1"])
def test_same_cg_across_opsets(cgs, light_dir, name, opset):
    """The model rewritten by onnx's version converter (attributes become inputs:
    Pad pads, Squeeze axes, Clip bounds, ReduceMean axes...) gives the same CG."""
    from onnx import version_converter

    converted = version_converter.convert_version(onnx.load(_load(light_dir, name)), opset)
    assert from_onnx(converted) == cgs[name]
