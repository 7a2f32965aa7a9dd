"""KShotEstimator: a frozen pretrained estimator plus the k-shot correction of
:mod:`gennape.pretrain.kshot`, with a checkpoint of its own.

``gennape finetune``'s default (``mode="select"``, :mod:`gennape.transfer.finetune`):
the pretrained estimator (one :class:`GennapeEstimator` or a
:class:`GennapeEnsemble`) is not trained at all; its zero-shot scores, its
members' embeddings and the networks' sizes (:func:`frozen_features`) feed a
:class:`gennape.pretrain.kshot.KShotSelector` fitted on the user's labels,
whose candidates (zero-shot alone among them) are chosen by leave-one-out on
those labels. Predictions are on the labels' scale: the selector predicts the
labels through a :class:`gennape.pretrain.targets.TargetTransform` fitted on them.

Memberships come from the pretrained estimator; the labelled networks'
embeddings join its out-of-distribution reference set (the family is no
longer unseen), as fine-tuning does. ``accuracy_std`` is the spread of the
chosen candidates' predicted accuracies: how much the near-best recipes
disagree, not a calibrated error.

Checkpoint: the pretrained estimator's tensors under ``base.``, the labelled
networks' features and the chosen candidates' dual coefficients under
``kshot.``; ``fitted`` holds the pretrained estimator's sections, the target
transform and the chosen candidates.
"""

from __future__ import annotations

import copy

import numpy as np

from gennape.cg.errors import GennapeError
from gennape.pretrain.base import LABEL_KEY, YOUR_LABELS, EstimatorBase, estimator_class, strip_prefix
from gennape.pretrain.kshot import TOP, Candidate, KShotFeatures, KShotSelector
from gennape.pretrain.targets import TargetTransform

#: ``KShotFeatures`` fields saved as ``kshot.<field>`` tensors.
_FEATURE_FIELDS = KShotFeatures._fields


def members_of(estimator) -> list:
    """The :class:`GennapeEstimator` members of an ensemble, or ``[estimator]``."""
    return list(estimator.members_) if hasattr(estimator, "members_") else [estimator]


def frozen_features(estimator, cgs) -> KShotFeatures:
    """:class:`KShotFeatures` of ``cgs`` from a fitted estimator or ensemble (nothing is trained).

    Args:
        estimator: a fitted :class:`GennapeEstimator` or :class:`GennapeEnsemble`.
        cgs: CGs, PyG ``Data`` or a ``GraphPack``.
    """
    from gennape.pretrain.ensemble import member_mean
    from gennape.pretrain.estimator import as_pack

    pack = as_pack(cgs)
    outs = [m._run(pack) for m in members_of(estimator)]
    scores = [o.score for o in outs]
    return KShotFeatures(member_mean(scores), np.stack(scores), np.concatenate([o.embedding for o in outs], axis=1),
                         pack.graph_column("log_weights"), pack.graph_column("log_macs"))


class KShotEstimator(EstimatorBase):
    """A pretrained estimator, frozen, corrected on k labelled networks.

    Args:
        estimator: the fitted pretrained :class:`GennapeEstimator` or
            :class:`GennapeEnsemble` (copied by :meth:`fit`, left unchanged).
        top: candidates averaged (:class:`gennape.pretrain.kshot.KShotSelector`).

    Fitted attributes: ``base_`` (the copy of ``estimator``, its OOD reference
    grown by the labelled networks), ``selector_``, ``target_transform_`` and
    ``metadata_``.
    """

    def __init__(self, estimator=None, top: int = TOP):
        self.estimator = estimator
        self.top = top

    def fit(self, cgs, y) -> "KShotEstimator":
        """Fit the correction on labelled networks (``y``: accuracies as fractions); returns self."""
        return self.fit_features(frozen_features(self._base(), cgs), y)

    def fit_features(self, feats: KShotFeatures, y) -> "KShotEstimator":
        """:meth:`fit` from the labelled networks' :func:`frozen_features`
        (computed once, e.g. for several draws of labelled networks); returns self."""
        import torch

        base = self._base()
        y = np.asarray(y, dtype=np.float64)
        if len(y) != feats.n:
            raise ValueError(f"{feats.n} graphs but {len(y)} accuracies")
        if np.ptp(y) == 0:
            raise GennapeError("fine-tuning needs labels that differ (all accuracies are equal)")
        kind = members_of(base)[0].target_transform_.kind
        self.target_transform_ = TargetTransform(kind).fit(y)
        try:
            self.selector_ = KShotSelector(self.top).fit(feats, self.target_transform_.transform(y))
        except ValueError as err:
            raise GennapeError(str(err)) from None
        self.base_ = copy.deepcopy(base)
        width = feats.embedding.shape[1] // len(members_of(base))
        for i, member in enumerate(members_of(self.base_)):  # the family is no longer unseen
            model = member.model_
            new = torch.as_tensor(feats.embedding[:, i * width:(i + 1) * width], dtype=torch.float32,
                                  device=model.reference_embeddings.device)
            model.reference_embeddings = torch.cat([model.reference_embeddings, new])
        self.metadata_ = {**getattr(base, "metadata_", {}), LABEL_KEY: YOUR_LABELS, "finetune": {
            "mode": "select", "n": int(len(y)), "top": self.top, "chosen": self.selector_.describe(),
            "zero_shot_loo_mse": self.selector_.zero_shot_loo_mse_,
        }}
        return self

    def _base(self):
        """The pretrained estimator to correct (a KShotEstimator's own, when given one: re-fitting replaces it)."""
        if self.estimator is None:
            raise ValueError("KShotEstimator needs a fitted estimator to correct")
        return self.estimator.base_ if isinstance(self.estimator, KShotEstimator) else self.estimator

    # ---------------------------------------------------------------- predict
    def _fitted(self):
        if not hasattr(self, "selector_"):
            from gennape.pretrain.estimator import NotFittedError

            raise NotFittedError("this KShotEstimator is not fitted yet; call fit(cgs, y) first "
                                 "or load a checkpoint with gennape.transfer.model.load_estimator(dir)")
        return self.selector_

    def predict_score(self, cgs) -> np.ndarray:
        """Predictions on the labels' target-transform scale (rank by this), ``[n]``."""
        return self.predict_score_features(frozen_features(self.base_, cgs))

    def predict_score_features(self, feats: KShotFeatures) -> np.ndarray:
        """:meth:`predict_score` from :func:`frozen_features` of the pretrained
        estimator (``base_``'s OOD reference differs, its scores do not)."""
        return self._fitted().predict(feats)

    def predict(self, cgs) -> np.ndarray:
        """Predicted accuracy on the labels' scale, clipped to ``[0, 1]``, ``[n]``."""
        return self._accuracy(self.predict_score(cgs))

    def _accuracy(self, score: np.ndarray) -> np.ndarray:
        return np.clip(self.target_transform_.inverse(score), 0.0, 1.0)

    def predict_details(self, cgs) -> dict[str, np.ndarray]:
        """As :meth:`GennapeEstimator.predict_details`; ``accuracy_std`` is the
        spread (``ddof=0``) of the chosen candidates' predicted accuracies."""
        from gennape.pretrain.estimator import as_pack

        pack = as_pack(cgs)
        base = self.base_.predict_details(pack)
        each = self._fitted().predict_candidates(frozen_features(self.base_, pack))
        score = each[0].copy()
        for row in each[1:]:  # as KShotSelector.predict, from the same pass
            score += row
        score /= len(each)
        accuracy = [self._accuracy(row) for row in each]
        mean = sum(accuracy) / len(accuracy)
        spread = np.sqrt(sum((a - mean) ** 2 for a in accuracy) / len(accuracy))
        return {"accuracy": self._accuracy(score), "score": score, "memberships": base["memberships"],
                "ood_score": base["ood_score"], "ood": base["ood"], "accuracy_std": spread}

    @property
    def model_(self):
        """The pretrained (first member's) :class:`gennape.pretrain.model.GennapeModel`,
        for what reads its embedding space (e.g. ``transfer/search/embedding_map.py``);
        the k-shot scores are not in it."""
        return members_of(self.base_)[0].model_

    def embed(self, cgs) -> np.ndarray:
        """The pretrained estimator's embeddings (the first member's, for an ensemble)."""
        return members_of(self.base_)[0].embed(cgs)

    def memberships(self, cgs) -> np.ndarray:
        """The pretrained estimator's fuzzy memberships ``[n, K]``."""
        return self.base_.memberships(cgs)

    def ood_score(self, cgs) -> np.ndarray:
        """The pretrained estimator's out-of-distribution score ``[n]``."""
        return self.base_.ood_score(cgs)

    # -------------------------------------------------------------- save/load
    def checkpoint_state(self) -> tuple[dict, dict]:
        """The pretrained estimator's tensors under ``base.``, the selector's under ``kshot.``."""
        import torch

        selector = self._fitted()
        base_tensors, base_sections = self.base_.checkpoint_state()
        tensors = {f"base.{k}": v for k, v in base_tensors.items()}
        for name in _FEATURE_FIELDS:
            tensors[f"kshot.{name}"] = torch.as_tensor(np.asarray(getattr(selector.train_, name), np.float64))
        tensors["kshot.dual"] = torch.as_tensor(selector.dual_)
        fitted = {"base_estimator": type(self.base_).__name__, "base": base_sections,
                  "target_transform": self.target_transform_.to_dict(),
                  "chosen": [c._asdict() for c in selector.chosen_], "loo_mse": list(selector.loo_mse_),
                  "zero_shot_loo_mse": selector.zero_shot_loo_mse_}
        return tensors, {"params": {"top": self.top}, "fitted": fitted, "metadata": dict(self.metadata_)}

    @classmethod
    def from_sections(cls, tensors: dict, sections: dict, device: str = "cpu") -> "KShotEstimator":
        """The estimator of :meth:`checkpoint_state`'s ``(tensors, sections)``."""
        fitted = sections["fitted"]
        base = estimator_class(fitted["base_estimator"]).from_sections(strip_prefix(tensors, "base."),
                                                                      fitted["base"], device)
        est = cls(None, int(sections["params"]["top"]))
        est.base_ = base
        est.target_transform_ = TargetTransform.from_dict(fitted["target_transform"])
        selector = KShotSelector(est.top)
        selector.train_ = KShotFeatures(*(tensors[f"kshot.{name}"].numpy() for name in _FEATURE_FIELDS))
        selector.chosen_ = [Candidate(**c) for c in fitted["chosen"]]
        selector.loo_mse_ = [float(v) for v in fitted["loo_mse"]]
        selector.zero_shot_loo_mse_ = float(fitted["zero_shot_loo_mse"])
        selector.dual_ = tensors["kshot.dual"].numpy()
        if selector.dual_.shape != (len(selector.chosen_), selector.train_.n):
            raise ValueError(f"kshot.dual has shape {tuple(selector.dual_.shape)}, expected "
                             f"({len(selector.chosen_)}, {selector.train_.n})")
        est.selector_ = selector
        est.metadata_ = dict(sections.get("metadata") or {})
        return est


__all__ = ["KShotEstimator", "frozen_features", "members_of"]
