"""Progress bars for gennape's long loops: tqdm, drawn only on a terminal.

Every long loop (pretraining epochs and ensemble members, packing graphs,
predicting over many files, fine-tuning, search) calls :func:`progress`, so
the look and the "nothing off a terminal" rule live in one place.
"""

from __future__ import annotations

import sys

from tqdm import tqdm


def progress(iterable=None, total: int | None = None, desc: str | None = None, *,
             stream=None, enabled: bool | None = None, leave: bool = True, **kwargs) -> tqdm:
    """A :class:`tqdm.tqdm` bar on ``stream`` (``sys.stderr`` by default).

    Use it as tqdm: ``for x in progress(items, desc="packing"): ...``, or
    ``with progress(total=n, desc="epoch 1/10") as bar: ... bar.update()``.

    Args:
        iterable: what to iterate over (``None`` for a bar updated by hand).
        total: number of steps (default ``len(iterable)`` when it has one).
        desc: text before the bar.
        stream: where to draw (default ``sys.stderr``).
        enabled: force on or off. By default the bar is drawn only when
            ``stream`` is a terminal, so logs, pipes and CI stay clean.
        leave: keep the finished bar on screen.
        **kwargs: further :class:`tqdm.tqdm` options.
    """
    stream = stream if stream is not None else sys.stderr
    if enabled is None:
        enabled = _isatty(stream)
    return tqdm(iterable, total=total, desc=desc, file=stream, disable=not enabled, leave=leave,
                dynamic_ncols=True, **kwargs)


def _isatty(stream) -> bool:
    # tqdm's own ``disable=None`` asks ``stream.isatty()`` too, but fails on
    # a stream without one or a closed one; both count as "not a terminal".
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


__all__ = ["progress"]
