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



def test_size_fit_is_least_squares_on_log_params_and_log_macs_of_the_labelled_rows_only():
    rng = np.random.default_rng(0)
    params, macs = rng.uniform(1e5, 1e8, 40), rng.uniform(1e7, 1e10, 40)
    y = 0.3 * np.log1p(params) - 0.1 * np.log1p(macs) + 2.0
    used = np.arange(10)
    noisy = y.copy()
    noisy[10:] += rng.normal(0, 5, 30)  # the unlabelled rows' accuracies must not enter the fit
    assert zoo_ranking.size_fit(params, macs, noisy, used) == pytest.approx(y)


def test_kshot_baselines_score_each_draws_left_out_networks():
    from gennape.transfer.finetune import choose_samples

    rng = np.random.default_rng(1)
    params, macs = rng.uniform(1, 100, 30), rng.uniform(1, 100, 30)
    y = np.log1p(macs) + 0.01 * rng.normal(size=30)
    out = zoo_ranking.kshot_baselines(params, macs, y, samples=10, seeds=3)
    assert set(out) == {"params", "flops", "size fit"} and all(len(v) == 3 for v in out.values())
    from gennape.pretrain.metrics import spearman

    for seed in range(3):
        rest = np.setdiff1d(np.arange(30), choose_samples(30, 10, seed))
        assert out["params"][seed] == pytest.approx(spearman(params[rest], y[rest]))
        assert out["flops"][seed] == pytest.approx(spearman(macs[rest], y[rest]))
    assert min(out["size fit"]) > 0.9  # the fit finds that MACs, not #params, carry y


def test_kshot_select_is_gennape_finetune_on_each_draw_scored_on_the_rest():
    from gennape.pretrain.metrics import spearman
    from gennape.transfer.finetune import FinetuneConfig, choose_samples, finetune_estimator
    from gennape.transfer.model import load_estimator
    from tests._synthetic import toy_dataset

    est = load_estimator()
    cgs, y = toy_dataset(24, seed=3)
    out = zoo_ranking.kshot_select(est, cgs, y, samples=12, seeds=2)
    assert len(out) == 2 and all(np.isfinite(out))
    used = choose_samples(24, 12, 1)
    rest = [i for i in range(24) if i not in set(used)]
    tuned = finetune_estimator(est, [cgs[i] for i in used], y[used], FinetuneConfig(seed=1))
    assert out[1] == pytest.approx(spearman(tuned.predict([cgs[i] for i in rest]), y[rest]))

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



@pytest.mark.parametrize("tag, expected", [
    ("a1_in1k", True), ("tv_in1k", True), ("ra4_e3600_r224_in1k", True), ("fcmae_ft_in1k", True),
    ("sail_in1k_384", True), ("fb_in22k_ft_in1k", False), ("sw_in12k_ft_in1k", False),
    ("augreg_in21k_ft_in1k", False), ("ns_jft_in1k", False), ("fb_swsl_ig1b_ft_in1k", False),
    ("clip_laion2b_augreg_ft_in1k", False), ("openai_ft_in1k", False), ("swag_ft_in1k", False),
    ("in22k", False), ("lvd142m", False),
])
def test_in1k_only_accepts_imagenet_1k_weights_alone(tag, expected):
    assert zoo_coverage.in1k_only(tag) is expected


def test_timm_eval_takes_each_convolutional_architectures_default_in1k_tag_at_its_results_size(tmp_path):
    results = tmp_path / "results-imagenet.csv"
    results.write_text("model,top1,top1_err,top5,top5_err,param_count,img_size,crop_pct,interpolation\n"
                       "resnet50.a1_in1k,81.2,18.8,95.1,4.9,25.56,288,1.0,bicubic\n"
                       "resnet50.tv_in1k,76.1,23.9,92.9,7.1,25.56,224,0.875,bilinear\n"
                       "convnext_tiny.fb_in22k_ft_in1k,82.9,17.1,96.6,3.4,28.59,288,1.0,bicubic\n"
                       "deit_small_patch16_224.fb_in1k,79.9,20.1,95.0,5.0,22.05,224,0.875,bicubic\n")
    rows = zoo_coverage.read_timm_results(results)
    default_tags = {"resnet50": "resnet50.a1_in1k", "resnet18": "resnet18.a1_in1k",
                    "convnext_tiny": "convnext_tiny.fb_in22k_ft_in1k", "deit_small_patch16_224": "deit_small_patch16_224.fb_in1k"}
    modules = {"resnet50": "resnet", "resnet18": "resnet", "convnext_tiny": "convnext", "deit_small_patch16_224": "deit"}
    specs = zoo_coverage.timm_eval_specs(default_tags, modules, rows)
    # resnet18: no results row; convnext_tiny: extra data; deit: an attention module; never another tag's row
    assert specs == [{"name": "resnet50", "module": "resnet", "size": 288, "imagenet_acc1": 81.2,
                      "imagenet_weights": "resnet50.a1_in1k"}]
    (tmp_path / "other.csv").write_text("name,acc\nx,1\n")
    with pytest.raises(SystemExit, match="no column img_size, model, top1"):
        zoo_coverage.read_timm_results(tmp_path / "other.csv")


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
