"""User-facing errors. The CLI prints them as one line and exits with code 2."""

from __future__ import annotations

from pathlib import Path


class GennapeError(Exception):
    """Bad input or a refused operation, worth one line to the user (never a bug)."""


def one_line(text: str) -> str:
    """``text`` with line breaks and other unprintable characters escaped
    (``\\n``, ``\\x00``): names read from a hostile file must not break an
    error message over several lines."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


class ConversionError(GennapeError):
    """A model file could not become a computation graph.

    Args:
        source: the file (or a short description of an in-memory model).
        cause: what is wrong, in a few words.
    """

    def __init__(self, source: str | Path, cause: str):
        self.source = one_line(str(source))
        self.cause = one_line(cause)
        super().__init__(f"{self.source}: {self.cause}")


class UnsupportedOpsError(ConversionError):
    """The model uses ONNX ops with no handler; lists every one at once."""

    def __init__(self, source: str | Path, unsupported: list[tuple[str, str]]):
        self.unsupported = unsupported
        kinds = sorted({op for op, _ in unsupported})
        shown = ", ".join(f"{op} ({name or '<unnamed>'})" for op, name in unsupported[:20])
        more = f" and {len(unsupported) - 20} more" if len(unsupported) > 20 else ""
        super().__init__(
            source,
            f"unsupported ONNX op type(s) {', '.join(kinds)}: {shown}{more}; "
            "see docs/supported_ops.md or `gennape convert --list-ops`, "
            "or pass --unknown-ops other to map them to 'other'",
        )
