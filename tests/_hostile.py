"""The hostile-input harness shared by tests/test_hostile_onnx.py and
benchmarks/fuzz_onnx.py: run the ONNX importer on one input and check that it
ends in a valid CG or a one-line ConversionError, within a time limit, without
opening any file it was not given.

A result that breaks these rules raises :class:`HostileFailure` (a bug).
"""

from __future__ import annotations

import builtins
import contextlib
import io
import os
import signal
import warnings
from pathlib import Path

#: Seconds one conversion may take before it counts as a hang.
DEADLINE_S = 10.0


class HostileFailure(AssertionError):
    """The importer broke the contract on a hostile input."""


class _Timeout(BaseException):
    """Raised by the alarm; a BaseException so the importer's handlers cannot swallow it."""


@contextlib.contextmanager
def time_limit(seconds: float):
    """Interrupt the block after ``seconds`` (SIGALRM; main thread, POSIX)."""
    def on_alarm(signum, frame):
        raise _Timeout()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def watch_opens(forbidden: list[Path]):
    """Record every attempt to open a path under ``forbidden`` (through
    ``open``, ``io.open``, ``os.open`` or onnx's external-data loader) and
    refuse it, so that a FIFO or a huge file is never actually read."""
    forbidden_text = [str(Path(p).resolve()) for p in forbidden]
    attempts: list[str] = []

    def is_forbidden(path) -> bool:
        try:
            resolved = str(Path(os.fsdecode(path)).resolve())
        except (TypeError, ValueError, OSError):
            return False
        return any(resolved == f or resolved.startswith(f + os.sep) for f in forbidden_text)

    def guard(real):
        def wrapper(file, *args, **kwargs):
            if not isinstance(file, int) and is_forbidden(file):
                attempts.append(os.fsdecode(file))
                raise PermissionError(f"test: opening {file} is forbidden")
            return real(file, *args, **kwargs)
        return wrapper

    import onnx.external_data_helper as edh
    import onnx.numpy_helper as nh

    def refuse_external(tensor, base_dir="", *args, **kwargs):
        attempts.append(f"load_external_data_for_tensor({tensor.name!r}, {base_dir!r})")
        raise PermissionError("test: loading external data is forbidden")

    patches = [(builtins, "open"), (io, "open"), (os, "open")]
    saved = [(mod, name, getattr(mod, name)) for mod, name in patches]
    saved += [(m, "load_external_data_for_tensor", m.load_external_data_for_tensor) for m in (edh, nh)
              if hasattr(m, "load_external_data_for_tensor")]
    try:
        for mod, name, real in saved[:3]:
            setattr(mod, name, guard(real))
        for mod, name, _ in saved[3:]:
            setattr(mod, name, refuse_external)
        yield attempts
    finally:
        for mod, name, real in saved:
            setattr(mod, name, real)


def check_cg(cg) -> None:
    """Raise HostileFailure unless ``cg`` is a valid computation graph: edges
    forward and in range, known ops, positive integer dimensions, non-negative
    params and MACs, a lossless JSON round trip."""
    from gennape.cg.graph import CG
    from gennape.cg.ops import OPS

    if not isinstance(cg, CG):
        raise HostileFailure(f"from_onnx returned {type(cg).__name__}, not a CG")
    try:
        cg.validate()
    except ValueError as err:
        raise HostileFailure(f"invalid CG: {err}") from None
    for i, n in enumerate(cg.nodes):
        if n.op not in OPS:
            raise HostileFailure(f"node {i}: op {n.op!r} is not in the vocabulary")
        for field in ("in_shape", "out_shape", "kernel", "stride", "dilation", "weight_shape"):
            dims = getattr(n, field)
            if not all(isinstance(d, int) and d >= 1 for d in dims):
                raise HostileFailure(f"node {i} ({n.op}): {field} {dims} has a dimension that is not a positive int")
        if not (isinstance(n.groups, int) and n.groups >= 1):
            raise HostileFailure(f"node {i} ({n.op}): groups {n.groups}")
        if n.params < 0 or n.macs < 0:
            raise HostileFailure(f"node {i} ({n.op}): negative params ({n.params}) or MACs ({n.macs})")
    try:
        same = CG.from_json(cg.to_json()) == cg
    except Exception as err:
        raise HostileFailure(f"the CG cannot be written as JSON: {type(err).__name__}: {err}") from None
    if not same:
        raise HostileFailure("the CG does not survive a JSON round trip")


def check_features(cg) -> None:
    """Raise HostileFailure unless the encoder's features of ``cg`` are finite
    (a CG that converts must also be predictable)."""
    import torch

    from gennape.encoder.features import featurize

    x = featurize(cg.to_pyg())
    if not bool(torch.isfinite(x).all()):
        raise HostileFailure("the CG's encoder features are not all finite")


def convert_hostile(model, *, deadline_s: float = DEADLINE_S, features: bool = False,
                    **kwargs) -> tuple[str, object]:
    """Convert ``model`` (path, bytes or ModelProto) and check the outcome.

    Returns ``("cg", cg)`` or ``("error", message)``; raises HostileFailure for
    anything else: another exception, a multi-line message, an invalid CG, or
    more than ``deadline_s`` seconds.
    """
    from gennape.cg.errors import ConversionError
    from gennape.cg.onnx_import import from_onnx

    try:
        with time_limit(deadline_s), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # --unknown-ops other warns, by design
            cg = from_onnx(model, **kwargs)
    except _Timeout:
        raise HostileFailure(f"conversion took more than {deadline_s} s") from None
    except ConversionError as err:
        text = str(err)
        if "\n" in text or not text.strip():
            raise HostileFailure(f"ConversionError is not one line: {text!r}") from None
        return "error", text
    except Exception as err:
        raise HostileFailure(f"{type(err).__name__} escaped the importer: {err}") from err
    check_cg(cg)
    if features:
        check_features(cg)
    return "cg", cg


# ------------------------------------------------------- hypothesis settings
def hypothesis_profile():
    """The settings of the hostile-input property tests: few, reproducible
    examples in CI (``derandomize``; no example database), each under a
    deadline. ``GENNAPE_HYPOTHESIS_PROFILE=gennape-thorough`` runs many more
    random examples locally."""
    from datetime import timedelta

    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "gennape-ci", max_examples=25, deadline=timedelta(seconds=DEADLINE_S), derandomize=True,
        database=None, print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.function_scoped_fixture],
    )
    settings.register_profile("gennape-thorough", parent=settings.get_profile("gennape-ci"),
                              max_examples=2000, derandomize=False)
    return settings.get_profile(os.environ.get("GENNAPE_HYPOTHESIS_PROFILE", "gennape-ci"))


# ---------------------------------------------------------- a tiny estimator
TINY_PARAMS = dict(hidden_channels=8, embed_dim=8, num_layers=2, epochs=2, batch_size=16, head_epochs=8,
                   head_hidden=8, num_clusters=2, seed=3)


def tiny_data(n: int = 40, seed: int = 0):
    """Small synthetic CGs and labels (tests/_synthetic.py)."""
    from _synthetic import toy_dataset

    return toy_dataset(n, seed=seed, stages=2, cells_per_stage=1)


_TINY = {}


def tiny_estimator():
    """A GennapeEstimator fitted in a few seconds on CPU (cached per process;
    callers must not modify it)."""
    if "est" not in _TINY:
        from gennape.pretrain.estimator import GennapeEstimator

        cgs, y = tiny_data()
        _TINY["est"] = GennapeEstimator(**TINY_PARAMS).fit(cgs, y)
    return _TINY["est"]
