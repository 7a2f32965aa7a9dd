"""Shared fixtures: the benchmark data folder and the onnx package's light models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests are single-threaded so that timings and results do not depend on the
# machine's core count (and stay deterministic).
os.environ.setdefault("OMP_NUM_THREADS", "1")


def _light_dir() -> Path:
    import onnx

    return Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


LIGHT_MODELS = (
    "bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50",
    "shufflenet", "squeezenet", "vgg19", "zfnet512",
)


@pytest.fixture(scope="session")
def light_dir() -> Path:
    """Folder of the nine weightless model-zoo models the onnx package ships."""
    path = _light_dir()
    if not path.is_dir():
        pytest.skip(f"the onnx package ships no light models at {path}")
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared benchmark data folder; tests that need it skip when it is absent."""
    from gennape.cg.data import data_dir as find

    path = find(required=False)
    if path is None:
        pytest.skip("benchmark data not found: set GENNAPE_DATA or place it at ../shared/data")
    return path


@pytest.fixture(autouse=True)
def _torch_single_thread():
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    torch.set_num_threads(1)
    yield
