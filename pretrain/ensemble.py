"""A seed ensemble: several GennapeEstimators, differing only in their seed,
whose scores are averaged.

Zero-shot transfer depends on the pretraining seed far more than in-domain
fit does. Five seeds of a sum-readout recipe (``gennape pretrain --limit 8000
--epochs 3``) gave zero-shot Spearman NB-201 0.69-0.80, NB-301 0.15-0.52 and
OFA-MobileNetV3 0.76-0.97 while NB-101 test stayed within 0.76-0.79; the mean
of the five members' scores ranked NB-201 at 0.804, NB-301 0.412, OFA 0.974 and
NB-101 0.797: as good as the best member on three families, and never as
bad as the worst. The nine shipped mean-readout members range over NB-201
0.79-0.85, NB-301 0.53-0.65 and OFA 0.35-0.98; their mean gives 0.856, 0.621
and 0.969, above every member on NB-201. Which seed transfers well cannot be
known without labels of the new family, so the ensemble is the safer thing to ship.

Every member's target transform is fitted on the same accuracies, so their
scores share one scale and their mean is on it too. ``memberships`` are the
first member's (each member has its own clusters); the OOD score is the
members' mean.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gennape.pretrain.base import LABEL_KEY, SECTIONS, YOUR_LABELS, EstimatorBase, split_layout1, strip_prefix
from gennape.pretrain.estimator import GennapeEstimator, NotFittedError, as_pack

#: ``config.json`` ``estimator`` value of an ensemble checkpoint.
ENSEMBLE = "GennapeEnsemble"


class GennapeEnsemble(EstimatorBase):
    """The mean of ``n_members`` estimators seeded ``estimator.seed + i``.

    Args:
        estimator: the unfitted member template (default ``GennapeEstimator()``).
        n_members: how many members (>= 1).

    Fitted attributes: ``members_`` (the fitted estimators) and ``metadata_``.
    """

    def __init__(self, estimator: GennapeEstimator | None = None, n_members: int = 5):
        self.estimator = estimator
        self.n_members = n_members

    # -------------------------------------------------------------------- fit
    def fit(self, cgs, y, *, state_dir: str | Path | None = None, on_member=None, **fit_kwargs) -> "GennapeEnsemble":
        """Fit every member on the same data (arguments as
        :meth:`GennapeEstimator.fit`); ``state_dir`` gets one subfolder per
        member, so ``resume`` skips members already pretrained.
        ``on_member(i)`` is called before member ``i`` starts."""
        if self.n_members < 1:
            raise ValueError(f"n_members must be >= 1, got {self.n_members}")
        base = self._template()
        pack = as_pack(cgs)
        self.members_ = []
        for i in range(self.n_members):
            if on_member is not None:
                on_member(i)
            member = GennapeEstimator(**{**base.get_params(deep=False), "seed": base.seed + i})
            member_dir = Path(state_dir) / f"member{i}" if state_dir is not None else None
            self.members_.append(member.fit(pack, y, state_dir=member_dir, **fit_kwargs))
        self.metadata_ = {}
        return self

    def finetune(self, cgs, y, **options) -> "GennapeEnsemble":
        """Fine-tune every member on the same labelled networks (arguments as
        :meth:`GennapeEstimator.finetune`, graphs featurised once); returns self."""
        from gennape.pretrain.progress import progress

        members, pack = self._fitted(), as_pack(cgs)
        for member in progress(members, desc="fine-tuning ensemble members", unit="member"):
            member.finetune(pack, y, **options)
        # Each member chooses its own size term under "auto" (their heads differ).
        self.metadata_ = {**self.metadata_, LABEL_KEY: YOUR_LABELS, "finetune": {
            **members[0].metadata_["finetune"], "size_term": [m.metadata_["finetune"]["size_term"] for m in members]}}
        return self

    def _template(self) -> GennapeEstimator:
        return self.estimator if self.estimator is not None else GennapeEstimator()

    # ---------------------------------------------------------------- predict
    def predict_score(self, cgs) -> np.ndarray:
        """Mean of the members' scores, ``[n]`` (rank by this)."""
        members, pack = self._fitted(), as_pack(cgs)
        return member_mean([m.predict_score(pack) for m in members])

    def predict(self, cgs) -> np.ndarray:
        """Predicted accuracy of the mean score, clipped to ``[0, 1]``, ``[n]``."""
        return self._fitted()[0]._accuracy(self.predict_score(cgs))

    def predict_details(self, cgs) -> dict[str, np.ndarray]:
        """As :meth:`GennapeEstimator.predict_details`, for the ensemble (see
        the module docstring for memberships and OOD), plus ``member_scores``
        ``[n_members, n]``: each member's score, to see how far they agree.

        ``accuracy_std`` ``[n]`` is the predicted uncertainty: the standard
        deviation (``ddof=0``) over the members of each member's own predicted
        accuracy, on the same scale as ``accuracy`` (a fraction; members' scores
        through the shared target transform, clipped to ``[0, 1]`` as ``accuracy`` is)."""
        members, pack = self._fitted(), as_pack(cgs)
        each = [m.predict_details(pack) for m in members]
        score = member_mean([d["score"] for d in each])
        ood = member_mean([d["ood_score"] for d in each])
        accuracy = [d["accuracy"] for d in each]
        spread = np.sqrt(member_mean([(a - member_mean(accuracy)) ** 2 for a in accuracy]))
        first = members[0]
        return {"accuracy": first._accuracy(score), "score": score, "memberships": each[0]["memberships"],
                "ood_score": ood, "ood": ood > first.ood_threshold_, "accuracy_std": spread,
                "member_scores": np.stack([d["score"] for d in each])}

    def memberships(self, cgs) -> np.ndarray:
        """The first member's fuzzy memberships ``[n, K]``."""
        return self._fitted()[0].memberships(cgs)

    def ood_score(self, cgs) -> np.ndarray:
        """Mean of the members' OOD scores, ``[n]``."""
        members, pack = self._fitted(), as_pack(cgs)
        return member_mean([m.ood_score(pack) for m in members])

    def _fitted(self) -> list[GennapeEstimator]:
        if not hasattr(self, "members_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(...) first "
                                 "or load a checkpoint with gennape.transfer.model.load_estimator(dir)")
        return self.members_

    # -------------------------------------------------------------- save/load
    def checkpoint_state(self) -> tuple[dict, dict]:
        """Every member's tensors under ``member<i>.``; ``params`` holds the
        template's parameters, ``fitted`` each member's sections."""
        tensors, members = {}, []
        for i, member in enumerate(self._fitted()):
            t, sections = member.checkpoint_state()
            tensors.update({f"member{i}.{k}": v for k, v in t.items()})
            members.append(sections)
        template = None if self.estimator is None else self.estimator.get_params(deep=False)
        return tensors, {"params": {"estimator": template, "n_members": self.n_members},
                         "fitted": {"members": members}, "metadata": dict(self.metadata_)}

    @classmethod
    def from_sections(cls, tensors: dict, sections: dict, device: str = "cpu") -> "GennapeEnsemble":
        """The ensemble of :meth:`checkpoint_state`'s ``(tensors, sections)``."""
        params, members = sections["params"], sections["fitted"]["members"]
        if not isinstance(members, list) or not members or not all(isinstance(m, dict) for m in members):
            raise ValueError("fitted.members must be a non-empty list of objects")
        if params["n_members"] != len(members):
            raise ValueError(f"n_members is {params['n_members']} but {len(members)} members are saved")
        template = params["estimator"]
        est = cls(None if template is None else GennapeEstimator(**{**template, "device": device}),
                  params["n_members"])
        est.members_ = []
        for i, member in enumerate(members):
            est.members_.append(GennapeEstimator.from_sections(strip_prefix(tensors, f"member{i}."), member, device))
        est.metadata_ = dict(sections.get("metadata") or {})
        return est

    @classmethod
    def config_of_layout1(cls, config: dict) -> dict:
        """An ensemble config.json written before the sections existed (each
        member a first-layout estimator config under ``members``), in the
        current layout; the template is the first member's parameters."""
        members = config["members"]
        if not isinstance(members, list) or not members or not all(isinstance(m, dict) for m in members):
            raise ValueError("members must be a non-empty list of objects")
        members = [GennapeEstimator.config_of_layout1(m) for m in members]
        envelope, metadata = split_layout1(config, {"members", "n_members"})
        vocabularies = {repr(m.get("op_vocabulary")) for m in members}
        envelope["op_vocabulary"] = members[0].get("op_vocabulary") if len(vocabularies) == 1 else None
        envelope["feature_names"] = members[0].get("feature_names")
        return {**envelope, "params": {"estimator": members[0]["params"], "n_members": len(members)},
                "fitted": {"members": [{k: m[k] for k in SECTIONS} for m in members]},
                "metadata": metadata}


def member_mean(values: list[np.ndarray]) -> np.ndarray:
    """The members' mean, added member by member: ``np.mean(axis=0)`` sums a
    single column pairwise but several columns row by row, so a network's mean
    would depend on how many networks are predicted with it."""
    total = np.array(values[0], dtype=np.float64)
    for v in values[1:]:
        total += v
    return total / len(values)


def load_fitted(directory: str | Path, device: str = "cpu"):
    """A fitted :class:`GennapeEstimator` or :class:`GennapeEnsemble`, whichever
    ``directory`` holds (:data:`gennape.pretrain.base.ESTIMATORS`)."""
    return EstimatorBase.load(directory, device)


__all__ = ["ENSEMBLE", "GennapeEnsemble", "load_fitted", "member_mean"]
