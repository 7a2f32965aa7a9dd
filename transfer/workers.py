"""Converting ONNX files chunk by chunk, in this process or in worker processes.

:func:`converted_chunks` yields, for each chunk of ``chunk_size`` files in
order, the conversion result of every file of the chunk in order: a CG or a
:class:`gennape.transfer.predict.FailedModel`. With ``workers`` > 1 the files are
converted by a pool of processes (forkserver where the platform has it, else
spawn: the parent holds torch and its threads, which must not be forked), each
running the same :func:`gennape.transfer.predict.convert_file`, so the results
and failure messages are those of one process. At most two chunks are in
flight (the one the caller is predicting and the next one converting), so
memory stays flat whatever the number of files.

A worker that dies (a crash in a native library, the OOM killer) breaks the
pool and every conversion it held; those files are then retried one at a time
in a fresh single-worker pool, so only the file that kills its process again
fails ("the converter process died"), and the run goes on with a new pool.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Iterator, Sequence

#: Modules the forkserver imports once, so that each worker starts converting at once.
PRELOAD = ["gennape.cg.onnx_import", "gennape.transfer.predict"]

DIED = "the converter process died (a crash in a native library, or killed for memory)"


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def converted_chunks(files: Sequence[Path], chunk_size: int, workers: int = 1, *, input_shape=None,
                     unknown_ops: str = "error") -> Iterator[list]:
    """Per chunk of ``files`` (in order), the list of conversion results (in order).

    Args:
        files: ONNX files.
        chunk_size: files per chunk (at least 1).
        workers: processes converting; 1 converts in this process.
        input_shape, unknown_ops: forwarded to :func:`gennape.cg.from_onnx`.
    """
    from gennape.transfer.predict import convert_file

    chunks = _chunks(list(files), max(1, chunk_size))
    if workers <= 1:
        for chunk in chunks:
            yield [convert_file(path, input_shape, unknown_ops) for path in chunk]
        return
    pool = _Pool(workers, convert_file, (input_shape, unknown_ops))
    try:
        in_flight: deque[tuple[Sequence[Path], list[Future]]] = deque()
        for chunk in chunks:
            in_flight.append((chunk, pool.submit(chunk)))
            if len(in_flight) == 2:
                yield pool.results(*in_flight.popleft())
        while in_flight:
            yield pool.results(*in_flight.popleft())
    finally:
        pool.close()


def _context():
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if ctx.get_start_method() == "forkserver":
        ctx.set_forkserver_preload(PRELOAD)
    return ctx


class _Pool:
    """A process pool that survives a dying worker (see the module docstring)."""

    def __init__(self, workers: int, convert, options: tuple):
        self.workers = workers
        self.convert = convert  # a module-level function: workers import it by name
        self.options = options
        self.ctx = _context()
        self.executor = self._new(workers)

    def _new(self, workers: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=workers, mp_context=self.ctx)

    def submit(self, chunk: Sequence[Path]) -> list[Future]:
        try:
            return [self.executor.submit(self.convert, path, *self.options) for path in chunk]
        except BrokenProcessPool:  # broken by an earlier chunk: results() retries these
            return [_broken() for _ in chunk]

    def results(self, chunk: Sequence[Path], futures: list[Future]) -> list:
        out, broken = [], False
        for path, future in zip(chunk, futures):
            try:
                out.append(future.result())
            except BrokenProcessPool:
                broken = True
                out.append(self._alone(path))
        if broken:  # later chunks need live workers
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = self._new(self.workers)
        return out

    def _alone(self, path: Path):
        """Convert ``path`` in a process of its own: its CG, or DIED if that process dies too."""
        from gennape.transfer.predict import FailedModel

        with self._new(1) as single:
            try:
                return single.submit(self.convert, path, *self.options).result()
            except BrokenProcessPool:
                return FailedModel(str(path), DIED)

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


def _broken() -> Future:
    future: Future = Future()
    future.set_exception(BrokenProcessPool("the pool was already broken"))
    return future


__all__ = ["converted_chunks", "PRELOAD", "DIED"]
