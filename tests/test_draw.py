"""CG pictures: repeated blocks drawn once, columns, the SVG's size, the DOT file."""

from __future__ import annotations

import re

import pytest

from gennape.cg.draw import SCREEN_H, SCREEN_W, draw, find_repeats, layout, segments, to_dot, to_svg
from gennape.cg.errors import GennapeError
from gennape.cg.families.nb201 import FAMILY as NB201
from gennape.cg.graph import CG, Node

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


@pytest.fixture(scope="module")
def nb201():
    return NB201.to_cg(NB201.parse(ARCH))


def _svg_size(svg: str) -> tuple[float, float]:
    width, height = re.search(r'<svg [^>]*width="([\d.]+)" height="([\d.]+)"', svg).groups()
    return float(width), float(height)


def test_the_five_cells_of_each_nb201_stage_are_drawn_once(nb201):
    assert nb201.num_nodes > 150
    repeats = find_repeats(nb201)
    assert [r.count for r in repeats] == [5, 5, 5]
    # Copies match node for node: the same nodes, wired the same way.
    for r in repeats:
        first = r.copies[0]
        position = {i: j for j, i in enumerate(first)}
        wiring = {(position[s], position[d]) for s, d in nb201.edges if s in position and d in position}
        for copy in r.copies[1:]:
            assert [nb201.nodes[i] for i in copy] == [nb201.nodes[i] for i in first]
            where = {i: j for j, i in enumerate(copy)}
            assert {(where[s], where[d]) for s, d in nb201.edges if s in where and d in where} == wiring
    hidden = sum(len(r.copies[0]) * (r.count - 1) for r in repeats)
    assert len(layout(nb201).boxes) == nb201.num_nodes - hidden


def test_a_150_node_nb201_picture_fits_one_screen(nb201):
    svg = to_svg(nb201)
    width, height = _svg_size(svg)
    assert width <= SCREEN_W and height <= SCREEN_H
    assert svg.count("x 5") == 3  # the three repeat frames say how often
    tall = layout(nb201, collapse=False)  # every node drawn: still columns, but bigger
    assert len(tall.boxes) == nb201.num_nodes and tall.height > height


def _toy(n_blocks: int) -> CG:
    """input -> n identical residual blocks (conv, relu, add with a skip) -> output."""
    nodes, edges = [Node("input", (8, 4, 4), (8, 4, 4))], []
    for _ in range(n_blocks):
        x = len(nodes) - 1
        nodes += [Node("conv", (8, 4, 4), (8, 4, 4), kernel=(3, 3), weight_shape=(8, 8, 3, 3), params=576),
                  Node("relu", (8, 4, 4), (8, 4, 4)), Node("add", (8, 4, 4), (8, 4, 4))]
        edges += [(x, x + 1), (x + 1, x + 2), (x + 2, x + 3), (x, x + 3)]
    nodes.append(Node("output", (8, 4, 4), (8, 4, 4)))
    edges.append((len(nodes) - 2, len(nodes) - 1))
    return CG(tuple(nodes), tuple(edges), name='toy "net"')


def test_segments_cut_where_no_edge_jumps_over():
    cg = _toy(2)
    assert [list(p) for p in segments(cg)] == [[0], [1, 2, 3], [4, 5, 6], [7]]
    (repeat,) = find_repeats(cg)
    assert [sorted(copy) for copy in repeat.copies] == [[1, 2, 3], [4, 5, 6]]
    assert [cg.nodes[i].op for i in repeat.copies[0]] == [cg.nodes[i].op for i in repeat.copies[1]]
    assert find_repeats(_toy(1)) == []


def test_dot_holds_every_node_and_edge(nb201):
    dot = to_dot(nb201)
    assert dot.startswith("digraph ") and dot.rstrip().endswith("}")
    nodes = re.findall(r"^\s*n(\d+) \[label=", dot, re.M)
    edges = re.findall(r"^\s*n(\d+) -> n(\d+);", dot, re.M)
    assert sorted(map(int, nodes)) == list(range(nb201.num_nodes))
    assert [(int(s), int(d)) for s, d in edges] == list(nb201.edges)
    assert len(re.findall(r"subgraph cluster_", dot)) == 15  # every copy of the 3 x 5 cells
    assert dot.count("{") == dot.count("}")
    # Names and labels are quoted: a quote in the name cannot break the file.
    assert to_dot(_toy(1)).startswith('digraph "toy \\"net\\"" {')


def test_draw_writes_the_dot_file_next_to_the_picture(tmp_path, nb201):
    dot = draw(nb201, tmp_path / "cells.svg")
    assert dot == tmp_path / "cells.dot" and dot.read_text() == to_dot(nb201)
    assert (tmp_path / "cells.svg").read_text() == to_svg(nb201)
    with pytest.raises(GennapeError, match=r"cells\.pdf: cannot draw to \.pdf; valid: \.svg, \.png"):
        draw(nb201, tmp_path / "cells.pdf")
    with pytest.raises(GennapeError, match="cannot write"):
        draw(nb201, tmp_path / "missing" / "cells.svg")
