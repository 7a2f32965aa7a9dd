"""Atomic outputs: prediction files, CG JSON, TFRecords, partial training
state and checkpoints are written to a temporary name and renamed, so a run
interrupted mid-write (simulated: the file system raises KeyboardInterrupt
after a few bytes, or the rename itself fails) leaves the old file intact and
no temporary debris."""

from __future__ import annotations

import builtins
import contextlib
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from _hostile import tiny_data, tiny_estimator

from gennape.pretrain.estimator import GennapeEstimator

OLD = "old contents, must survive\n"


class _Interrupting:
    """A writable file that lets ``budget[0]`` bytes through, then raises
    KeyboardInterrupt (after flushing, so the partial data is on disk)."""

    def __init__(self, real, budget: list[int]):
        self._real = real
        self._budget = budget

    def write(self, data):
        room = self._budget[0]
        if len(data) > room:
            self._real.write(data[:room])
            self._real.flush()
            self._budget[0] = 0
            raise KeyboardInterrupt("simulated interruption mid-write")
        self._budget[0] -= len(data)
        return self._real.write(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._real.close()
        return False

    def __getattr__(self, name):
        return getattr(self._real, name)


@contextlib.contextmanager
def interrupted_writes(monkeypatch, after_bytes: int = 8):
    """Every file opened for writing (``open``, ``io.open``, ``os.fdopen``,
    ``Path.write_*``) is interrupted after ``after_bytes`` bytes in total."""
    real_open = io.open
    budget = [after_bytes]

    def opener(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        return _Interrupting(f, budget) if any(c in mode for c in "wax+") else f

    monkeypatch.setattr(io, "open", opener)
    monkeypatch.setattr(builtins, "open", opener)
    try:
        yield
    finally:
        monkeypatch.setattr(io, "open", real_open)
        monkeypatch.setattr(builtins, "open", real_open)


def failing_replace(monkeypatch, fail_on: int = 1):
    """``os.replace`` raises on its ``fail_on``-th call (the crash before a rename)."""
    real = os.replace
    calls = [0]

    def replace(src, dst, *args, **kwargs):
        calls[0] += 1
        if calls[0] == fail_on:
            raise KeyboardInterrupt(f"simulated interruption before rename {fail_on}")
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    return calls


def folder_listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# -------------------------------------------------------- prediction files
@pytest.fixture(scope="module")
def prediction_run():
    from gennape.transfer.predict import predict_cgs, assign_ranks, PredictionRun

    cgs, _ = tiny_data(6, seed=5)
    run = PredictionRun(predict_cgs(tiny_estimator(), cgs, [f"net{i}.onnx" for i in range(6)]), checkpoint="t")
    assign_ranks(run.predictions)
    return run


@pytest.mark.parametrize("suffix", [".csv", ".json"])
@pytest.mark.parametrize("how", ["mid-write", "before-rename"])
def test_prediction_file_survives_an_interruption(tmp_path, monkeypatch, prediction_run, suffix, how):
    from gennape.transfer.predict import write_output

    out = tmp_path / f"predictions{suffix}"
    out.write_text(OLD)
    with pytest.raises(KeyboardInterrupt):
        if how == "mid-write":
            with interrupted_writes(monkeypatch):
                write_output(prediction_run, out)
        else:
            failing_replace(monkeypatch)
            write_output(prediction_run, out)
    monkeypatch.undo()
    assert out.read_text() == OLD
    assert folder_listing(tmp_path) == [out.name]
    write_output(prediction_run, out)  # and an uninterrupted write replaces it whole
    text = out.read_text()
    assert text != OLD and (json.loads(text) if suffix == ".json" else text.count("\n") == 7)


def test_predict_cli_output_survives_an_interruption(tmp_path, monkeypatch, light_dir, capsys):
    from gennape.cli import main

    tiny_estimator().save(tmp_path / "ck")
    out = tmp_path / "out.csv"
    out.write_text(OLD)
    args = ["predict", str(light_dir / "light_zfnet512.onnx"), "--checkpoint", str(tmp_path / "ck"),
            "--output", str(out), "--quiet"]
    with interrupted_writes(monkeypatch):
        code = main(args)
    monkeypatch.undo()
    assert code == 130 and "interrupted" in capsys.readouterr().err
    assert out.read_text() == OLD
    assert folder_listing(tmp_path) == ["ck", "out.csv"]
    assert main(args) == 0 and out.read_text().startswith("path,predicted_accuracy")


def test_convert_json_survives_an_interruption(tmp_path, monkeypatch, light_dir):
    from gennape.cli import main

    out = tmp_path / "cg.json"
    out.write_text(OLD)
    args = ["convert", str(light_dir / "light_zfnet512.onnx"), "--json", str(out)]
    with interrupted_writes(monkeypatch, after_bytes=100):
        assert main(args) == 130
    monkeypatch.undo()
    assert out.read_text() == OLD and folder_listing(tmp_path) == ["cg.json"]
    assert main(args) == 0 and json.loads(out.read_text())["summary"]["num_nodes"] > 0


def test_tfrecord_survives_an_interruption(tmp_path, monkeypatch):
    from gennape.cg.families.tfrecord import read_tfrecord, write_tfrecord

    path = tmp_path / "data.tfrecord"
    write_tfrecord(path, [b"old"] * 3)
    before = path.read_bytes()
    with interrupted_writes(monkeypatch, after_bytes=30), pytest.raises(KeyboardInterrupt):
        write_tfrecord(path, [b"new" * 10] * 5)
    monkeypatch.undo()
    assert path.read_bytes() == before and list(read_tfrecord(path)) == [b"old"] * 3
    assert folder_listing(tmp_path) == ["data.tfrecord"]


# -------------------------------------------------------------- checkpoints
@pytest.fixture()
def saved(tmp_path):
    """(checkpoint folder, predictions it gives)."""
    path = tmp_path / "ck"
    tiny_estimator().save(path)
    cgs, _ = tiny_data(8, seed=9)
    return path, GennapeEstimator.load(path).predict(cgs), cgs


def _other_estimator():
    from _hostile import TINY_PARAMS

    cgs, y = tiny_data(24, seed=4)
    return GennapeEstimator(**{**TINY_PARAMS, "head_epochs": 2, "epochs": 1, "seed": 8}).fit(cgs, y)


@pytest.fixture(scope="module")
def other_estimator():
    return _other_estimator()


def _check_old_checkpoint(saved, tmp_path):
    path, before, cgs = saved
    assert folder_listing(tmp_path) == ["ck"], "temporary debris or a missing checkpoint"
    np.testing.assert_array_equal(GennapeEstimator.load(path).predict(cgs), before)


def test_checkpoint_survives_interrupted_tensor_write(tmp_path, monkeypatch, saved, other_estimator):
    real_save = torch.save

    def partial_save(obj, f, *args, **kwargs):
        buf = io.BytesIO()
        real_save(obj, buf, *args, **kwargs)
        Path(f).write_bytes(buf.getvalue()[:1000])
        raise KeyboardInterrupt("simulated interruption while writing tensors")

    monkeypatch.setattr(torch, "save", partial_save)
    with pytest.raises(KeyboardInterrupt):
        other_estimator.save(saved[0])
    monkeypatch.undo()
    _check_old_checkpoint(saved, tmp_path)


def test_checkpoint_survives_interrupted_config_write(tmp_path, monkeypatch, saved, other_estimator):
    with interrupted_writes(monkeypatch, after_bytes=50), pytest.raises(KeyboardInterrupt):
        other_estimator.save(saved[0])
    monkeypatch.undo()
    _check_old_checkpoint(saved, tmp_path)


@pytest.mark.parametrize("fail_on", [1, 2])
def test_checkpoint_survives_interruption_between_renames(tmp_path, monkeypatch, saved, other_estimator, fail_on):
    """Rename 1 moves the old checkpoint aside, rename 2 moves the new one in:
    an interruption at either leaves the old checkpoint in place."""
    failing_replace(monkeypatch, fail_on)
    with pytest.raises(KeyboardInterrupt):
        other_estimator.save(saved[0])
    monkeypatch.undo()
    _check_old_checkpoint(saved, tmp_path)


def test_interrupted_first_checkpoint_leaves_nothing(tmp_path, monkeypatch, other_estimator):
    failing_replace(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        other_estimator.save(tmp_path / "new")
    monkeypatch.undo()
    assert folder_listing(tmp_path) == []


def test_completed_checkpoint_replaces_the_old_one(tmp_path, saved, other_estimator):
    path, before, cgs = saved
    other_estimator.save(path)
    assert folder_listing(tmp_path) == ["ck"]
    np.testing.assert_array_equal(GennapeEstimator.load(path).predict(cgs), other_estimator.predict(cgs))


def test_partial_training_state_survives_an_interruption(tmp_path, monkeypatch):
    """``--resume`` state: after an interrupted save the previous epoch's
    state is still there and resumes."""
    from _hostile import TINY_PARAMS

    from gennape.pretrain.estimator import PARTIAL_STATE

    cgs, y = tiny_data(16, seed=2)
    params = {**TINY_PARAMS, "epochs": 2, "head_epochs": 2}
    GennapeEstimator(**params).fit(cgs, y, state_dir=tmp_path)
    state = tmp_path / PARTIAL_STATE
    before = state.read_bytes()
    with interrupted_writes(monkeypatch, after_bytes=100), pytest.raises(KeyboardInterrupt):
        GennapeEstimator(**params).fit(cgs, y, state_dir=tmp_path)  # a fresh run, cut at its first save
    monkeypatch.undo()
    assert state.read_bytes() == before and folder_listing(tmp_path) == [PARTIAL_STATE]
    resumed = GennapeEstimator(**params).fit(cgs, y, state_dir=tmp_path, resume=True)
    assert len(resumed.history_) == 2
