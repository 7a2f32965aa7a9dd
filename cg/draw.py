"""Render a CG for a person to look at: SVG (no dependency), PNG (matplotlib)
and Graphviz DOT.

The SVG / PNG picture is meant to fit one screen:

* **Repeated blocks are drawn once.** The canonical node order is cut at
  every node that no edge jumps over (all paths pass through it: a cell's or
  a residual block's output); a run of identical pieces in a row (same nodes,
  shapes and wiring, e.g. the five cells of an NB-201 stage or the identity
  blocks of a ResNet stage) is drawn once inside a frame labelled ``x N``.
* **Columns.** Nodes are laid out in layers by their longest distance from an
  input, top to bottom; a drawing still too tall for a screen is split, where
  a single node holds a layer if possible, into side-by-side columns.

Each box shows the op and its output shape, coloured by op family. The DOT
file holds the whole graph, every node and edge (repeats are grouped in
clusters), for ``dot -Tsvg`` and the tools people know.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from gennape.cg.atomic import write_text_atomic
from gennape.cg.errors import GennapeError
from gennape.cg.graph import CG

BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 150, 34, 20, 26, 24
#: Space between columns, around a repeat frame and for its "x N" label.
COLUMN_GAP, FRAME_PAD, LABEL_W = 70, 8, 30
#: How far a skip edge along a chain bows out to the right.
SKIP_BULGE = 28
#: Longest repeated block looked for, in pieces (keeps the search linear in the graph's size).
MAX_PERIOD = 64
#: The screen a drawing should fit (pixels); taller drawings get more columns.
SCREEN_W, SCREEN_H = 1800, 1000

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


# ------------------------------------------------------------ repeated blocks
@dataclass(frozen=True)
class Repeat:
    """Identical blocks in a row: ``copies[k][j]`` is node ``j`` of copy ``k``,
    in an order that matches node for node across the copies."""

    copies: tuple[tuple[int, ...], ...]

    @property
    def count(self) -> int:
        return len(self.copies)


def segments(cg: CG) -> list[range]:
    """The canonical node order cut after every node that no edge jumps over.

    Edges point forward, so an edge into a piece can only come from the cut
    node just before it, and only its last node feeds what follows.
    """
    n = cg.num_nodes
    jumped = [0] * (n + 1)
    for s, d in cg.edges:  # difference array: positions s+1 .. d-1 are jumped over
        if d > s + 1:
            jumped[s + 1] += 1
            jumped[d] -= 1
    out, start, covered = [], 0, 0
    for i in range(n):
        covered += jumped[i]
        if covered == 0:
            out.append(range(start, i + 1))
            start = i + 1
    if start < n:
        out.append(range(start, n))
    return out


def _piece_form(cg: CG, piece: range, preds: list[list[int]]) -> tuple[tuple, tuple[int, ...]]:
    """A piece's form (equal for pieces that draw the same) and its nodes in a matching order.

    The canonical order of a whole network does not order the nodes of two
    identical cells alike, so each node is named by a digest of itself and,
    in input-slot order, of what feeds it (the piece's entry counts as one
    name); nodes sorted by name match across copies.
    """
    import hashlib

    name: dict[int, str] = {}
    for i in piece:  # sources come first: edges point forward
        feeds = [name.get(s, "entry") for s in preds[i]]
        name[i] = hashlib.sha1(repr((cg.nodes[i].structural_key(), feeds)).encode()).hexdigest()
    order = tuple(sorted(piece, key=lambda i: (name[i], i)))
    return tuple(name[i] for i in order), order


def find_repeats(cg: CG) -> list[Repeat]:
    """Runs of identical consecutive blocks (one or more :func:`segments`), the run
    that hides the most nodes first at each place."""
    preds = cg.predecessors()
    pieces = segments(cg)
    forms, orders = zip(*(_piece_form(cg, p, preds) for p in pieces)) if pieces else ((), ())

    def best_run(i: int) -> tuple[int, int, int]:  # (nodes hidden, period, count) of the best run at piece i
        best = (0, 0, 0)
        for period in range(1, min(MAX_PERIOD, (len(pieces) - i) // 2) + 1):
            count = 1
            while forms[i + count * period:i + (count + 1) * period] == forms[i:i + period]:
                count += 1
            size = pieces[i + period - 1].stop - pieces[i].start
            if count > 1 and size > 1:  # a run of one node stays as it is
                best = max(best, (size * (count - 1), period, count))
        return best

    repeats, i = [], 0
    while i < len(pieces):
        hidden, period, count = best_run(i)
        if count and len(pieces[i]) == 1 and i + 1 < len(pieces) and best_run(i + 1)[0] >= hidden:
            i += 1  # a lone node (a ResNet block's closing relu) ends the block before it, not starts the next
            continue
        if count:
            repeats.append(Repeat(tuple(
                sum(orders[i + k * period:i + (k + 1) * period], ()) for k in range(count))))
            i += period * count
        else:
            i += 1
    return repeats


# ------------------------------------------------------------------ layout
@dataclass
class Drawing:
    """What the SVG and PNG writers draw.

    Attributes:
        boxes: ``(node index, x, y)`` box centres of the drawn nodes.
        edges: ``(src, dst, points)`` of the drawn edges: four points of a
            cubic curve (``len == 4``) or a polyline's corners (more).
        frames: ``(x, y, w, h, label)`` of each drawn repeat.
        width, height: the canvas.
    """

    boxes: list[tuple[int, float, float]]
    edges: list[tuple[int, int, list[tuple[float, float]]]]
    frames: list[tuple[float, float, float, float, str]]
    width: float
    height: float


def layout(cg: CG, collapse: bool = True) -> Drawing:
    """Place the drawn nodes: repeats once, layers top to bottom, columns when tall."""
    if not cg.nodes:
        return Drawing([], [], [], 2 * MARGIN, 2 * MARGIN)
    rep_of = list(range(cg.num_nodes))  # node -> the node drawn for it
    repeats = find_repeats(cg) if collapse else []
    for r in repeats:
        for copy in r.copies[1:]:
            for i, first in zip(copy, r.copies[0]):
                rep_of[i] = first
    drawn = sorted(set(rep_of))
    # An edge from one copy to the next maps backwards (the loop): not drawn.
    pairs = sorted({(rep_of[s], rep_of[d]) for s, d in cg.edges if rep_of[s] < rep_of[d]})
    layer = {i: 0 for i in drawn}
    for s, d in pairs:  # sorted by source: sources are final before they are read
        layer[d] = max(layer[d], layer[s] + 1)
    rows: dict[int, list[int]] = {}
    for i in drawn:
        rows.setdefault(layer[i], []).append(i)
    inside = set()  # layers after which a column break would cut a frame
    for r in repeats:
        levels = [layer[i] for i in r.copies[0]]
        inside.update(range(min(levels), max(levels)))
    columns = _split_columns(rows, pairs, inside)
    col_w = [max(len(rows[lv]) for lv in col) * (BOX_W + GAP_X) - GAP_X for col in columns]
    boxes, column_of, right_of, x0 = [], {}, [], MARGIN
    for c, (col, width) in enumerate(zip(columns, col_w)):
        for row, lv in enumerate(col):
            ids = rows[lv]
            offset = (width - (len(ids) * (BOX_W + GAP_X) - GAP_X)) / 2
            for k, i in enumerate(ids):
                boxes.append((i, x0 + offset + k * (BOX_W + GAP_X) + BOX_W / 2,
                              MARGIN + row * (BOX_H + GAP_Y) + BOX_H / 2))
                column_of[i] = c
        x0 += width + COLUMN_GAP
        right_of.append(x0 - COLUMN_GAP)
    height = max(len(col) for col in columns) * (BOX_H + GAP_Y) - GAP_Y + 2 * MARGIN
    where = {i: (x, y) for i, x, y in boxes}
    edges = []
    for s, d in pairs:
        (x1, y1), (x2, y2) = where[s], where[d]
        if column_of[s] == column_of[d] and abs(x1 - x2) < 1 and y2 - y1 > BOX_H + GAP_Y + 1:
            # Straight down it would hide behind the boxes in between (a residual
            # skip along a chain): round the right side instead.
            side = x1 + BOX_W / 2
            points = [(side, y1), (side + SKIP_BULGE, y1), (side + SKIP_BULGE, y2), (side, y2)]
        elif column_of[s] == column_of[d]:
            points = _curve(x1, y1 + BOX_H / 2, x2, y2 - BOX_H / 2)
        else:  # down below the column, up the gap before the target's column, along the top
            gap = right_of[column_of[d] - 1] + COLUMN_GAP / 2
            bottom, top = height - MARGIN / 2, MARGIN / 2 - 2
            points = [(x1, y1 + BOX_H / 2), (x1, bottom), (gap, bottom), (gap, top), (x2, top),
                      (x2, y2 - BOX_H / 2)]
        edges.append((s, d, points))
    frames = []
    for r in repeats:
        parts: dict[int, list[int]] = {}  # a frame split by a column break is drawn once per column
        for i in r.copies[0]:
            parts.setdefault(column_of[i], []).append(i)
        for k, part in enumerate(parts.values()):
            xs, ys = [where[i][0] for i in part], [where[i][1] for i in part]
            frames.append((min(xs) - BOX_W / 2 - FRAME_PAD, min(ys) - BOX_H / 2 - FRAME_PAD,
                           max(xs) - min(xs) + BOX_W + 2 * FRAME_PAD + LABEL_W,
                           max(ys) - min(ys) + BOX_H + 2 * FRAME_PAD, f"x {r.count}" if k == 0 else ""))
    width = max([x0 - COLUMN_GAP + MARGIN] + [x + w + MARGIN / 2 for x, _, w, _, _ in frames])
    return Drawing(boxes, edges, frames, width, height)


def _split_columns(rows: dict[int, list[int]], pairs, inside: set[int] = frozenset()) -> list[list[int]]:
    """Layers split into columns so that the drawing fits a screen best.

    A column ends, where it can, after a layer of one node that no edge jumps
    over (one edge to the next column) and not ``inside`` a repeat's frame;
    elsewhere only when it must. Among the splits that fit the screen the one
    with the fewest columns wins, else the one that needs the least shrinking.
    """
    levels = sorted(rows)
    layer_of = {i: lv for lv, ids in rows.items() for i in ids}
    jumps = dict.fromkeys(levels, 0)
    for s, d in pairs:
        for lv in range(layer_of[s] + 1, layer_of[d]):
            jumps[lv] += 1
    good_break = [len(rows[lv]) == 1 and jumps[lv] == 0 and lv not in inside for lv in levels]
    best = None
    for limit in range(len(levels), 0, -1):  # most rows a column may hold
        cols, start = [], 0
        while start < len(levels):
            stop = min(start + limit, len(levels))
            if stop < len(levels):  # end after the last good break that fills at least half the column
                good = [k + 1 for k in range(start + limit // 2, stop) if good_break[k]]
                stop = good[-1] if good else stop
            cols.append(levels[start:stop])
            start = stop
        height = max(len(c) for c in cols) * (BOX_H + GAP_Y) + 2 * MARGIN
        width = sum(max(len(rows[lv]) for lv in c) * (BOX_W + GAP_X) + COLUMN_GAP for c in cols)
        key = (max(height / SCREEN_H, width / SCREEN_W, 1.0), len(cols))
        if best is None or key < best[0]:
            best = (key, cols)
    return best[1]


def _curve(x1: float, y1: float, x2: float, y2: float) -> list[tuple[float, float]]:
    """A cubic curve from a box's bottom to a lower box's top (straight when one lies under the other)."""
    bend = min(max((y2 - y1) / 2, GAP_Y), 120)
    return [(x1, y1), (x1, y1 + bend), (x2, y2 - bend), (x2, y2)]


def _label(node) -> tuple[str, str]:
    shape = "x".join(map(str, node.out_shape))
    extra = f" {node.kernel[0]}x{node.kernel[1]}" if node.kernel != (1, 1) else ""
    if node.stride != (1, 1):
        extra += f"/{node.stride[0]}"
    return node.op + extra, shape


def _fill(node) -> str:
    return COLOURS[FAMILY.get(node.op, "act")]


# ------------------------------------------------------------------ writers
def to_svg(cg: CG, collapse: bool = True) -> str:
    d = layout(cg, collapse)
    where = {i: (x, y) for i, x, y in d.boxes}
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{d.width:.0f}" height="{d.height:.0f}" '
        f'font-family="sans-serif" font-size="11">',
        f"<title>{escape(cg.name or 'CG')}</title>",
        '<defs><marker id="a" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" '
        'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
    ]
    for x, y, w, h, label in d.frames:
        out.append(f'<g><rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="8" fill="#fafafa" '
                   f'stroke="#888" stroke-dasharray="6 3"/><text x="{x + w - 4:.1f}" y="{y + 18:.1f}" '
                   f'text-anchor="end" font-size="15" font-weight="bold" fill="#555">{escape(label)}</text></g>')
    for _, _, points in d.edges:
        xy = [f"{x:.1f},{y:.1f}" for x, y in points]
        path = f"M{xy[0]} C{' '.join(xy[1:])}" if len(points) == 4 else f"M{xy[0]} L{' '.join(xy[1:])}"
        out.append(f'<path d="{path}" fill="none" stroke="#555" marker-end="url(#a)"/>')
    for i, x, y in d.boxes:
        node = cg.nodes[i]
        top, bottom = _label(node)
        out.append(f'<g><rect x="{x - BOX_W / 2:.1f}" y="{y - BOX_H / 2:.1f}" width="{BOX_W}" height="{BOX_H}" '
                   f'rx="4" fill="{_fill(node)}" stroke="#333"/>'
                   f'<text x="{x:.1f}" y="{y - 3:.1f}" text-anchor="middle">{escape(top)}</text>'
                   f'<text x="{x:.1f}" y="{y + 11:.1f}" text-anchor="middle" fill="#444">{escape(bottom)}</text></g>')
    out.append("</svg>")
    return "\n".join(out)


def to_png(cg: CG, path: Path, dpi: int = 100, collapse: bool = True) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import FancyBboxPatch, PathPatch
        from matplotlib.path import Path as MplPath
    except ImportError:
        raise GennapeError(
            "PNG drawing needs matplotlib: pip install 'gennape[plot]' (or draw to a .svg file)"
        ) from None
    d = layout(cg, collapse)
    where = {i: (x, y) for i, x, y in d.boxes}
    # Cap the canvas so huge graphs still render (about 30k pixels at most).
    scale = min(1.0, 30000 / max(d.height, d.width, 1))
    fig = plt.figure(figsize=(d.width * scale / dpi, d.height * scale / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, d.width)
    ax.set_ylim(d.height, 0)
    ax.axis("off")
    for x, y, w, h, label in d.frames:
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0,rounding_size=8",
                                    fc="#fafafa", ec="#888", lw=0.8, ls="--"))
        ax.text(x + w - 4, y + 6, label, ha="right", va="top", fontsize=11 * scale, weight="bold", color="#555")
    for _, _, points in d.edges:
        step = MplPath.CURVE4 if len(points) == 4 else MplPath.LINETO
        ax.add_patch(PathPatch(MplPath(points, [MplPath.MOVETO] + [step] * (len(points) - 1)),
                               fc="none", ec="#555", lw=0.8))
        ax.annotate("", xy=points[-1], xytext=(points[-1][0], points[-1][1] - 6),
                    arrowprops=dict(arrowstyle="->", color="#555", lw=0.8))
    for i, x, y in d.boxes:
        node = cg.nodes[i]
        top, bottom = _label(node)
        ax.add_patch(FancyBboxPatch((x - BOX_W / 2, y - BOX_H / 2), BOX_W, BOX_H,
                                    boxstyle="round,pad=0,rounding_size=4", fc=_fill(node), ec="#333", lw=0.8))
        ax.text(x, y, f"{top}\n{bottom}", ha="center", va="center", fontsize=8 * scale)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def to_dot(cg: CG) -> str:
    """Graphviz DOT of the whole CG: every node and edge; repeated blocks in clusters."""
    def quote(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [f"digraph {quote(cg.name or 'CG')} {{", "  rankdir=TB;",
             '  node [shape=box, style="rounded,filled", fontname="sans-serif", fontsize=10];']
    cluster = {}
    for r, rep in enumerate(find_repeats(cg)):
        for k, copy in enumerate(rep.copies):
            for i in copy:
                cluster[i] = (r, k, rep.count)

    def node_line(i: int, indent: str) -> str:
        top, bottom = _label(cg.nodes[i])
        label = quote(top)[:-1] + "\\n" + quote(bottom)[1:]  # DOT's line break inside one string
        return f'{indent}n{i} [label={label}, fillcolor="{_fill(cg.nodes[i])}"];'

    open_cluster = None
    for i in range(cg.num_nodes):
        key = cluster.get(i)
        if key != open_cluster and open_cluster is not None:
            lines.append("  }")
        if key is not None and key != open_cluster:
            r, k, count = key
            lines.append(f"  subgraph cluster_{r}_{k} {{ label={quote(f'repeat {r + 1}: {k + 1} of {count}')}; "
                         'style=dashed; color="#888888";')
        open_cluster = key
        lines.append(node_line(i, "    " if key is not None else "  "))
    if open_cluster is not None:
        lines.append("  }")
    lines.extend(f"  n{s} -> n{d};" for s, d in cg.edges)
    lines.append("}")
    return "\n".join(lines) + "\n"


def dot_path(path: str | Path) -> Path:
    """Where :func:`draw` writes the DOT file next to a picture: ``OUT.dot``."""
    return Path(path).with_suffix(".dot")


def draw(cg: CG, path: str | Path) -> Path:
    """Write ``cg`` as ``.svg`` (always available) or ``.png`` (needs matplotlib),
    and as Graphviz DOT next to it (:func:`dot_path`); returns the DOT path."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".svg", ".png"):
        raise GennapeError(f"{path}: cannot draw to {suffix or 'a file without extension'}; valid: .svg, .png")
    try:
        if suffix == ".svg":
            write_text_atomic(path, to_svg(cg))
        else:
            to_png(cg, path)
        write_text_atomic(dot_path(path), to_dot(cg))
    except OSError as err:
        raise GennapeError(f"{err.filename or path}: cannot write ({err.strerror})") from None
    return dot_path(path)
