"""TransNAS-Bench-101 micro (cell-level) space: 4,096 cells on Taskonomy, 3x256x256 inputs.

Spec: the six op codes ``[a, b, c, d, e, f]`` of the shared file's ``arch``
(``a``: 0->1; ``b``: 0->2, ``c``: 1->2; ``d``: 0->3, ``e``: 1->3, ``f``: 2->3), the
benchmark's string ``64-41414-a_bc_def``, plus the task (see
:mod:`gennape.cg.families.tnb101_common`). Op codes (NASLib ``cell_ops.py``):
``0`` zero, ``1`` skip (identity, or a FactorizedReduce where the edge has stride 2
and changes channels), ``2`` ReLU-conv1x1-BN, ``3`` ReLU-conv3x3-BN.

Network (NASLib ``MacroNet('64-41414-a_bc_def')`` + ``FFDecoder``): the shared
stem (64 channels at 64x64); five modules of two ``MicroCell``s with macro code
``41414`` (the first cell of a module changes channels / resolution: 64 -> 128 /2,
128, 128 -> 256 /2, 256, 256 -> 512 /2, so 512x8x8); global average pool; linear.
A cell has 4 nodes; node ``j`` sums an op on every earlier node; the cell output
is node 3. Edges leaving node 0 carry the cell's stride and channel change.
Every BN is affine. This reproduces the file's ``params`` exactly (see
``benchmarks/families.py``).

Zero edges and dead nodes are handled as for NB-201
(:mod:`gennape.cg.families.nb201`, :func:`gennape.cg.families.cell_builder.sum_cell`):
a zero edge is no edge; a node none of whose edges comes from a live node is
constant. In 169 cells every path from node 0 to node 3 passes a zero, so the
network's output does not depend on its input: their CG is an ``input`` and an
``output`` node, their export has no input (the importer refuses it), and
:meth:`TNB101MicroFamily.trainable_params` counts the layers the network still has
(so does :meth:`TNB101MicroFamily.benchmark_flops`, as the benchmark counted them).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from pathlib import Path

from gennape.cg.families import tnb101_common as tnb
from gennape.cg.families.base import Family, LabelledArch, register_family
from gennape.cg.families.cell_builder import LayerGraph, sum_cell
from gennape.cg.families.nb301 import _factorized_reduce
from gennape.cg.graph import CG

#: Op names by code.
OPS: tuple[str, ...] = ("zero", "skip", "conv1x1", "conv3x3")
ZERO, SKIP, CONV1X1, CONV3X3 = range(4)
#: ``(node, input_node)`` of the six cell edges, in ``arch`` order.
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
#: The skeleton all micro cells are trained in (``64-41414-...``).
MACRO_CODE: tuple[int, ...] = (4, 1, 4, 1, 4)
CELLS_PER_MODULE = 2
PREFIX = f"{tnb.BASE_CHANNELS}-{''.join(map(str, MACRO_CODE))}-"


def module_layout() -> list[tuple[int, int, int]]:
    """``(c_in, c_out, stride)`` of every cell, in order (``MacroNet._make_layer``)."""
    cells, c = [], tnb.BASE_CHANNELS
    for code in MACRO_CODE:
        c_out = c * 2 if code % 2 == 0 else c  # channel change: codes 2, 4; stride change: 3, 4
        stride = 2 if code > 2 else 1
        cells.append((c, c_out, stride))
        cells.extend((c_out, c_out, 1) for _ in range(CELLS_PER_MODULE - 1))
        c = c_out
    return cells


@dataclass(frozen=True)
class TNB101MicroSpec:
    """A micro cell (six op codes in ``arch`` order) and the task of its head.

    Construction validates; ``ValueError`` says what is wrong.
    """

    ops: tuple[int, ...]
    task: str = tnb.DEFAULT_TASK

    def __post_init__(self):
        object.__setattr__(self, "ops", tnb.check_codes(self.ops, "micro", range(6, 7), range(4)))
        tnb.check_task(self.task, "micro")

    @property
    def arch_str(self) -> str:
        """The benchmark's string, ``64-41414-a_bc_def``."""
        a, b, c, d, e, f = self.ops
        return f"{PREFIX}{a}_{b}{c}_{d}{e}{f}"

    def to_arch(self) -> str:
        return tnb.with_task(self.arch_str, self.task)

    def live_nodes(self) -> tuple[bool, bool, bool, bool]:
        """Whether each cell node (0..3) depends on the cell input."""
        live = [True, False, False, False]
        for op, (node, src) in zip(self.ops, EDGES):
            if op != ZERO and live[src]:
                live[node] = True
        return tuple(live)  # type: ignore[return-value]


def parse(arch, task: str | None = None) -> TNB101MicroSpec:
    """Parse ``64-41414-a_bc_def[@task]`` or the file's list ``[a, b, c, d, e, f]``
    (``task`` given apart, or the default); ``ValueError`` says what is wrong."""
    body, parsed_task = tnb.split_task(arch, "micro")
    task = task if task is not None else parsed_task
    if isinstance(body, str):
        codes = tnb.parse_int_list(body, "micro")
        if codes is None:
            if not body.startswith(PREFIX):
                raise ValueError(f"TNB-101 micro arch {arch!r} must look like {PREFIX}a_bc_def "
                                 f"(base 64, macro code 41414), e.g. {PREFIX}2_32_323")
            groups = body[len(PREFIX):].split("_")
            if [len(g) for g in groups] != [1, 2, 3] or not all(ch in "0123" for ch in "".join(groups)):
                raise ValueError(f"TNB-101 micro arch {arch!r}: the cell must be a_bc_def with op codes 0-3 "
                                 f"({', '.join(f'{i} {n}' for i, n in enumerate(OPS))})")
            codes = [int(ch) for ch in "".join(groups)]
        body = codes
    return TNB101MicroSpec(body, task)


# ------------------------------------------------------------------ CG path
def _edge(g: LayerGraph, x: int, op: int, c_out: int, stride: int) -> int:
    """One live cell edge (not zero) on layer ``x``."""
    if op == SKIP:
        if stride == 1 and g.shape(x)[0] == c_out:
            return x
        # The DARTS FactorizedReduce, affine (see nets/tnb101.py for TNB's padding).
        return _factorized_reduce(g, x, c_out, affine=True)
    k = 3 if op == CONV3X3 else 1
    return g.bn(g.conv(g.relu(x), c_out, k, stride, k // 2))


def _cell(g: LayerGraph, spec: TNB101MicroSpec, x: int, c_out: int, stride: int) -> int | None:
    edges = [(node, src, op) for op, (node, src) in zip(spec.ops, EDGES) if op != ZERO]
    # Only node-0 edges carry the stride and channel change.
    return sum_cell(g, x, edges, lambda v, op, src: _edge(g, v, op, c_out, stride if src == 0 else 1),
                    last=EDGES[-1][0])


def build_cg(spec: TNB101MicroSpec, reference: bool = False) -> CG:
    """The canonical CG (``reference=True``: ordered by :class:`gennape.cg.graph.GraphBuilder`)."""
    g = LayerGraph(f"tnb101_micro:{spec.to_arch()}")
    x: int | None = tnb.stem(g, g.input(tnb.INPUT_SHAPE))
    for _, c_out, stride in module_layout():
        if x is not None:
            x = _cell(g, spec, x, c_out, stride)
    tnb.head(g, x, spec.task)
    return g.build(reference)


def network_convs(spec: TNB101MicroSpec) -> list[tnb.ConvBN]:
    """Every conv + BN of the network as built, dead and unused ones too (the
    benchmark's network computes every edge), in order."""
    convs = tnb.stem_convs()
    size = tnb.INPUT_SHAPE[1] // 4
    for c_in, c_out, stride in module_layout():
        out = size // stride
        for op, (_, src) in zip(spec.ops, EDGES):
            ci, hi = (c_in, size) if src == 0 else (c_out, out)
            if op in (CONV1X1, CONV3X3):
                convs.append((ci, c_out, 3 if op == CONV3X3 else 1, hi, out, True))
            elif op == SKIP and src == 0 and (stride != 1 or ci != c_out):
                convs.append((ci, c_out, 1, hi, out, True))  # FactorizedReduce
        size = out
    return convs


# ------------------------------------------------------------------- family
class TNB101MicroFamily(Family):
    """TransNAS-Bench-101 micro cells (``tnb101_micro``)."""

    name = "tnb101_micro"
    title = "TNB-101 micro"
    summary = "TransNAS-Bench-101 micro cells (64-41414-a_bc_def), Taskonomy, 256x256"
    arch_help = f"{PREFIX}2_32_323 or [2, 3, 2, 3, 2, 3], optionally @class_scene / @room_layout"
    input_shape = tnb.INPUT_SHAPE
    label_options = {"task": tnb.CLASSIFICATION_TASKS}
    space_size = len(OPS) ** len(EDGES)
    data_file = Path("tnb101") / "tnb101_micro_4096.json.gz"

    def parse(self, arch) -> TNB101MicroSpec:
        return parse(arch)

    def to_cg(self, spec: TNB101MicroSpec) -> CG:
        return build_cg(spec)

    def trainable_params(self, spec: TNB101MicroSpec) -> int:
        """Every layer's, dead ones too (the CG's ``params`` is not this for cells
        with dead nodes); equals ``to_module(spec)``'s count."""
        return tnb.trainable_params(network_convs(spec), module_layout()[-1][1], spec.task)

    def benchmark_flops(self, spec: TNB101MicroSpec) -> int:
        return tnb.benchmark_flops(network_convs(spec), module_layout()[-1][1], spec.task)

    def to_module(self, spec: TNB101MicroSpec):
        from gennape.cg.families.nets.tnb101 import micro_network

        return micro_network(spec)

    def sample(self, rng) -> TNB101MicroSpec:
        return TNB101MicroSpec(tuple(rng.randrange(len(OPS)) for _ in EDGES))

    def output_depends_on_input(self, spec: TNB101MicroSpec) -> bool:
        return spec.live_nodes()[3]

    def all_specs(self, task: str = tnb.DEFAULT_TASK) -> list[TNB101MicroSpec]:
        """Every cell of the space, in the file's order."""
        return [TNB101MicroSpec(ops, task) for ops in product(range(len(OPS)), repeat=len(EDGES))]

    def load_labelled(self, data_dir: Path | None = None, task: str = tnb.DEFAULT_TASK) -> list[LabelledArch]:
        """All 4,096 cells with ``task``'s label (``class_object`` or ``class_scene``):
        the top-level key of the file, the value at the FINAL training epoch
        (``valid_top1``, percent -> fraction).

        ``extra``: ``best_accuracy`` (the best-epoch value, as a fraction), ``params``
        (a count), ``params_millions`` and ``flops`` (millions) of ``task``, for the 711
        cells that have them. The 169 constant-output cells share one degenerate label.
        """
        from gennape.cg.data import data_dir as find

        def extra(rec: dict, task: str) -> dict:
            out = tnb.task_columns(rec, task)
            if rec.get("best") and rec["best"].get(task) is not None:
                out["best_accuracy"] = rec["best"][task] / 100.0
            return out

        root = Path(data_dir) if data_dir is not None else find()
        return tnb.load_labelled(root / self.data_file, task, parse, lambda rec, t: rec[t], extra)


FAMILY = register_family(TNB101MicroFamily())
