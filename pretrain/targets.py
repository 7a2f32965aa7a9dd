"""Target transforms for NB-101's crowded accuracy range.

Most NB-101 accuracies lie in 0.90-0.95 and a few hundred failed runs sit below
0.2. A regressor on raw accuracy spends its loss on those outliers and sees the
crowd as almost one value. The transforms spread the crowd out:

==============  ==============================================================
``raw``         accuracy, standardised (mean 0, std 1)
``logit_err``   ``-log(1 - acc)`` standardised: stretches the top end, where
                the good networks are, and squeezes the failures
``quantile``    rank -> standard normal quantile (``ndtri``): uniform spread,
                failures become one tail; inverted by interpolating the
                stored (quantile, accuracy) table
==============  ==============================================================

Every transform is monotone, so it never changes a ranking; it only changes
what the loss pays attention to. ``to_dict``/``from_dict`` round-trip the
fitted parameters through a checkpoint's ``config.json``.
"""

from __future__ import annotations

import numpy as np

TRANSFORMS = ("raw", "logit_err", "quantile")
#: Knots of the stored quantile table.
_N_KNOTS = 257
_CLIP = 1e-4


class TargetTransform:
    """A fitted monotone transform of accuracies (fractions in [0, 1]).

    Args:
        kind: one of :data:`TRANSFORMS`.
    """

    def __init__(self, kind: str = "quantile"):
        if kind not in TRANSFORMS:
            raise ValueError(f"unknown target transform {kind!r}; valid choices: {', '.join(TRANSFORMS)}")
        self.kind = kind
        self.mean = 0.0
        self.std = 1.0
        self.knots_acc: np.ndarray | None = None
        self.knots_z: np.ndarray | None = None

    def _pre(self, acc: np.ndarray) -> np.ndarray:
        acc = np.asarray(acc, dtype=np.float64)
        if self.kind == "logit_err":
            return -np.log(np.clip(1.0 - acc, _CLIP, None))
        return acc

    def fit(self, acc) -> "TargetTransform":
        acc = np.asarray(acc, dtype=np.float64)
        if self.kind == "quantile":
            from scipy.special import ndtri

            probs = np.linspace(0.0, 1.0, _N_KNOTS)
            self.knots_acc = np.quantile(acc, probs)
            self.knots_z = ndtri(np.clip(probs, 0.5 / len(acc), 1 - 0.5 / len(acc)))
            return self
        pre = self._pre(acc)
        self.mean, self.std = float(pre.mean()), float(pre.std() or 1.0)
        return self

    def transform(self, acc) -> np.ndarray:
        if self.kind == "quantile":
            acc_knots, z = _strict(self.knots_acc, self.knots_z)
            return _interp_extrapolate(np.atleast_1d(np.asarray(acc, np.float64)), acc_knots, z)
        return (self._pre(acc) - self.mean) / self.std

    def inverse(self, z) -> np.ndarray:
        z = np.atleast_1d(np.asarray(z, dtype=np.float64))
        if self.kind == "quantile":
            acc_knots, zk = _strict(self.knots_acc, self.knots_z)
            return _interp_extrapolate(z, zk, acc_knots)
        pre = z * self.std + self.mean
        if self.kind == "logit_err":
            return 1.0 - np.exp(-pre)
        return pre

    def to_dict(self) -> dict:
        d = {"kind": self.kind, "mean": self.mean, "std": self.std}
        if self.kind == "quantile":
            d["knots_acc"] = [float(v) for v in self.knots_acc]
            d["knots_z"] = [float(v) for v in self.knots_z]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TargetTransform":
        t = cls(d["kind"])
        t.mean, t.std = float(d["mean"]), float(d["std"])
        if t.kind == "quantile":
            t.knots_acc = np.asarray(d["knots_acc"], np.float64)
            t.knots_z = np.asarray(d["knots_z"], np.float64)
        return t


def _interp_extrapolate(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """``np.interp`` continued linearly past both ends, so that scores of
    networks beyond the training range keep their order instead of clipping
    into ties (what zero-shot ranking on another family needs)."""
    out = np.interp(x, xp, fp)
    if len(xp) >= 2:
        lo, hi = x < xp[0], x > xp[-1]
        out[lo] = fp[0] + (x[lo] - xp[0]) * (fp[1] - fp[0]) / (xp[1] - xp[0])
        out[hi] = fp[-1] + (x[hi] - xp[-1]) * (fp[-1] - fp[-2]) / (xp[-1] - xp[-2])
    return out


def _strict(acc: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop repeated knots on either axis (accuracy ties; z clipped at the ends
    for small samples) so interpolation both ways is well defined."""
    keep = np.concatenate([[True], (np.diff(acc) > 0) & (np.diff(z) > 0)])
    return acc[keep], z[keep]


__all__ = ["TargetTransform", "TRANSFORMS"]
