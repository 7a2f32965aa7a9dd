"""The leave-one-family-out benchmark's pure parts (benchmarks/lofo.py): the
nested choice never looks at the family it scores, and one fold model gives
every size measure's rows, the recipe's through the model's own forward."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from gennape.pretrain.estimator import as_pack
from gennape.pretrain.multifamily import pretrain_families
from gennape.pretrain.run_families import RECIPE
from gennape.pretrain.size_measure import SIZE_MEASURES, pack_size
from tests.test_multifamily import TINY, _sample

_spec = importlib.util.spec_from_file_location("_bench_lofo", Path(__file__).resolve().parent.parent / "benchmarks" / "lofo.py")
lofo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lofo)


def test_nested_choice_takes_the_best_row_of_the_other_families():
    table = {"a": {"x": 0.9, "y": 0.1}, "b": {"x": 0.5, "y": 0.6}, "c": {"x": 0.5, "y": 0.6}}
    nested = lofo.nested_choice(table, ["x", "y"])
    assert nested["a"] == ("y", 0.1)  # b and c prefer y, whatever a says
    assert nested["b"] == ("x", 0.5)  # a and c: x 0.7 > y 0.35
    assert nested["c"] == ("x", 0.5)


def test_recipe_row_names_the_recipe():
    m = RECIPE["size_measure"]
    assert lofo.recipe_row({**RECIPE, "head_trust": "ood", "head_shrink": 1.0}) == f"out-of-family fit + OOD trust: {m}"
    assert lofo.recipe_row({**RECIPE, "head_trust": "constant", "head_shrink": 1.0}) == f"out-of-family fit: {m}"
    assert lofo.recipe_row({**RECIPE, "head_trust": "constant", "head_shrink": 0.25}) == f"heads x0.25: {m}"


def test_fold_rows_cover_every_size_measure_and_leave_the_recipe_model():
    others = [_sample("nb201", 12, 0), _sample("nb301", 10, 1)]
    est = pretrain_families(others, size_term_fit="none", **{**RECIPE, **TINY})
    pack = as_pack(_sample("tnb101_micro", 10, 2).cgs)
    rows = lofo.fold_rows(est, others, pack)
    for m in SIZE_MEASURES:
        for prefix in ("size: ", "in-sample fit: ", "out-of-family fit: ", "out-of-family fit + OOD trust: ",
                       "out-of-family fit + head clip: ", "heads x0.5: ", "heads x0.1 + OOD trust: "):
            assert np.isfinite(rows[prefix + m]).all()
        np.testing.assert_array_equal(rows["size: " + m], pack_size(pack, m))
    assert (est.size_measure, est.model_.head_trust) == (RECIPE["size_measure"], RECIPE["head_trust"])
    assert set(rows) >= {lofo.variant_row(m, t, s) for m in SIZE_MEASURES for t in ("constant", "ood")
                         for s in lofo.HEAD_SHRINKS}
    np.testing.assert_allclose(est.predict_score(pack), rows[lofo.recipe_row(RECIPE)])


def test_recipe_overrides_read_json_values_and_name_the_valid_parameters():
    assert lofo.recipe_overrides(["supervised_weight=1.0", "readout=sum", "num_layers=5"]) == {
        "supervised_weight": 1.0, "readout": "sum", "num_layers": 5}
    for bad in ("no_such_parameter=1", "supervised_weight", "seed=3", "epochs=5"):
        with pytest.raises(ValueError, match="supervised_weight"):  # the message lists the valid names
            lofo.recipe_overrides([bad])


def test_a_scored_only_family_is_read_from_its_labels_and_a_bad_file_is_left_out(tmp_path, monkeypatch, capsys):
    import argparse
    import shutil

    monkeypatch.syspath_prepend(str(Path(lofo.__file__).parent))  # lofo imports zoo_ranking as the benchmarks do
    monkeypatch.setattr(lofo, "_DATA", {})
    examples = Path(__file__).resolve().parent.parent / "examples" / "onnx"
    corpus = tmp_path / "zoo"
    corpus.mkdir()
    for name in ("nb201_conv3x3.onnx", "ofa_mbv3_max.onnx"):
        shutil.copy(examples / name, corpus / name)
    (corpus / "broken.onnx").write_bytes(b"not a model")
    (corpus / "labels.csv").write_text("onnx,accuracy\nnb201_conv3x3.onnx,93.5\nbroken.onnx,80.0\nofa_mbv3_max.onnx,79.1\n")
    scored = lofo._scored(argparse.Namespace(lofo_labels=[str(corpus / "labels.csv")]))
    assert list(scored) == ["zoo"]
    zoo = scored["zoo"]
    assert [Path(k).name for k in zoo.keys] == ["nb201_conv3x3.onnx", "ofa_mbv3_max.onnx"]
    np.testing.assert_allclose(zoo.accuracy, [0.935, 0.791])
    np.testing.assert_array_equal(zoo.params, [c.params for c in zoo.cgs])
    assert "broken.onnx" in capsys.readouterr().err


def test_a_scored_only_family_column_is_the_mean_over_every_fold_model():
    from gennape.pretrain.metrics import spearman
    from gennape.pretrain.multifamily import FamilySample

    rng = np.random.default_rng(0)
    y = rng.random(8)
    sample = FamilySample("zoo", [str(i) for i in range(8)], [None] * 8, y, rng.random(8), rng.random(8))
    # two folds (held-out families) x two seeds, each scoring the eight networks
    scores = [[{"r": rng.random(8)} for _ in range(2)] for _ in range(2)]
    folds = [[{"rows": {"r": spearman(s["r"], y)}, "scores": s} for s in fold] for fold in scores]
    res = lofo.scored_family_result(sample, folds)
    every = [spearman(s["r"], y) for fold in scores for s in fold]
    assert res["rows"]["r"] == pytest.approx(np.mean(every))
    assert res["ensemble_rows"]["r"] == pytest.approx(np.mean([spearman((a["r"] + b["r"]) / 2, y) for a, b in scores]))
    assert (res["params"], res["flops"]) == (spearman(sample.params, y), spearman(sample.macs, y))
    assert res["trained_on"] == lofo.SCORED_ONLY and res["k_shot_mean"] is None
