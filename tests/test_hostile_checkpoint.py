"""Hostile checkpoints: a pickle payload is never run, truncated or tampered
files and configs give a one-line GennapeError naming the file, and a
checkpoint of another featuriser / CG format / package version is refused
naming the versions that differ."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _hostile import tiny_data, tiny_estimator

from gennape.cg.errors import GennapeError
from gennape.pretrain.checkpoint import CONFIG_FILE, MODEL_FILE
from gennape.pretrain.estimator import GennapeEstimator

ROOT = Path(__file__).resolve().parent.parent


class MarkerPayload:
    """Unpickling this creates ``path`` (a stand-in for arbitrary code)."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture()
def checkpoint(tmp_path) -> Path:
    path = tmp_path / "ck"
    tiny_estimator().save(path)
    return path


def load_error(path: Path) -> str:
    with pytest.raises(GennapeError) as err:
        GennapeEstimator.load(path)
    text = str(err.value)
    assert "\n" not in text
    return text


def test_the_payload_would_run(tmp_path):
    """Control: the payload does create its marker when unpickled, so the
    tests below would notice if the loader ran it."""
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(MarkerPayload(marker))).close()
    assert marker.exists()


@pytest.mark.parametrize("how", ["torch-zip", "raw-pickle", "tensor-dict-plus-payload"])
def test_pickle_payload_in_model_file_is_not_run(checkpoint, tmp_path, how):
    marker = tmp_path / "pwned"
    target = checkpoint / MODEL_FILE
    if how == "torch-zip":
        torch.save(MarkerPayload(marker), target)
    elif how == "raw-pickle":
        target.write_bytes(pickle.dumps(MarkerPayload(marker)))
    else:
        tensors = torch.load(target, weights_only=True)
        torch.save({**tensors, "extra": MarkerPayload(marker)}, target)
    assert not marker.exists()
    message = load_error(checkpoint)
    assert MODEL_FILE in message
    assert not marker.exists()


def test_pickle_payload_via_the_cli_is_not_run(checkpoint, tmp_path, light_dir):
    marker = tmp_path / "pwned"
    torch.save(MarkerPayload(marker), checkpoint / MODEL_FILE)
    proc = subprocess.run(
        [sys.executable, "-m", "gennape", "predict", str(light_dir / "light_zfnet512.onnx"),
         "--checkpoint", str(checkpoint)],
        cwd=ROOT, capture_output=True, text=True, timeout=180, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert not marker.exists()


def test_pickle_payload_in_partial_state_is_not_run(tmp_path):
    """``--resume`` reads partial_state.pt: tensors only, never a pickle."""
    from gennape.pretrain.estimator import PARTIAL_STATE

    marker = tmp_path / "pwned"
    state = tmp_path / "state"
    state.mkdir()
    torch.save(MarkerPayload(marker), state / PARTIAL_STATE)
    cgs, y = tiny_data(16)
    est = GennapeEstimator(**{**tiny_estimator().get_params(), "epochs": 1})
    with pytest.raises(Exception) as err:
        est.fit(cgs, y, state_dir=state, resume=True)
    assert not marker.exists()
    assert isinstance(err.value, GennapeError), f"not a clear error: {type(err.value).__name__}: {err.value}"


@pytest.mark.parametrize("keep", [0, 10, 100, 0.5, -20])
def test_truncated_model_file(checkpoint, keep):
    target = checkpoint / MODEL_FILE
    data = target.read_bytes()
    cut = int(keep * len(data)) if isinstance(keep, float) else keep if keep >= 0 else len(data) + keep
    target.write_bytes(data[:cut])
    assert MODEL_FILE in load_error(checkpoint)


def test_tampered_tensor_bytes_are_detected(checkpoint):
    """Bytes changed inside a tensor's data still unpickle fine; the loader must
    notice all the same (the config records the tensor file's SHA-256)."""
    target = checkpoint / MODEL_FILE
    data = target.read_bytes()
    reference = tiny_estimator()
    cgs, _ = tiny_data(8)
    silent = []
    for k, where in enumerate(np.linspace(0.05, 0.95, 19)):
        tampered = bytearray(data)
        at = int(where * len(data))
        tampered[at] ^= 0x5A
        target.write_bytes(bytes(tampered))
        try:
            est = GennapeEstimator.load(checkpoint)
        except GennapeError as err:
            assert "\n" not in str(err) and MODEL_FILE in str(err)
            continue
        if not np.array_equal(est.predict(cgs), reference.predict(cgs)):
            silent.append(at)
    assert silent == [], f"tampered bytes at {silent} loaded silently and changed predictions"


@pytest.mark.parametrize("text", ["", "{", '{"params": ', "[]", "null", "\xff\xfe"])
def test_truncated_or_malformed_config(checkpoint, text):
    (checkpoint / CONFIG_FILE).write_bytes(text.encode("latin-1"))
    assert CONFIG_FILE in load_error(checkpoint) or str(checkpoint) in load_error(checkpoint)


@pytest.mark.parametrize("key", ["params", "fitted", "fitted.target_transform", "fitted.ood_scale",
                                 "fitted.capacity", "op_vocabulary", "versions", "fitted.n_train", "fitted.history"])
def test_config_missing_a_field(checkpoint, key):
    path = checkpoint / CONFIG_FILE
    config = json.loads(path.read_text())
    *parents, name = key.split(".")
    section = config
    for parent in parents:
        section = section[parent]
    del section[name]
    path.write_text(json.dumps(config))
    message = load_error(checkpoint)
    assert str(checkpoint) in message


@pytest.mark.parametrize("change", ["drop-cluster-centers", "drop-encoder-weight", "reshape-head-weight",
                                    "params-mismatch"])
def test_tensors_that_do_not_match_the_config(checkpoint, change):
    model_path, config_path = checkpoint / MODEL_FILE, checkpoint / CONFIG_FILE
    tensors = torch.load(model_path, weights_only=True)
    config = json.loads(config_path.read_text())
    if change == "drop-cluster-centers":
        del tensors["cluster_centers"]
    elif change == "drop-encoder-weight":
        del tensors[next(k for k in tensors if k.startswith("encoder."))]
    elif change == "reshape-head-weight":
        key = next(k for k in tensors if k.startswith("heads.") and tensors[k].dim() == 2)
        tensors[key] = torch.zeros(tensors[key].shape[0] + 1, tensors[key].shape[1])
    else:
        config["params"]["hidden_channels"] *= 2
    torch.save(tensors, model_path)
    config.pop("model_sha256", None)  # as if made by a tool that does not record it
    config_path.write_text(json.dumps(config))
    load_error(checkpoint)


@pytest.mark.parametrize("versions, named", [
    ({"featurizer_version": 999}, ["featurizer_version 999"]),
    ({"cg_format_version": -1}, ["cg_format_version -1"]),
    ({"package_version": "99.0.0"}, ["package_version 99.0.0"]),
    ({"featurizer_version": 0, "package_version": "7.1"}, ["featurizer_version 0", "package_version 7.1"]),
])
def test_incompatible_versions_are_refused_naming_them(checkpoint, versions, named):
    from gennape.pretrain.checkpoint import current_versions

    path = checkpoint / CONFIG_FILE
    config = json.loads(path.read_text())
    config["versions"].update(versions)
    path.write_text(json.dumps(config))
    message = load_error(checkpoint)
    now = current_versions()
    for text in named:
        assert text in message
        key = text.split()[0]
        assert f"this code: {now[key]}" in message
    for key in set(now) - {t.split()[0] for t in named}:
        assert key not in message


def test_foreign_op_vocabulary_is_refused(checkpoint):
    path = checkpoint / CONFIG_FILE
    config = json.loads(path.read_text())
    config["op_vocabulary"] = config["op_vocabulary"][::-1]
    path.write_text(json.dumps(config))
    assert "vocabulary" in load_error(checkpoint)


def test_not_a_checkpoint(tmp_path, checkpoint):
    assert "not a gennape checkpoint" in load_error(tmp_path)
    shutil.rmtree(checkpoint)
    checkpoint.mkdir()
    (checkpoint / MODEL_FILE).mkdir()
    (checkpoint / CONFIG_FILE).write_text("{}")
    load_error(checkpoint)
