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
from typing import Any

import numpy as np

from gennape.cg.errors import GennapeError
from gennape.pretrain.estimator import GennapeEstimator, NotFittedError, as_pack

#: ``config.json`` ``estimator`` value of an ensemble checkpoint.
ENSEMBLE = "GennapeEnsemble"


class GennapeEnsemble:
    """The mean of ``n_members`` estimators seeded ``estimator.seed + i``.

    Args:
        estimator: the unfitted member template (default ``GennapeEstimator()``).
        n_members: how many members (>= 1).
    """

    def __init__(self, estimator: GennapeEstimator | None = None, n_members: int = 5):
        self.estimator = estimator
        self.n_members = n_members

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"estimator": self.estimator, "n_members": self.n_members}

    def set_params(self, **params) -> "GennapeEnsemble":
        for key, value in params.items():
            if key not in self.get_params():
                raise ValueError(f"unknown parameter {key!r}; valid parameters: estimator, n_members")
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}(estimator={self.estimator!r}, n_members={self.n_members})"

    # -------------------------------------------------------------------- fit
    def fit(self, cgs, y, *, state_dir: str | Path | None = None, on_member=None, **fit_kwargs) -> "GennapeEnsemble":
        """Fit every member on the same data (arguments as
        :meth:`GennapeEstimator.fit`); ``state_dir`` gets one subfolder per
        member, so ``resume`` skips members already pretrained.
        ``on_member(i)`` is called before member ``i`` starts."""
        if self.n_members < 1:
            raise ValueError(f"n_members must be >= 1, got {self.n_members}")
        base = self.estimator if self.estimator is not None else GennapeEstimator()
        pack = as_pack(cgs)
        self.members_ = []
        for i in range(self.n_members):
            if on_member is not None:
                on_member(i)
            member = GennapeEstimator(**{**base.get_params(), "seed": base.seed + i})
            member_dir = Path(state_dir) / f"member{i}" if state_dir is not None else None
            self.members_.append(member.fit(pack, y, state_dir=member_dir, **fit_kwargs))
        self.metadata_ = {}
        return self

    # ---------------------------------------------------------------- predict
    def predict_score(self, cgs) -> np.ndarray:
        """Mean of the members' scores, ``[n]`` (rank by this)."""
        members, pack = self._fitted(), as_pack(cgs)
        return np.mean([m.predict_score(pack) for m in members], axis=0)

    def predict(self, cgs) -> np.ndarray:
        """Predicted accuracy of the mean score, clipped to ``[0, 1]``, ``[n]``."""
        return self._fitted()[0]._accuracy(self.predict_score(cgs))

    def predict_details(self, cgs) -> dict[str, np.ndarray]:
        """As :meth:`GennapeEstimator.predict_details`, for the ensemble (see
        the module docstring for memberships and OOD), plus ``member_scores``
        ``[n_members, n]``: each member's score, to see how far they agree."""
        members, pack = self._fitted(), as_pack(cgs)
        each = [m.predict_details(pack) for m in members]
        member_scores = np.stack([d["score"] for d in each])
        score = member_scores.mean(axis=0)
        ood = np.mean([d["ood_score"] for d in each], axis=0)
        first = members[0]
        return {"accuracy": first._accuracy(score), "score": score, "memberships": each[0]["memberships"],
                "ood_score": ood, "ood": ood > first.ood_threshold_, "member_scores": member_scores}

    def memberships(self, cgs) -> np.ndarray:
        """The first member's fuzzy memberships ``[n, K]``."""
        return self._fitted()[0].memberships(cgs)

    def ood_score(self, cgs) -> np.ndarray:
        """Mean of the members' OOD scores, ``[n]``."""
        members, pack = self._fitted(), as_pack(cgs)
        return np.mean([m.ood_score(pack) for m in members], axis=0)

    def _fitted(self) -> list[GennapeEstimator]:
        if not hasattr(self, "members_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(...) first "
                                 "or load a checkpoint with gennape.transfer.model.load_estimator(dir)")
        return self.members_

    # -------------------------------------------------------------- save/load
    def save(self, directory: str | Path) -> Path:
        """One checkpoint folder: every member's tensors in ``model.pt`` under
        ``member<i>.``, their configs in ``config.json`` (atomic, as
        :mod:`gennape.pretrain.checkpoint`)."""
        from gennape.pretrain.checkpoint import save_checkpoint

        tensors, configs = {}, []
        for i, member in enumerate(self._fitted()):
            t, c = member.checkpoint_state()
            tensors.update({f"member{i}.{k}": v for k, v in t.items()})
            configs.append(c)
        config = {"estimator": ENSEMBLE, "n_members": len(configs), "members": configs, **self.metadata_}
        return save_checkpoint(directory, tensors, config)

    @classmethod
    def from_state(cls, tensors: dict, config: dict, directory: str | Path, device: str = "cpu"):
        """The ensemble of :meth:`save`'s ``(tensors, config)``; errors name ``directory``."""
        members = config.get("members")
        if not isinstance(members, list) or not members or not all(isinstance(c, dict) for c in members):
            raise GennapeError(f"{directory}: incomplete or malformed ensemble checkpoint (members)")
        est = cls(n_members=len(members))
        est.members_ = []
        for i, member_config in enumerate(members):
            prefix = f"member{i}."
            member_tensors = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
            est.members_.append(GennapeEstimator.from_state(member_tensors, member_config, directory, device))
        est.estimator = GennapeEstimator(**{**est.members_[0].get_params(), "device": device})
        est.metadata_ = {k: v for k, v in config.items() if k not in ("estimator", "n_members", "members", "versions")}
        return est


def load_fitted(directory: str | Path, device: str = "cpu"):
    """A fitted :class:`GennapeEstimator` or :class:`GennapeEnsemble`, whichever
    ``directory`` holds."""
    from gennape.pretrain.checkpoint import load_checkpoint

    tensors, config = load_checkpoint(directory)
    kind = config.get("estimator")
    if kind == ENSEMBLE:
        return GennapeEnsemble.from_state(tensors, config, directory, device)
    if kind not in (None, GennapeEstimator.__name__):
        raise GennapeError(f"{directory}: unknown estimator {kind!r} in config.json; "
                           f"valid: {GennapeEstimator.__name__}, {ENSEMBLE}")
    return GennapeEstimator.from_state(tensors, config, directory, device)


__all__ = ["ENSEMBLE", "GennapeEnsemble", "load_fitted"]
