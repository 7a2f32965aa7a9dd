"""Print the canonical-rule table (Markdown) from the rule registry.

``python -m gennape.cg.onnx_import.rules_table > docs/canonical_rules.md``; a test
checks that the committed file is up to date.
"""

from __future__ import annotations

from gennape.cg.onnx_import.canonical import rules


def render() -> str:
    table = rules()
    lines = [
        "# Canonical rules",
        "",
        "Generated from the importer's rule registry (`gennape.cg.onnx_import.canonical`) by",
        "`python -m gennape.cg.onnx_import.rules_table > docs/canonical_rules.md`; do not edit by hand.",
        "",
        "After the op handlers (`docs/supported_ops.md`) have turned every ONNX node into",
        "intermediate nodes, these rules run in this order, each once over the whole graph,",
        "so that one network gives one CG however it was written or exported. The",
        "benchmark-family builders (`gennape.cg.families`) produce the same CGs directly.",
        "",
        f"{len(table)} rules:",
        "",
        "| order | rule | what it does |",
        "|---|---|---|",
    ]
    lines += [f"| {r.order} | {r.name} | {r.description.replace('``', '`').replace('|', '/')} |" for r in table]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
