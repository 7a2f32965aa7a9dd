"""What every gennape estimator shares: scikit-learn's parameter API and the
checkpoint envelope.

:class:`EstimatorBase` gives ``get_params`` / ``set_params`` / ``__repr__``
from the subclass's ``__init__`` signature (scikit-learn's contract:
``__init__`` stores its arguments under their own names), with ``deep``
parameters of nested estimators as ``outer__inner``; and ``save`` / ``load``
of a checkpoint folder (:mod:`gennape.pretrain.checkpoint`) whose
``config.json`` reads::

    {"estimator": "<class name>", "op_vocabulary": [...], "feature_names": [...],
     "params": {...}, "fitted": {...}, "metadata": {...},
     "versions": {...}, "model_sha256": "..."}

``params`` are the ``__init__`` arguments, ``fitted`` the fitted state that is
not a tensor (tensors go to ``model.pt``), ``metadata`` what the caller
recorded in ``metadata_`` (command, training data, metrics, fine-tunes).
:data:`ESTIMATORS` is the one table that turns a checkpoint's ``estimator``
into a class, for :meth:`EstimatorBase.load` and so for every loader.

Checkpoints written before this layout (fitted state and metadata side by
side at the top level of ``config.json``) still load: each class's
``config_of_layout1`` sorts their keys into the three sections.

No torch at module level: the CLI reads estimator defaults while building
its parser, which must stay cheap.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any, Callable

from gennape.cg.errors import GennapeError

#: config.json ``estimator`` value -> the module defining that class (imported
#: on first use, as :mod:`gennape.cg.families` does: the modules import this one).
ESTIMATORS: dict[str, str] = {
    "GennapeEstimator": "gennape.pretrain.estimator",
    "GennapeEnsemble": "gennape.pretrain.ensemble",
    "GennapeStudent": "gennape.pretrain.student",
    "KShotEstimator": "gennape.pretrain.kshot_estimator",
}
#: The config.json sections an estimator writes (besides the envelope).
SECTIONS = ("params", "fitted", "metadata")
#: ``metadata["label"]`` names the scale predictions are on: the label the
#: estimator was last trained on (e.g. :data:`gennape.pretrain.data.NB101_LABEL`).
LABEL_KEY = "label"
#: :meth:`EstimatorBase.label` of a checkpoint that does not record it.
UNKNOWN_LABEL = "unknown (the checkpoint does not record its label)"
#: ``metadata["label"]`` after fine-tuning on labels given in memory
#: (``gennape finetune`` adds the labels file's name).
YOUR_LABELS = "your labels"


def init_params(cls: type | Callable) -> dict[str, inspect.Parameter]:
    """Keyword parameters of ``cls.__init__`` (or of a callable), by name."""
    target = cls.__init__ if isinstance(cls, type) else cls
    return {name: p for name, p in inspect.signature(target).parameters.items()
            if name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def keyword_defaults(target: type | Callable) -> dict[str, Any]:
    """Default of every keyword parameter of ``target`` that has one."""
    return {name: p.default for name, p in init_params(target).items() if p.default is not p.empty}


def keywords_for(target: type | Callable, params: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``params`` that ``target`` takes as keywords (so a
    component is built by name from the estimator's parameters)."""
    accepted = init_params(target)
    return {k: v for k, v in params.items() if k in accepted}


class EstimatorBase:
    """Parameter API and checkpoint save/load for a gennape estimator.

    Subclasses implement ``checkpoint_state() -> (tensors, {"params", "fitted",
    "metadata"})`` and the classmethod ``from_sections(tensors, sections,
    device)``; those that wrote checkpoints before the sections existed also
    override ``config_of_layout1(config)`` (an old config.json in the current
    layout). Everything else here reads their ``__init__`` signature.
    """

    @classmethod
    def config_of_layout1(cls, config: dict) -> dict:
        """An old-layout config.json in the current layout; estimators newer
        than the sections never wrote one, so theirs is refused."""
        raise ValueError(f"a {cls.__name__} config.json needs its params/fitted/metadata sections")

    # ------------------------------------------------------------ sklearn API
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """``__init__`` arguments by name; with ``deep``, nested estimators'
        parameters too, as ``name__param``."""
        params = {name: getattr(self, name) for name in init_params(type(self))}
        if deep:
            for name, value in list(params.items()):
                if isinstance(value, EstimatorBase):
                    params.update({f"{name}__{k}": v for k, v in value.get_params(deep=True).items()})
        return params

    def set_params(self, **params) -> "EstimatorBase":
        """Set ``__init__`` arguments (``name__param`` reaches a nested estimator); returns self."""
        valid = init_params(type(self))
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if name not in valid:
                raise ValueError(f"unknown parameter {key!r} of {type(self).__name__}; "
                                 f"valid parameters: {', '.join(valid)}")
            if sub:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub_params in nested.items():
            inner = getattr(self, name)
            if not isinstance(inner, EstimatorBase):
                raise ValueError(f"{name} of {type(self).__name__} is {inner!r}, which has no parameters to set")
            inner.set_params(**sub_params)
        return self

    def __repr__(self) -> str:
        defaults = keyword_defaults(type(self))
        changed = {k: v for k, v in self.get_params(deep=False).items()
                   if k not in defaults or not _same(defaults[k], v)}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    def label(self) -> str:
        """The scale of the predicted accuracy: the name of the label this
        estimator was last trained on (``metadata_["label"]``), or
        :data:`UNKNOWN_LABEL`. A pretrained checkpoint predicts on its
        pretraining family's scale (an ImageNet network's "accuracy" is then a
        CIFAR-10 figure, meaningful only as a rank); after fine-tuning, on the
        user's labels' scale."""
        return str(getattr(self, "metadata_", {}).get(LABEL_KEY) or UNKNOWN_LABEL)

    # -------------------------------------------------------------- save/load
    def save(self, directory: str | Path) -> Path:
        """Write a checkpoint folder (atomic; see :mod:`gennape.pretrain.checkpoint`)."""
        from gennape.cg.ops import OPS
        from gennape.encoder.features import FEATURE_NAMES
        from gennape.pretrain.checkpoint import save_checkpoint

        tensors, sections = self.checkpoint_state()
        config = {"estimator": type(self).__name__, "op_vocabulary": list(OPS),
                  "feature_names": list(FEATURE_NAMES), **sections}
        return save_checkpoint(directory, tensors, config)

    @classmethod
    def load(cls, directory: str | Path, device: str = "cpu"):
        """The fitted estimator saved in ``directory``, of the class its
        ``config.json`` names (which must be ``cls`` or a subclass)."""
        from gennape.pretrain.checkpoint import load_checkpoint

        tensors, config = load_checkpoint(directory)
        return cls.from_config(tensors, config, directory, device)

    @classmethod
    def from_config(cls, tensors: dict, config: dict, directory: str | Path, device: str = "cpu"):
        """The estimator of a checkpoint's ``(tensors, config)``; errors name ``directory``."""
        from gennape.cg.ops import OPS

        name = config.get("estimator")
        if name not in ESTIMATORS:
            raise GennapeError(f"{directory}: unknown estimator {name!r} in config.json; "
                               f"valid: {', '.join(ESTIMATORS)}")
        kind = estimator_class(name)
        if not issubclass(kind, cls):
            raise GennapeError(f"{directory}: a {name} checkpoint, not a {cls.__name__} one; "
                               "load it with gennape.transfer.model.load_estimator")
        try:
            if "fitted" not in config:  # written before the sections existed
                config = kind.config_of_layout1(config)
            if config.get("op_vocabulary") != list(OPS):
                raise GennapeError(f"{directory}: checkpoint op vocabulary differs from this code's")
            return kind.from_sections(tensors, config, device)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            # A config.json or model.pt with a field missing or of the wrong kind.
            what = f"{err} missing" if isinstance(err, KeyError) else f"{type(err).__name__}: {err}"
            raise GennapeError(f"{directory}: incomplete or malformed checkpoint ({what.splitlines()[0]})") from None
        except RuntimeError as err:
            raise GennapeError(f"{directory}: model.pt does not match config.json "
                               f"({str(err).splitlines()[0]})") from None


def estimator_class(name: str) -> type:
    """The class :data:`ESTIMATORS` names ``name``."""
    return getattr(importlib.import_module(ESTIMATORS[name]), name)


def strip_prefix(tensors: dict, prefix: str) -> dict:
    """The entries of ``tensors`` whose name starts with ``prefix``, without it."""
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def _same(a, b) -> bool:
    return a is b if isinstance(a, EstimatorBase) or isinstance(b, EstimatorBase) else a == b


#: config.json keys that describe the checkpoint rather than the estimator.
ENVELOPE = ("estimator", "op_vocabulary", "feature_names", "versions")


def split_layout1(config: dict, used) -> tuple[dict, dict]:
    """``(envelope, metadata)`` of a first-layout config.json: its envelope
    keys, and its other top-level keys but those in ``used`` (parameters,
    fitted state)."""
    return ({k: config[k] for k in ENVELOPE if k in config},
            {k: v for k, v in config.items() if k not in ENVELOPE and k not in used})


__all__ = ["ENVELOPE", "ESTIMATORS", "EstimatorBase", "LABEL_KEY", "SECTIONS", "UNKNOWN_LABEL", "YOUR_LABELS",
           "estimator_class", "init_params", "keyword_defaults", "keywords_for", "split_layout1", "strip_prefix"]
