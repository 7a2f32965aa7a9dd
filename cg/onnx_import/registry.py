"""The op-handler registry: one small handler per ONNX op type.

A handler turns one ONNX node into intermediate-representation (IR) nodes
through a :class:`gennape.cg.onnx_import.context.Context`. Register it with::

    @register("Relu")
    def relu(node, ctx):
        ctx.emit_unary(node, "relu")

``supported_ops()`` lists what the importer understands; it generates
``docs/supported_ops.md`` (``python -m gennape.cg.onnx_import.support_table``).
"""

from __future__ import annotations

from typing import Callable

#: ONNX op type (default domain) -> handler(node, ctx).
HANDLERS: dict[str, Callable] = {}


def register(*op_types: str) -> Callable[[Callable], Callable]:
    """Decorator registering a handler for one or more ONNX op types."""

    def wrap(fn: Callable) -> Callable:
        for op_type in op_types:
            if op_type in HANDLERS:
                raise ValueError(f"ONNX op {op_type!r} already has a handler")
            HANDLERS[op_type] = fn
        return fn

    return wrap


def all_handlers() -> dict[str, Callable]:
    """ONNX op type -> handler, every handler module loaded."""
    _load_handlers()
    return HANDLERS


def supported_ops() -> dict[str, str]:
    """ONNX op type -> the first paragraph of its handler's docstring (what it
    becomes), sorted by op type."""
    _load_handlers()
    return {op: _summary(fn) for op, fn in sorted(HANDLERS.items())}


def _summary(fn: Callable) -> str:
    paragraph = (fn.__doc__ or "").strip().split("\n\n")[0]
    return " ".join(line.strip() for line in paragraph.splitlines()).replace("``", "`")


def _load_handlers() -> None:
    # Importing the package registers every handler module once.
    import gennape.cg.onnx_import.handlers  # noqa: F401
