"""Atomic file writes: a temporary sibling, then a rename.

An interrupted run leaves either the old file or the new one, never half of
one. Used for every file gennape writes (CG JSON, ONNX exports, caches,
prediction tables, checkpoints).
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_write(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` on success.

    Args:
        path: the file to (re)write.
        mode: ``"w"`` for text or ``"wb"`` for bytes.

    The file gets the permissions a plain ``open`` would give (0666 less the
    umask), not ``mkstemp``'s 0600.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode {mode!r}; valid modes: w, wb")
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_write(path, "w") as f:
        f.write(text)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_write(path, "wb") as f:
        f.write(data)
