"""A tiny dependency-free progress bar, shown only on a terminal."""

from __future__ import annotations

import sys
import time


class Progress:
    """``with Progress(total, "embedding") as bar: ... bar.update()``.

    Draws ``label [#####.....] 512/1000 3.1s`` on stderr, redrawing at most
    ten times a second, and nothing at all when stderr is not a TTY (logs and
    CI stay clean).

    Args:
        total: number of steps.
        label: text before the bar.
        stream: where to draw (default ``sys.stderr``).
        enabled: force on or off (default: ``stream.isatty()``).
    """

    def __init__(self, total: int, label: str = "", stream=None, enabled: bool | None = None, width: int = 30):
        self.total, self.label, self.width = max(int(total), 1), label, width
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled if enabled is not None else _isatty(self.stream)
        self.count = 0
        self.start = time.monotonic()
        self._last = 0.0

    def update(self, n: int = 1) -> None:
        self.count += n
        now = time.monotonic()
        if self.enabled and (now - self._last > 0.1 or self.count >= self.total):
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        done = min(self.count / self.total, 1.0)
        filled = int(done * self.width)
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {self.count}/{self.total} {now - self.start:.1f}s")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


__all__ = ["Progress"]
