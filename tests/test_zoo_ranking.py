"""The torchvision zero-shot check's pure parts: the labels the export half
writes (read back by gennape's LABELS.csv reader) and the size baselines of the
ranking script. Neither needs torchvision: the export itself runs in its own
virtual environment (benchmarks/zoo_coverage.py)."""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from gennape.transfer.labels import read_labels
from tests._synthetic import toy_cg

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


zoo_coverage = _load("zoo_coverage")
zoo_ranking = _load("zoo_ranking")

MANIFEST = [
    {"name": "alexnet", "status": "exported", "file": "alexnet.onnx", "imagenet_acc1": 56.522},
    {"name": "resnet50", "status": "exported", "file": "resnet50.onnx", "imagenet_acc1": 80.858},
    {"name": "no_weights", "status": "exported", "file": "no_weights.onnx", "imagenet_acc1": None},
    {"name": "unlabelled", "status": "exported", "file": "unlabelled.onnx"},
    {"name": "vit_h_14", "status": "skipped: too large", "imagenet_acc1": 88.552},
    {"name": "broken", "status": "not exportable", "imagenet_acc1": 70.0},
]


def test_labels_rows_keep_exported_models_with_a_published_accuracy_in_order():
    assert zoo_coverage.labels_rows(MANIFEST) == [("alexnet.onnx", 56.522), ("resnet50.onnx", 80.858)]


def test_labels_csv_reads_back_as_percent_relative_to_its_folder(tmp_path):
    path = tmp_path / "labels.csv"
    zoo_coverage.write_labels_csv(path, zoo_coverage.labels_rows(MANIFEST))
    assert path.read_text().splitlines()[0] == "onnx,accuracy"
    labels = read_labels(path)
    assert labels.scale == "percent"
    assert labels.paths == [tmp_path / "alexnet.onnx", tmp_path / "resnet50.onnx"]
    assert labels.accuracies == pytest.approx([0.56522, 0.80858])
    assert not list(tmp_path.glob("*.tmp"))


def test_baseline_scores_are_the_cgs_params_macs_and_the_weights_macs_size():
    cgs = [toy_cg(["conv3"], stem=8), toy_cg(["conv3", "conv1"], stem=16), toy_cg(["pool"], stem=4)]
    scores = zoo_ranking.baseline_scores(cgs)
    assert set(scores) == set(zoo_ranking.BASELINES)
    assert scores["params"] == [float(c.params) for c in cgs]
    assert scores["flops"] == [float(c.macs) for c in cgs]
    for cg, size in zip(cgs, scores["size"]):
        weights = sum(math.prod(n.weight_shape) for n in cg.nodes if n.weight_shape)
        assert size == pytest.approx(0.5 * math.log1p(weights) + 0.5 * math.log1p(cg.macs))


def test_correlations_count_and_rank():
    out = zoo_ranking.correlations(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.1, 0.3, 0.2, 0.4]))
    assert out["n"] == 4
    assert out["spearman"] == pytest.approx(0.8)
    assert out["kendall"] == pytest.approx(4 / 6)


def test_eval_size_corpus_copies_only_an_export_at_the_same_input_shape(tmp_path):
    (tmp_path / "torchvision").mkdir()
    (tmp_path / "torchvision" / "resnet50.onnx").write_bytes(b"onnx bytes")
    (tmp_path / "torchvision" / "manifest.json").write_text(
        '{"models": [{"name": "resnet50", "status": "exported", "file": "resnet50.onnx", "input_shape": [1, 3, 224, 224]},'
        ' {"name": "vit_h_14", "status": "skipped: too large", "input_shape": [1, 3, 224, 224]}]}')
    reusable = zoo_coverage._reusable_exports(tmp_path, "torchvision_eval")
    assert set(reusable) == {"resnet50"}
    assert zoo_coverage._reusable_exports(tmp_path, "torchvision") == {}
    out = tmp_path / "torchvision_eval" / "resnet50.onnx"
    assert not zoo_coverage._reuse(reusable["resnet50"], {"name": "resnet50", "size": 232}, out)
    assert not out.exists()
    assert zoo_coverage._reuse(reusable["resnet50"], {"name": "resnet50", "size": 224}, out)
    assert out.read_bytes() == b"onnx bytes"
    assert not zoo_coverage._reuse(None, {"name": "vit_h_14", "size": 518}, tmp_path / "torchvision_eval" / "x.onnx")


def _converted(name, cg):
    return {"name": name, "status": "converted", "cg_nodes": cg.num_nodes, "structure": cg.fingerprint(with_params=False),
            "params": cg.params, "macs": cg.macs, "op_counts": cg.op_counts()}


def test_fingerprint_without_params_ignores_folded_bn_parameters_but_not_structure():
    folded, unfolded = toy_cg(["conv3"], bn=False), toy_cg(["conv3"], bn=True)  # params differ, nodes do not
    assert folded.params != unfolded.params
    assert folded.fingerprint(with_params=False) == unfolded.fingerprint(with_params=False)
    assert folded.fingerprint() != unfolded.fingerprint()
    assert folded.fingerprint(with_params=False) != toy_cg(["conv3", "pool"], bn=False).fingerprint(with_params=False)


def test_compare_exports_counts_same_graphs_and_names_what_differs():
    a, b = toy_cg(["conv3"]), toy_cg(["conv3", "pool"])
    legacy = [_converted("same", a), _converted("other", a), _converted("only_legacy", a),
              {"name": "failed_legacy", "status": "failed"}]
    dynamo = [_converted("same", a), _converted("other", b), _converted("failed_legacy", a),
              {"name": "only_legacy", "status": "failed"}]
    cmp = zoo_coverage.compare_exports(dynamo, legacy)
    assert cmp["both_converted"] == 2 and cmp["same_structure"] == 1
    assert set(cmp["differ"]) == {"other"}
    delta = cmp["differ"]["other"]["op_delta"]
    assert delta and all(k != 0 for k in delta.values())
    assert cmp["differ"]["other"]["cg_nodes"] == [a.num_nodes, b.num_nodes]


def test_dynamo_exports_have_their_own_folder_and_reuse_only_their_own_exporter(tmp_path):
    assert zoo_coverage.corpus_dir(tmp_path, "timm") == tmp_path / "timm"
    assert zoo_coverage.corpus_dir(tmp_path, "timm", "dynamo") == tmp_path / "timm-dynamo"
    (tmp_path / "torchvision").mkdir()
    (tmp_path / "torchvision" / "manifest.json").write_text(
        '{"models": [{"name": "resnet50", "status": "exported", "file": "resnet50.onnx"}]}')
    assert zoo_coverage._reusable_exports(tmp_path, "torchvision_eval", "dynamo") == {}
    assert set(zoo_coverage._reusable_exports(tmp_path, "torchvision_eval")) == {"resnet50"}


def test_an_older_opset_is_a_legacy_variant_with_its_own_folder(tmp_path):
    assert zoo_coverage.export_variant("legacy", 17) == "legacy"
    assert zoo_coverage.export_variant("dynamo", 17) == "dynamo"
    assert zoo_coverage.export_variant("legacy", 9) == "opset9"
    assert zoo_coverage.corpus_dir(tmp_path, "timm", "opset9") == tmp_path / "timm-opset9"
    assert [zoo_coverage.legacy_opset(v) for v in ("legacy", "opset9", "opset13")] == [17, 9, 13]
    with pytest.raises(SystemExit, match="only the legacy exporter"):
        zoo_coverage.export_variant("dynamo", 11)
