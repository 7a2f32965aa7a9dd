"""The distilled student: it fits its teacher, keeps the size term exact, round-trips
through a checkpoint, is batch-invariant, and is what search and predict --fast use."""

import copy
import json
import shutil

import numpy as np
import pytest
import torch

from conftest import LIGHT_MODELS
from gennape.cg.errors import GennapeError
from gennape.cg.families import get_family
from gennape.pretrain.base import EstimatorBase
from gennape.pretrain.distill import distill, size_slope, teacher_targets
from gennape.pretrain.metrics import spearman
from gennape.pretrain.packed import GraphPack
from gennape.pretrain.student import GennapeStudent
from gennape.transfer.distill import choose_predictor, load_student, random_family_specs, student_problem
from gennape.transfer.model import default_checkpoint, load_estimator

pytestmark = pytest.mark.skipif(not (default_checkpoint() / "config.json").is_file(), reason="no shipped checkpoint")


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    """A copy of the shipped teacher without its student (tests add their own)."""
    d = tmp_path_factory.mktemp("teacher") / "ckpt"
    shutil.copytree(default_checkpoint(), d, ignore=shutil.ignore_patterns("student"))
    return d


@pytest.fixture(scope="module")
def teacher(teacher_dir):
    return load_estimator(teacher_dir)


@pytest.fixture(scope="module")
def pack():
    nb201, micro = get_family("nb201"), get_family("tnb101_micro")
    cgs = [nb201.to_cg(s) for s in nb201.random_specs(160, seed=1)]
    cgs += [micro.to_cg(s) for s in micro.random_specs(40, seed=1)]
    return GraphPack.from_items(cgs)


@pytest.fixture(scope="module")
def targets(teacher, pack):
    return teacher_targets(teacher, pack)


@pytest.fixture(scope="module")
def student(teacher, pack, targets):
    return distill(teacher, pack, hidden=16, epochs=25, targets=targets, seed=0)


def test_size_slope_is_the_members_mean(teacher):
    assert size_slope(teacher) == pytest.approx(np.mean([m.capacity_[1] for m in teacher.members_]), abs=0)
    assert size_slope(teacher.members_[2]) == teacher.members_[2].capacity_[1]
    assert size_slope(object()) == 0.0


def test_distilled_student_ranks_like_its_teacher(student, pack, targets):
    score = student.predict_score(pack)
    assert spearman(score, targets["score"]) > 0.9  # on its own training graphs
    info = student.distill_info_
    assert info["n_graphs"] == len(pack) and info["n_val"] == 20
    assert info["train_loss"][-1] < info["train_loss"][0]
    assert student.outputs_ == ("score", "ood_score", "accuracy_std")  # an ensemble teacher has a spread


def test_one_estimator_teacher_gives_a_student_without_a_spread(teacher, pack):
    """Teacher-agnostic: a single estimator (no members, no spread) distils too."""
    one = teacher.members_[-1]
    student = GennapeStudent(hidden=8, epochs=3, seed=1).fit(pack, one)
    assert student.outputs_ == ("score", "ood_score") and student.size_slope_ == one.capacity_[1]
    details = student.predict_details(pack)
    assert np.isnan(details["accuracy_std"]).all() and details["memberships"].shape == (len(pack), 0)
    assert student.ood_threshold_ == one.ood_threshold_
    assert student.get_params()["epochs"] == 3 and repr(student) == "GennapeStudent(hidden=8, epochs=3, seed=1)"


def test_size_term_is_exact_not_learned(student, pack):
    """Changing only the sizes moves the score by exactly slope * change, whichever
    size measure the teacher reads (every measure is a mix of columns with weights summing to one)."""
    attrs = pack.graph_attr + 2.0
    moved = GraphPack(pack.op, pack.num, pack.edges, pack.node_ptr, pack.edge_ptr, attrs)
    diff = student.predict_score(moved) - student.predict_score(pack)
    np.testing.assert_allclose(diff, 2.0 * student.size_slope_, rtol=1e-12)
    assert student.size_slope_ != 0


def test_student_round_trips_through_a_checkpoint(student, pack, tmp_path):
    student.save(tmp_path / "s")
    config = json.loads((tmp_path / "s" / "config.json").read_text())
    assert config["estimator"] == "GennapeStudent"
    assert torch.load(tmp_path / "s" / "model.pt", weights_only=True)  # tensors only
    again = EstimatorBase.load(tmp_path / "s")
    a, b = student.predict_details(pack), again.predict_details(pack)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert again.label() == student.label() and again.size_slope_ == student.size_slope_


def _bytes(details, order):
    return {k: np.ascontiguousarray(np.take(np.asarray(v), order, axis=0)).tobytes() for k, v in details.items()}


def test_student_is_batch_invariant(student, pack, light_dir):
    """A network's outputs are the same bits alone, among others and in another order."""
    from gennape.cg import from_onnx

    light = GraphPack.from_items([from_onnx(light_dir / f"light_{name}.onnx") for name in LIGHT_MODELS])
    for p in (light, pack):
        n = len(p)
        together = student.predict_details(p)
        assert _bytes(student.predict_details(p.subset(np.arange(n)[::-1])), np.arange(n)[::-1]) == \
            _bytes(together, np.arange(n))
        for i in (0, n // 2, n - 1):
            assert _bytes(student.predict_details(p.subset([i])), [0]) == _bytes(together, [i])
            trio = [(i + 1) % n, i, (i + 7) % n]
            assert _bytes(student.predict_details(p.subset(trio)), [1]) == _bytes(together, [i])


def test_student_of_another_teacher_is_not_used(student, teacher_dir, tmp_path):
    assert load_student(teacher_dir) is None and "no distilled student" in student_problem(teacher_dir)
    with pytest.raises(GennapeError, match="gennape distill"):
        choose_predictor(teacher_dir, "student")
    assert choose_predictor(teacher_dir, "auto")[1] == "teacher"
    other = tmp_path / "ckpt"
    shutil.copytree(teacher_dir, other)
    stale = copy.copy(student)
    stale.teacher_ = {**student.teacher_, "model_sha256": "0" * 64}
    stale.save(other / "student")
    assert load_student(other) is None and "another teacher" in student_problem(other)


def test_random_specs_of_families_without_a_sampler():
    specs = random_family_specs("ofa_mbv3", 5, seed=3)
    assert len({s.to_arch() for s in specs}) == 5 and specs == random_family_specs("ofa_mbv3", 5, seed=3)


def test_distill_cli_then_search_and_predict_fast_use_the_student(teacher_dir, tmp_path, capsys, monkeypatch):
    from gennape.cli import main

    monkeypatch.setenv("GENNAPE_DATA", str(tmp_path / "nowhere"))  # needs no benchmark data
    ckpt = tmp_path / "ckpt"
    shutil.copytree(teacher_dir, ckpt)
    assert main(["predict", "examples/onnx", "--checkpoint", str(ckpt), "--fast", "-q"]) == 2
    assert "no distilled student" in capsys.readouterr().err
    assert main(["search", "--family", "nb201", "--checkpoint", str(ckpt), "--queries", "8", "--top", "1",
                 "--out", str(tmp_path / "before")]) == 0
    assert "no distilled student" in capsys.readouterr().err  # auto says it fell back to the teacher
    assert main(["distill", "--checkpoint", str(ckpt), "--per-family", "15", "--families", "nb201,tnb101_micro",
                 "--epochs", "3"]) == 0
    assert "held-out" in capsys.readouterr().out
    student = load_student(ckpt)
    assert student is not None and student.distill_info_["families"] == {"nb201": 15, "tnb101_micro": 15}

    runs = {}
    for predictor in ("auto", "teacher"):
        out = tmp_path / predictor
        assert main(["search", "--family", "nb201", "--checkpoint", str(ckpt), "--queries", "24",
                     "--predictor", predictor, "--top", "1", "--out", str(out)]) == 0
        runs[predictor] = json.loads((out / "search.json").read_text())
    assert runs["auto"]["predictor"] == "student" and runs["teacher"]["predictor"] == "teacher"
    assert "predicted by the student" in capsys.readouterr().out
    best = get_family("nb201").parse(runs["auto"]["best"]["arch"])
    assert runs["auto"]["best"]["score"] == float(student.predict_score([get_family("nb201").to_cg(best)])[0])

    out = tmp_path / "fast.json"
    assert main(["predict", "examples/onnx", "--checkpoint", str(ckpt), "--fast", "-q", "-o", str(out)]) in (0, 1)
    assert json.loads(out.read_text())["predictions"]


def test_a_shipped_student_is_of_the_shipped_teacher():
    """A stale student would be ignored silently (search back at the ensemble's speed)."""
    if not (default_checkpoint() / "student" / "config.json").is_file():
        pytest.skip("the shipped checkpoint has no student")
    assert load_student() is not None, f"{student_problem()} (re-run: gennape distill)"


@pytest.mark.parametrize("argv, message", [
    (["distill", "--families", "bogus"], "--families: unknown bogus; valid: nb101"),
    (["distill", "--epochs", "0"], "--epochs must be at least 1"),
    (["search", "--family", "nb201", "--members", "2", "--predictor", "student", "--out", "x"], "cannot go with"),
])
def test_bad_distill_and_predictor_options_are_one_line_errors(argv, message, capsys):
    from gennape.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
