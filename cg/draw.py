"""Render a CG for a person to look at: SVG (no dependency) or PNG (matplotlib).

Nodes are laid out in layers by their longest distance from an input, top to
bottom; each box shows the op and its output shape, coloured by op family.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

from gennape.cg.atomic import write_text_atomic
from gennape.cg.errors import GennapeError
from gennape.cg.graph import CG

BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 150, 34, 20, 26, 20

#: Fill colour per op family.
COLOURS = {
    "io": "#d9d9d9", "conv": "#9ecae1", "linear": "#c6dbef", "norm": "#fdd0a2",
    "act": "#c7e9c0", "pool": "#dadaeb", "merge": "#fcbba1", "move": "#f0f0f0", "other": "#fb6a4a",
}
FAMILY = {
    "input": "io", "output": "io", "conv": "conv", "group_conv": "conv", "depthwise_conv": "conv",
    "linear": "linear", "matmul": "linear", "batch_norm": "norm", "layer_norm": "norm", "lrn": "norm",
    "add": "merge", "mul": "merge", "concat": "merge", "max_pool": "pool", "avg_pool": "pool",
    "global_avg_pool": "pool", "global_max_pool": "pool", "resize": "move", "reshape": "move",
    "slice": "move", "other": "other",
}


def layout(cg: CG) -> list[tuple[float, float]]:
    """Box centre (x, y) per node: layer = longest path from a source."""
    layer = [0] * cg.num_nodes
    for s, d in cg.edges:  # edges point forward in the canonical order
        layer[d] = max(layer[d], layer[s] + 1)
    rows: dict[int, list[int]] = {}
    for i, lv in enumerate(layer):
        rows.setdefault(lv, []).append(i)
    widest = max((len(r) for r in rows.values()), default=1)
    pos = [(0.0, 0.0)] * cg.num_nodes
    for lv, ids in rows.items():
        offset = (widest - len(ids)) * (BOX_W + GAP_X) / 2
        for k, i in enumerate(ids):
            x = MARGIN + offset + k * (BOX_W + GAP_X) + BOX_W / 2
            y = MARGIN + lv * (BOX_H + GAP_Y) + BOX_H / 2
            pos[i] = (x, y)
    return pos


def _label(node) -> tuple[str, str]:
    shape = "x".join(map(str, node.out_shape))
    extra = f" {node.kernel[0]}x{node.kernel[1]}" if node.kernel != (1, 1) else ""
    if node.stride != (1, 1):
        extra += f"/{node.stride[0]}"
    return node.op + extra, shape


def to_svg(cg: CG) -> str:
    pos = layout(cg)
    width = max((x for x, _ in pos), default=0) + BOX_W / 2 + MARGIN
    height = max((y for _, y in pos), default=0) + BOX_H / 2 + MARGIN
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'font-family="sans-serif" font-size="11">',
        f"<title>{escape(cg.name or 'CG')}</title>",
        '<defs><marker id="a" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" '
        'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
    ]
    for s, d in cg.edges:
        (x1, y1), (x2, y2) = pos[s], pos[d]
        out.append(f'<line x1="{x1:.1f}" y1="{y1 + BOX_H / 2:.1f}" x2="{x2:.1f}" y2="{y2 - BOX_H / 2:.1f}" '
                   'stroke="#555" marker-end="url(#a)"/>')
    for node, (x, y) in zip(cg.nodes, pos):
        top, bottom = _label(node)
        fill = COLOURS[FAMILY.get(node.op, "act")]
        out.append(f'<g><rect x="{x - BOX_W / 2:.1f}" y="{y - BOX_H / 2:.1f}" width="{BOX_W}" height="{BOX_H}" '
                   f'rx="4" fill="{fill}" stroke="#333"/>'
                   f'<text x="{x:.1f}" y="{y - 3:.1f}" text-anchor="middle">{escape(top)}</text>'
                   f'<text x="{x:.1f}" y="{y + 11:.1f}" text-anchor="middle" fill="#444">{escape(bottom)}</text></g>')
    out.append("</svg>")
    return "\n".join(out)


def to_png(cg: CG, path: Path, dpi: int = 100) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import FancyBboxPatch
    except ImportError:
        raise GennapeError(
            "PNG drawing needs matplotlib: pip install 'gennape[plot]' (or draw to a .svg file)"
        ) from None
    pos = layout(cg)
    width = max((x for x, _ in pos), default=0) + BOX_W / 2 + MARGIN
    height = max((y for _, y in pos), default=0) + BOX_H / 2 + MARGIN
    # Cap the canvas so huge graphs still render (about 30k pixels tall at most).
    scale = min(1.0, 30000 / max(height, 1))
    fig = plt.figure(figsize=(width * scale / dpi, height * scale / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    for s, d in cg.edges:
        (x1, y1), (x2, y2) = pos[s], pos[d]
        ax.annotate("", xy=(x2, y2 - BOX_H / 2), xytext=(x1, y1 + BOX_H / 2),
                    arrowprops=dict(arrowstyle="->", color="#555", lw=0.8))
    for node, (x, y) in zip(cg.nodes, pos):
        top, bottom = _label(node)
        ax.add_patch(FancyBboxPatch((x - BOX_W / 2, y - BOX_H / 2), BOX_W, BOX_H,
                                    boxstyle="round,pad=0,rounding_size=4",
                                    fc=COLOURS[FAMILY.get(node.op, "act")], ec="#333", lw=0.8))
        ax.text(x, y, f"{top}\n{bottom}", ha="center", va="center", fontsize=8 * scale)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def draw(cg: CG, path: str | Path) -> None:
    """Write ``cg`` as ``.svg`` (always available) or ``.png`` (needs matplotlib)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".svg":
        try:
            write_text_atomic(path, to_svg(cg))
        except OSError as err:
            raise GennapeError(f"{path}: cannot write ({err.strerror})") from None
    elif suffix == ".png":
        to_png(cg, path)
    else:
        raise GennapeError(f"{path}: cannot draw to {suffix or 'a file without extension'}; valid: .svg, .png")
