"""``gennape predict --workers N``: conversion in worker processes gives the
same output, byte for byte, as one process, and survives a dying worker."""

from __future__ import annotations

import shutil

import pytest

from _transfer_helpers import EXAMPLES
from gennape.cli import main


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    from _hostile import tiny_estimator

    return tiny_estimator().save(tmp_path_factory.mktemp("workers") / "ck")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """The bundled examples and four bad files, spread over several chunks."""
    folder = tmp_path_factory.mktemp("models")
    good = sorted(EXAMPLES.glob("*.onnx"))
    for i, src in enumerate(good):
        shutil.copyfile(src, folder / f"{i:02d}_{src.name}")
    (folder / "03_garbage.onnx").write_bytes(b"not a model")
    (folder / "05_truncated.onnx").write_bytes(good[0].read_bytes()[:200])
    (folder / "07_empty.onnx").write_bytes(b"")
    import onnx
    from _onnx_graphs import model, node

    onnx.save(model([node("Softplus", ["x"], ["y"])]), folder / "09_unsupported.onnx")
    return folder


def _predict(ckpt, folder, out, capsys, *extra) -> tuple[int, str, str]:
    code = main(["predict", str(folder), "--checkpoint", str(ckpt), "-o", str(out), "--chunk-size", "3", *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_two_workers_write_what_one_writes(ckpt, folder, tmp_path, capsys):
    one = _predict(ckpt, folder, tmp_path / "one.csv", capsys)
    two = _predict(ckpt, folder, tmp_path / "two.csv", capsys, "--workers", "2")
    assert one[0] == two[0] == 1  # some files failed, the rest predicted
    assert one[1:] == two[1:]  # table and stderr lines, in the same order
    assert one[2].count("\n") == 5  # four bad files, then the count
    assert (tmp_path / "one.csv").read_bytes() == (tmp_path / "two.csv").read_bytes()
    _predict(ckpt, folder, tmp_path / "one.json", capsys)
    _predict(ckpt, folder, tmp_path / "two.json", capsys, "--workers", "2")
    assert (tmp_path / "one.json").read_bytes() == (tmp_path / "two.json").read_bytes()


def test_a_dying_worker_fails_only_its_file(tmp_path):
    """A file that kills its converter process fails with a one-line cause;
    the files that shared the broken pool are retried and converted."""
    from _dying_converter import convert

    from gennape.cg.graph import CG
    from gennape.transfer.predict import FailedModel
    from gennape.transfer.workers import DIED, _Pool

    good = sorted(EXAMPLES.glob("*.onnx"))[:4]
    files = [good[0], good[1], tmp_path / "die.onnx", good[2], good[3]]
    files[2].write_bytes(good[0].read_bytes())
    pool = _Pool(2, convert, (None, "error"))
    try:
        first, second = files[:3], files[3:]
        futures = [pool.submit(first), pool.submit(second)]
        results = pool.results(first, futures[0]) + pool.results(second, futures[1])
        again = pool.results(second, pool.submit(second))  # the pool works after the crash
    finally:
        pool.close()
    assert [type(r) for r in results] == [CG, CG, FailedModel, CG, CG]
    assert results[2] == FailedModel(str(files[2]), DIED)
    assert [type(r) for r in again] == [CG, CG]
