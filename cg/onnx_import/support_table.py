"""Print the supported-op table (Markdown) from the handler registry.

``python -m gennape.cg.onnx_import.support_table > docs/supported_ops.md``; a test
checks that the committed file is up to date.
"""

from __future__ import annotations

from gennape.cg.onnx_import.registry import supported_ops


def render() -> str:
    ops = supported_ops()
    lines = [
        "# Supported ONNX ops",
        "",
        "Generated from the importer's handler registry by",
        "`python -m gennape.cg.onnx_import.support_table > docs/supported_ops.md`; do not edit by hand.",
        "",
        "Opsets 7 to 21 (default domain). Any op whose inputs are all constant (initializers,",
        "Constant, ConstantOfShape, Shape, Size and what is computed from them) is folded away",
        "whatever its type, so shape-computation subgraphs need no handler. Other op types fail",
        "the conversion listing every unsupported node, unless `--unknown-ops other`",
        "(`unknown_ops=\"other\"`) maps them to `other` nodes.",
        "",
        f"{len(ops)} op types:",
        "",
        "| ONNX op | becomes |",
        "|---|---|",
    ]
    lines += [f"| {op} | {doc.replace('|', '/')} |" for op, doc in ops.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
