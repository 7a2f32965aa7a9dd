"""gennape installs as one namespace: a user's own cg.py or transfer.py cannot shadow it."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Names a user's project folder is likely to hold; gennape used to install them.
CLASHING = ("cg", "encoder", "heads", "pretrain", "transfer")


def _distribution():
    """The installed distribution (site-packages), not a build's egg-info in the checkout."""
    purelib = sysconfig.get_paths()["purelib"]
    dist = next(iter(importlib.metadata.distributions(name="gennape", path=[purelib])), None)
    if dist is None:
        pytest.skip("gennape is not installed (pip install . or -e .)")
    return dist


@pytest.fixture
def user_folder(tmp_path: Path) -> Path:
    """A folder of a user's own modules named like gennape's parts, each raising on import."""
    for name in CLASHING:
        (tmp_path / f"{name}.py").write_text(f"raise ImportError('the user\\'s own {name}.py was imported')\n")
    return tmp_path


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_installed_top_level_name_is_gennape_alone():
    top_level = (_distribution().read_text("top_level.txt") or "").split()
    assert top_level == ["gennape"]


def test_installed_files_stay_inside_the_namespace():
    dist = _distribution()
    tops = {Path(str(f)).parts[0] for f in dist.files or ()}
    # Only the package, its metadata, the console script and (editable) the finder hook.
    stray = {t for t in tops if t not in ("gennape", "..", "__pycache__")
             and not t.startswith(("gennape-", "__editable__"))}
    assert not stray, f"installed outside the gennape namespace: {sorted(stray)}"


def test_import_beside_users_own_modules(user_folder: Path):
    _distribution()
    done = _run([sys.executable, "-c", "from gennape.transfer import predict_onnx; print('ok')"], user_folder)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_predict_beside_users_own_modules(user_folder: Path):
    _distribution()
    example = ROOT / "examples" / "onnx" / "nb201_mixed.onnx"
    if not example.is_file():
        example = next((ROOT / "examples" / "onnx").glob("*.onnx"))
    done = _run([sys.executable, "-m", "gennape", "predict", str(example)], user_folder)
    assert done.returncode == 0, done.stderr
    assert example.stem in done.stdout
