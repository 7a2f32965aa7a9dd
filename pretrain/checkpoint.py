"""Checkpoint directories: ``model.pt`` (a flat dict of tensors) + ``config.json``.

``model.pt`` holds nothing but ``{name: tensor}`` and is read with
``torch.load(..., weights_only=True)``, never with a pickle fallback.
``config.json`` holds everything else: the op vocabulary, featuriser / CG
format / package versions and the estimator's ``params``, ``fitted`` state
(target transform, size term, ...) and ``metadata`` (training data and its
hash, the command, metrics); the layout is :mod:`gennape.pretrain.base`'s.

Writes are atomic: the files go into a temporary sibling directory that is
renamed into place only when complete, so an interrupted run leaves either the
previous checkpoint or the new one, never a half-written one that loads.
Loading refuses a checkpoint whose featuriser version, CG format version or
package major version differs from this code's, saying which. ``config.json``
records the SHA-256 of ``model.pt``, so a truncated or tampered tensor file is
refused even where it would still load.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from gennape.cg.errors import GennapeError

MODEL_FILE = "model.pt"
CONFIG_FILE = "config.json"
#: config.json key holding the SHA-256 of model.pt.
MODEL_HASH_KEY = "model_sha256"


def current_versions() -> dict[str, object]:
    """The versions a checkpoint must match to load in this code."""
    from gennape.cg import __version__ as package_version
    from gennape.cg.graph import FORMAT_VERSION
    from gennape.encoder.features import FEATURIZER_VERSION

    return {"featurizer_version": FEATURIZER_VERSION, "cg_format_version": FORMAT_VERSION,
            "package_version": package_version}


def _major(version: str) -> str:
    return str(version).split(".")[0]


def check_versions(config: dict, where: str) -> None:
    """Raise :class:`GennapeError` naming every version that differs."""
    now = current_versions()
    saved = config.get("versions", {})
    problems = []
    for key in ("featurizer_version", "cg_format_version"):
        if saved.get(key) != now[key]:
            problems.append(f"{key} {saved.get(key)} (this code: {now[key]})")
    if _major(saved.get("package_version", "?")) != _major(now["package_version"]):
        problems.append(f"package_version {saved.get('package_version')} (this code: {now['package_version']})")
    if problems:
        raise GennapeError(f"{where}: checkpoint made by an incompatible version: " + "; ".join(problems))


def save_checkpoint(directory: str | Path, tensors: dict[str, torch.Tensor], config: dict) -> Path:
    """Write ``tensors`` and ``config`` (versions added) into ``directory`` atomically."""
    directory = Path(directory)
    bad = [k for k, v in tensors.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise TypeError(f"model.pt holds tensors only; not tensors: {', '.join(bad)}")
    directory.parent.mkdir(parents=True, exist_ok=True)
    config = {**config, "versions": current_versions()}
    old = None
    tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.tmp-"))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's 0700 would make the checkpoint private
        torch.save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, tmp / MODEL_FILE)
        config[MODEL_HASH_KEY] = sha256_file(tmp / MODEL_FILE)
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=1, sort_keys=True))
        for f in (MODEL_FILE, CONFIG_FILE):
            with open(tmp / f, "rb") as fh:
                os.fsync(fh.fileno())
        if directory.exists():
            # Move the old checkpoint aside first: rename cannot replace a non-empty directory.
            old = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.old-"))
            os.rmdir(old)
            os.replace(directory, old)
        os.replace(tmp, directory)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and old.exists() and not directory.exists():
            os.replace(old, directory)  # interrupted between the two renames: put the old one back
        raise
    return directory


def load_checkpoint(directory: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a checkpoint directory: ``(tensors, config)``; checks versions."""
    directory = Path(directory)
    model, config_path = directory / MODEL_FILE, directory / CONFIG_FILE
    for path in (model, config_path):
        if not path.is_file():
            raise GennapeError(f"{directory}: not a gennape checkpoint ({path.name} missing)")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise GennapeError(f"{config_path}: invalid JSON ({err.msg} at line {err.lineno})") from None
    except UnicodeDecodeError:
        raise GennapeError(f"{config_path}: not UTF-8 text") from None
    if not isinstance(config, dict) or not isinstance(config.get("versions", {}), dict):
        raise GennapeError(f"{config_path}: expected a JSON object with a 'versions' object")
    check_versions(config, str(directory))
    # Hash first: bytes that are not the ones saved never reach the loader.
    expected = config.pop(MODEL_HASH_KEY, None)
    if expected is not None and sha256_file(model) != expected:
        raise GennapeError(f"{model}: does not match the SHA-256 recorded in {CONFIG_FILE} "
                           "(truncated, tampered or replaced)")
    try:
        tensors = torch.load(model, map_location="cpu", weights_only=True)
    except Exception as err:  # weights_only refuses anything but tensors and plain containers
        raise GennapeError(f"{model}: cannot be read as a tensors-only file ({type(err).__name__}: "
                           f"{str(err).splitlines()[0] if str(err) else ''})") from None
    if not isinstance(tensors, dict) or not all(isinstance(v, torch.Tensor) for v in tensors.values()):
        raise GennapeError(f"{model}: expected a flat dict of tensors")
    return tensors, config


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


__all__ = ["save_checkpoint", "load_checkpoint", "check_versions", "current_versions", "sha256_file",
           "MODEL_FILE", "CONFIG_FILE", "MODEL_HASH_KEY"]
