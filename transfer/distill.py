"""Distilling a checkpoint: the unlabelled graphs, and where the student is kept.

A checkpoint folder ``DIR`` may hold a distilled student in ``DIR/student/``
(itself a checkpoint folder: ``model.pt`` + ``config.json``, estimator
``GennapeStudent``, :mod:`gennape.pretrain.student`). The student records the
SHA-256 of the teacher's ``DIR/model.pt``; :func:`load_student` uses it only
while that still matches, so replacing or fine-tuning the teacher never
leaves a student of another teacher in use.

:func:`distill_cgs` draws the unlabelled graphs: ``per_family`` random specs
of every registered family (the family's own sampler, or its search space's
for NB-101 and OFA-MobileNetV3, which have none), built with
``family.to_cg``. No labels are read, so distillation needs no benchmark data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gennape.cg.errors import GennapeError

#: The student's folder inside a checkpoint folder.
STUDENT_DIR = "student"
#: ``teacher`` key holding the teacher's model.pt SHA-256.
TEACHER_HASH = "model_sha256"


def random_family_specs(name: str, n: int, seed: int = 0) -> list:
    """``n`` distinct random specs of family ``name`` (fewer if its space is smaller)."""
    from gennape.cg.families import get_family

    family = get_family(name)
    try:
        return family.random_specs(n, seed)
    except NotImplementedError:
        pass
    from gennape.transfer.search.space import get_space

    space = get_space(name)  # ValueError (listing the valid names) if there is no sampler at all
    rng = np.random.default_rng(seed)
    found: dict[str, object] = {}
    for _ in range(100 * n):
        spec = space.decode(space.sample(rng))
        found.setdefault(space.key(spec), spec)
        if len(found) == n:
            break
    return list(found.values())


def distill_cgs(per_family: int = 3000, seed: int = 0, families=None):
    """``(family name, CG)`` of ``per_family`` random networks of each of
    ``families`` (default every registered family), built one at a time (so
    :meth:`gennape.pretrain.packed.GraphPack.from_items` can pack them as they come)."""
    from gennape.cg.families import family_names, get_family

    for name in (tuple(families) if families is not None else family_names()):
        family = get_family(name)
        for spec in random_family_specs(name, per_family, seed):
            yield name, family.to_cg(spec)


def student_dir(checkpoint: str | Path) -> Path:
    return Path(checkpoint) / STUDENT_DIR


def teacher_hash(checkpoint: str | Path) -> str:
    from gennape.pretrain.checkpoint import MODEL_FILE, sha256_file

    return sha256_file(Path(checkpoint) / MODEL_FILE)


def load_student(checkpoint: str | Path | None = None):
    """The :class:`gennape.pretrain.student.GennapeStudent` of ``checkpoint``
    (default: the shipped one), or None when it has none or its student was
    distilled from another teacher (:func:`student_problem` says which)."""
    student, _ = _student_or_reason(checkpoint)
    return student


def student_problem(checkpoint: str | Path | None = None) -> str | None:
    """Why ``checkpoint`` has no usable student (None when it has one)."""
    return _student_or_reason(checkpoint)[1]


def _student_or_reason(checkpoint):
    from gennape.pretrain.base import EstimatorBase
    from gennape.pretrain.student import GennapeStudent
    from gennape.transfer.model import default_checkpoint

    checkpoint = Path(checkpoint) if checkpoint is not None else default_checkpoint()
    folder = student_dir(checkpoint)
    if not (folder / "config.json").is_file():
        return None, f"{checkpoint} has no distilled student (run gennape distill --checkpoint {checkpoint})"
    student = EstimatorBase.load(folder)
    if not isinstance(student, GennapeStudent):
        raise GennapeError(f"{folder}: not a GennapeStudent checkpoint")
    if student.teacher_.get(TEACHER_HASH) != teacher_hash(checkpoint):
        return None, (f"{folder} was distilled from another teacher than {checkpoint}/model.pt "
                      f"(run gennape distill --checkpoint {checkpoint} again)")
    return student, None


#: ``--predictor`` choices: the student when the checkpoint has a usable one
#: (else the teacher), the student (an error without one), or the teacher.
PREDICTORS = ("auto", "student", "teacher")


def choose_predictor(checkpoint: str | Path | None = None, predictor: str = "auto"):
    """``(estimator, "student" | "teacher")`` of ``checkpoint`` for ``predictor``
    (one of :data:`PREDICTORS`)."""
    from gennape.transfer.model import load_estimator

    if predictor not in PREDICTORS:
        raise ValueError(f"unknown predictor {predictor!r}; valid choices: {', '.join(PREDICTORS)}")
    if predictor != "teacher":
        student, problem = _student_or_reason(checkpoint)
        if student is not None:
            return student, "student"
        if predictor == "student":
            raise GennapeError(problem)
    return load_estimator(checkpoint), "teacher"


__all__ = ["PREDICTORS", "STUDENT_DIR", "choose_predictor", "TEACHER_HASH", "distill_cgs", "load_student", "random_family_specs",
           "student_dir", "student_problem", "teacher_hash"]
