"""Where the benchmark data lives: ``$GENNAPE_DATA``, default ``../shared/data``."""

from __future__ import annotations

import os
from pathlib import Path

from gennape.cg.errors import GennapeError

#: Repository root when running from a checkout (the folder holding ``cg/``).
_REPO_ROOT = Path(__file__).resolve().parent.parent


def data_dir(required: bool = True) -> Path | None:
    """The shared data folder.

    ``$GENNAPE_DATA`` if set; else ``../shared/data`` relative to the current
    directory, then relative to the repository root. With ``required=False``
    returns None instead of raising when no folder exists.
    """
    env = os.environ.get("GENNAPE_DATA")
    candidates = [Path(env)] if env else [Path("../shared/data"), _REPO_ROOT.parent / "shared" / "data"]
    for path in candidates:
        if path.is_dir():
            return path.resolve()
    if not required:
        return None
    where = env or " or ".join(str(c) for c in candidates)
    raise GennapeError(
        f"benchmark data folder not found ({where}); set GENNAPE_DATA to the folder "
        "holding nb101/, nb201/, nb301/ and ofa_mbv3/"
    )


def data_file(*parts: str) -> Path:
    """A file inside the data folder, with a clear error when it is missing."""
    path = data_dir().joinpath(*parts)
    if not path.is_file():
        raise GennapeError(f"{path}: benchmark data file not found")
    return path
