"""Determinism on CPU: the same input and checkpoint give bit-identical
predictions in one process, after a save/load, and in other processes (the
``gennape predict`` CLI included); fitting and fine-tuning with a seed are
reproducible, whatever the global random states."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _hostile import TINY_PARAMS, tiny_data, tiny_estimator

from gennape.pretrain.estimator import GennapeEstimator

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
SMALL_LIGHT = ("bvlc_alexnet", "zfnet512", "squeezenet", "vgg19")


def details_bytes(est, cgs) -> dict[str, bytes]:
    return {k: np.ascontiguousarray(v).tobytes() for k, v in est.predict_details(cgs).items()}


def state_bytes(est) -> bytes:
    h = hashlib.sha256()
    for name, tensor in sorted(est.model_.state_dict().items()):  # encoder, heads and their buffers
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    h.update(repr(est.capacity_).encode())
    return h.digest()


def test_predictions_repeat_bit_for_bit():
    est = tiny_estimator()
    cgs, _ = tiny_data(24, seed=7)
    first = details_bytes(est, cgs)
    assert details_bytes(est, cgs) == first



def test_batch_composition_changes_only_float_rounding():
    """A graph's prediction does not depend on the other graphs of its batch
    beyond float32 rounding: the GNN's matrix products take other code paths
    for other batch sizes, so the last bits may differ (measured: about 1e-8
    relative, 2e-7 absolute on the score, 1e-6 on an OOD score near 0),
    never the ranks of clearly different networks."""
    est = tiny_estimator()
    cgs, _ = tiny_data(24, seed=7)
    order = np.random.default_rng(0).permutation(len(cgs))
    shuffled = est.predict_details([cgs[i] for i in order])
    back = est.predict_details(cgs)
    for key in ("accuracy", "score", "memberships"):
        np.testing.assert_allclose(back[key][order], shuffled[key], rtol=1e-5, atol=1e-6, err_msg=key)
    # torch.cdist's matrix-product path: distances near zero carry ~1e-6 of noise.
    np.testing.assert_allclose(back["ood_score"][order], shuffled["ood_score"], rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(back["ood"][order], shuffled["ood"])
    single = np.concatenate([est.predict([cg]) for cg in cgs[:6]])
    np.testing.assert_allclose(single, est.predict(cgs[:6]), rtol=1e-5)


def test_save_load_predicts_bit_for_bit(tmp_path):
    est = tiny_estimator()
    cgs, _ = tiny_data(24, seed=7)
    est.save(tmp_path / "ck")
    assert details_bytes(GennapeEstimator.load(tmp_path / "ck"), cgs) == details_bytes(est, cgs)


_PREDICT_IN_CHILD = """
import json, sys
sys.path.insert(0, {tests!r})
from _hostile import tiny_data
from gennape.pretrain.estimator import GennapeEstimator
cgs, _ = tiny_data(24, seed=7)
out = GennapeEstimator.load({ck!r}).predict_details(cgs)
print(json.dumps({{k: v.tobytes().hex() for k, v in out.items()}}))
"""


def test_predictions_are_identical_in_another_process(tmp_path):
    """Also with another thread count (the tests run single-threaded)."""
    est = tiny_estimator()
    cgs, _ = tiny_data(24, seed=7)
    est.save(tmp_path / "ck")
    code = _PREDICT_IN_CHILD.format(tests=str(TESTS), ck=str(tmp_path / "ck"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=180,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    here = {k: np.ascontiguousarray(v).tobytes().hex() for k, v in est.predict_details(cgs).items()}
    assert child == here


def test_cli_predict_is_identical_across_processes(tmp_path, light_dir):
    tiny_estimator().save(tmp_path / "ck")
    files = [str(light_dir / f"light_{name}.onnx") for name in SMALL_LIGHT]
    out = tmp_path / "out.json"
    proc = subprocess.run([sys.executable, "-m", "gennape", "predict", *files, "--checkpoint",
                           str(tmp_path / "ck"), "--output", str(out), "--quiet"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    from gennape.transfer.predict import predict_files, to_json

    for _ in range(2):
        run = predict_files([Path(f) for f in files], GennapeEstimator.load(tmp_path / "ck"))
        run.checkpoint = "x"
        here = json.loads(to_json(run))
        assert json.loads(out.read_text())["predictions"] == here["predictions"]  # floats compared exactly


def _fit(seed: int):
    cgs, y = tiny_data()
    return GennapeEstimator(**{**TINY_PARAMS, "seed": seed}).fit(cgs, y)


def test_fit_is_reproducible_whatever_the_global_state():
    torch.manual_seed(1234)
    np.random.seed(99)
    a = _fit(3)
    torch.manual_seed(4321)
    np.random.seed(7)
    torch.rand(10)
    b = _fit(3)
    assert state_bytes(a) == state_bytes(b) == state_bytes(tiny_estimator())
    cgs, _ = tiny_data(24, seed=7)
    assert details_bytes(a, cgs) == details_bytes(b, cgs)
    assert state_bytes(_fit(4)) != state_bytes(a)  # the seed matters


def test_fit_leaves_global_random_states_alone():
    torch.manual_seed(5)
    np.random.seed(5)
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    _fit(3)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state()[1:2], np_state[1:2]))


_FIT_IN_CHILD = """
import sys
sys.path.insert(0, {tests!r})
import torch
torch.set_num_threads(1)
from _hostile import TINY_PARAMS, tiny_data
from gennape.pretrain.estimator import GennapeEstimator
cgs, y = tiny_data()
GennapeEstimator(**TINY_PARAMS).fit(cgs, y).save({out!r})
"""


def test_fit_is_reproducible_across_processes(tmp_path):
    from gennape.pretrain.checkpoint import MODEL_FILE

    code = _FIT_IN_CHILD.format(tests=str(TESTS), out=str(tmp_path / "child"))
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert state_bytes(GennapeEstimator.load(tmp_path / "child")) == state_bytes(tiny_estimator())
    tiny_estimator().save(tmp_path / "here")
    here = torch.load(tmp_path / "here" / MODEL_FILE, weights_only=True)
    child = torch.load(tmp_path / "child" / MODEL_FILE, weights_only=True)
    assert here.keys() == child.keys()
    assert all(torch.equal(here[k], child[k]) for k in here)


@pytest.mark.parametrize("mode", ["heads", "encoder"])
def test_finetune_is_reproducible(mode):
    from gennape.transfer.finetune import FinetuneConfig, finetune_estimator

    est = tiny_estimator()
    before = state_bytes(est)
    cgs, y = tiny_data(16, seed=11)
    config = FinetuneConfig(mode=mode, epochs=5, seed=2)
    torch.manual_seed(0)
    a = finetune_estimator(est, cgs, y * 0.9, config)
    torch.manual_seed(1)
    np.random.seed(1)
    b = finetune_estimator(est, cgs, y * 0.9, config)
    assert state_bytes(a) == state_bytes(b)
    test, _ = tiny_data(12, seed=12)
    assert details_bytes(a, test) == details_bytes(b, test)
    assert state_bytes(est) == before  # the pretrained estimator is untouched


def test_pretrain_cli_is_reproducible_with_a_seed(data_dir, tmp_path, capsys):
    """``gennape pretrain`` (data loading, hash split, graph-level views,
    contrastive epochs, clustering, heads) twice with one seed: the same tensors."""
    from gennape.cli import main
    from gennape.pretrain.checkpoint import MODEL_FILE

    tensors = []
    for run in range(2):
        torch.manual_seed(run)
        np.random.seed(run)
        out = tmp_path / f"run{run}"
        code = main(["pretrain", "--data", str(data_dir / "nb101" / "nb101_30k_labelled.json.gz"), "--out", str(out),
                     "--limit", "60", "--epochs", "1", "--head-epochs", "5", "--views", "--seed", "3",
                     "--threads", "1"])
        assert code == 0, capsys.readouterr().err
        tensors.append(torch.load(out / MODEL_FILE, weights_only=True))
    assert tensors[0].keys() == tensors[1].keys()
    assert all(torch.equal(tensors[0][k], tensors[1][k]) for k in tensors[0])
