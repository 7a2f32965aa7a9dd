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
