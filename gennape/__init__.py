"""gennape: a generalized neural-architecture performance estimator.

Installed, the subpackages live inside this one: ``gennape.cg``,
``gennape.encoder``, ``gennape.heads``, ``gennape.pretrain``,
``gennape.transfer`` and the command line ``gennape.cli``.

In a source checkout they sit beside this folder, at the repository root (where
the design card keeps them), and ``pyproject.toml`` maps them in at install
time. Running from the checkout's root (``python -m pytest``, ``python -m
gennape``) finds this folder before any installed copy, so the same mapping is
made here: the root joins this package's search path, and ``gennape.cg`` is
``<root>/cg``. An installed gennape has ``gennape/cg`` inside and is left alone.
"""

from pathlib import Path as _Path

_checkout = _Path(__file__).resolve().parent.parent
if not (_Path(__file__).parent / "cg").is_dir() and (_checkout / "cg" / "__init__.py").is_file():
    __path__.append(str(_checkout))  # noqa: F821  (a package's own __path__)
