"""NAS-Bench-101: cell specs, the module hash, the benchmark network as a CG.

A spec is a DAG of at most 7 vertices and 9 edges given as an upper-triangular
0/1 adjacency matrix plus one op per vertex (``input``, then ops from
:data:`CELL_OPS`, then ``output``). Vertices that lie on no input -> output path
are pruned exactly as ``nasbench.lib.model_spec.ModelSpec`` does; the limits are
checked on the pruned cell, as ``nasbench.api.NASBench`` does.

The network is the one ``nasbench.lib.model_builder`` trained: stem conv3x3
(3 -> 128) + BN + ReLU; 3 stacks of 3 cells with 128, 256, 512 output
channels; a 2x2 stride-2 max pool before stacks 2 and 3; global average pool;
dense layer to 10 classes. Inside a cell, vertex channels follow
``compute_vertex_channels``, tensors flowing out of the input are projected by
conv1x1+BN+ReLU, vertex inputs are summed, interior edges into a vertex with
one channel fewer are truncated, the vertices feeding the output are
concatenated and the output gets the projected input added when input and
output are connected.

Its trainable parameters are conv kernels (no bias), BN scale and shift, and
the dense weight and bias; :meth:`NB101Family.to_cg` gives a CG whose
``params`` is exactly that count (BN merged into its conv).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Iterator, Sequence

from gennape.cg.data import data_dir as _default_data_dir
from gennape.cg.errors import GennapeError
from gennape.cg.families.base import Family, LabelledArch, register_family
from gennape.cg.families.cell_builder import canonical_cg, intern_node, order_bytes
from gennape.cg.graph import CG, GraphBuilder, Node
from gennape.cg.ops import weighted_macs

#: Interior ops in the benchmark's canonical order (their index is the hash label).
CELL_OPS: tuple[str, ...] = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
MAX_VERTICES = 7
MAX_EDGES = 9

STEM_CHANNELS = 128
NUM_STACKS = 3
CELLS_PER_STACK = 3
NUM_CLASSES = 10
INPUT_SHAPE = (3, 32, 32)

LABELLED_FILE = ("nb101", "nb101_30k_labelled.json.gz")
ALL_SPECS_FILE = ("nb101", "nb101_all_423624_specs.jsonl.gz")

_CONV_KERNEL = {"conv3x3-bn-relu": 3, "conv1x1-bn-relu": 1}


# --------------------------------------------------------------------- specs
def prune(matrix: Sequence[Sequence[int]], ops: Sequence[str]) -> tuple[list[list[int]], list[str]]:
    """Drop the vertices not on an input -> output path (``ModelSpec._prune``).

    Raises ``ValueError`` when no path joins input and output.
    """
    n = len(matrix)
    from_input = {0}
    frontier = [0]
    while frontier:
        top = frontier.pop()
        for v in range(top + 1, n):
            if matrix[top][v] and v not in from_input:
                from_input.add(v)
                frontier.append(v)
    to_output = {n - 1}
    frontier = [n - 1]
    while frontier:
        top = frontier.pop()
        for v in range(top):
            if matrix[v][top] and v not in to_output:
                to_output.add(v)
                frontier.append(v)
    keep = sorted(from_input & to_output)
    if len(keep) < 2:
        raise ValueError("the input is not connected to the output")
    return [[matrix[i][j] for j in keep] for i in keep], [ops[i] for i in keep]


def hash_module(matrix: Sequence[Sequence[int]], labeling: Sequence[int]) -> str:
    """NAS-Bench-101's isomorphism-invariant MD5 hash (``graph_util.hash_module``).

    Args:
        matrix: square upper-triangular 0/1 adjacency matrix (pruned).
        labeling: ``-1`` for input, ``-2`` for output, else the op's index in
            :data:`CELL_OPS`.
    """
    n = len(matrix)
    in_edges = [sum(matrix[w][v] for w in range(n)) for v in range(n)]
    out_edges = [sum(row) for row in matrix]
    md5 = hashlib.md5
    # str() of a Python tuple of ints, as the reference hashes numpy .tolist() values.
    hashes = [md5(str((out_edges[v], in_edges[v], labeling[v])).encode()).hexdigest() for v in range(n)]
    ins = [[w for w in range(n) if matrix[w][v]] for v in range(n)]
    outs = [[w for w in range(n) if matrix[v][w]] for v in range(n)]
    for _ in range(n):
        hashes = [
            md5(
                ("".join(sorted(hashes[w] for w in ins[v])) + "|"
                 + "".join(sorted(hashes[w] for w in outs[v])) + "|"
                 + hashes[v]).encode()
            ).hexdigest()
            for v in range(n)
        ]
    return md5(str(sorted(hashes)).encode()).hexdigest()


def canonical_order(matrix: Sequence[Sequence[int]], ops: Sequence[str]) -> tuple[list[list[int]], list[str]]:
    """Renumber a pruned cell's vertices into the benchmark's representative.

    ``nasbench/scripts/generate_graphs.py`` enumerated matrices by increasing
    bit mask (bit ``x + y*(y-1)/2`` set for edge ``x -> y``) and, per matrix,
    labelings in ``itertools.product`` order, keeping the FIRST of each
    isomorphism class; that representative is the network it trained. So among
    the vertex orders keeping the matrix upper-triangular (input first, output
    last) the one with the smallest ``(bit mask, op indices)`` is it.
    """
    n = len(matrix)
    interior = range(1, n - 1)
    preds = [[u for u in range(v) if matrix[u][v]] for v in range(n)]
    best: tuple | None = None
    best_order: list[int] = []
    for order in _topological_orders(list(interior), preds):
        order = [0, *order, n - 1]
        pos = {old: new for new, old in enumerate(order)}
        bits = 0
        for v in range(n):
            for u in preds[v]:
                x, y = pos[u], pos[v]
                bits |= 1 << (x + y * (y - 1) // 2)
        key = (bits, tuple(CELL_OPS.index(ops[v]) for v in order[1:-1]))
        if best is None or key < best:
            best, best_order = key, order
    m = [[matrix[i][j] for j in best_order] for i in best_order]
    return m, [ops[i] for i in best_order]


def _topological_orders(vertices: list[int], preds: list[list[int]]) -> Iterator[list[int]]:
    """Every order of ``vertices`` in which each vertex follows its predecessors among them."""
    if not vertices:
        yield []
        return
    members = set(vertices)
    for v in vertices:
        if not any(u in members for u in preds[v]):
            rest = [w for w in vertices if w != v]
            for tail in _topological_orders(rest, preds):
                yield [v, *tail]


def compute_vertex_channels(in_channels: int, out_channels: int, matrix: Sequence[Sequence[int]]) -> list[int]:
    """Channels of every vertex (``model_builder.compute_vertex_channels``).

    The output's channels are split evenly among the vertices feeding it (the
    first ones get one extra channel while a remainder is left); every other
    interior vertex gets the max of the vertices it feeds.
    """
    n = len(matrix)
    channels = [0] * n
    channels[0] = in_channels
    channels[n - 1] = out_channels
    if n == 2:
        return channels
    fan_in = sum(matrix[v][n - 1] for v in range(1, n))
    interior, correction = divmod(out_channels, fan_in)
    for v in range(1, n - 1):
        if matrix[v][n - 1]:
            channels[v] = interior
            if correction:
                channels[v] += 1
                correction -= 1
    for v in range(n - 3, 0, -1):
        if not matrix[v][n - 1]:
            for dst in range(v + 1, n - 1):
                if matrix[v][dst]:
                    channels[v] = max(channels[v], channels[dst])
    return channels


@dataclass(frozen=True)
class NB101Spec:
    """A pruned, valid NAS-Bench-101 cell.

    Build one with :meth:`from_lists` (prunes and validates) or
    :meth:`NB101Family.parse`; the constructor expects an already pruned cell
    and only validates it.

    Args:
        matrix: upper-triangular 0/1 adjacency matrix as a tuple of row tuples.
        ops: one op per vertex: ``input``, ops from :data:`CELL_OPS`, ``output``.
    """

    matrix: tuple[tuple[int, ...], ...]
    ops: tuple[str, ...]

    def __post_init__(self):
        _validate(self.matrix, self.ops)

    @classmethod
    def from_lists(cls, matrix: Sequence[Sequence[Any]], ops: Sequence[Any], canonical: bool = True) -> "NB101Spec":
        """Validate, prune and freeze a matrix + ops pair; ``ValueError`` says what is wrong.

        With ``canonical`` (the default) the vertices are renumbered into the
        benchmark's representative of the isomorphism class (see
        :func:`canonical_order`): the network NAS-Bench-101 trained for this
        module hash. Isomorphic orderings differ in which vertices get the
        extra channel of an uneven split, hence in parameter count.
        """
        matrix, ops = _check_raw(matrix, ops)
        matrix, ops = prune(matrix, ops)
        if canonical:
            matrix, ops = canonical_order(matrix, ops)
        return cls(tuple(tuple(r) for r in matrix), tuple(ops))

    def canonical(self) -> "NB101Spec":
        """The benchmark's representative of this spec's isomorphism class."""
        matrix, ops = canonical_order(self.matrix, self.ops)
        return NB101Spec(tuple(tuple(r) for r in matrix), tuple(ops))

    @property
    def num_vertices(self) -> int:
        return len(self.ops)

    @property
    def num_edges(self) -> int:
        return sum(map(sum, self.matrix))

    @cached_property
    def hash(self) -> str:
        """The official module hash (the key of the benchmark's records)."""
        labels = [-1] + [CELL_OPS.index(op) for op in self.ops[1:-1]] + [-2]
        return hash_module(self.matrix, labels)

    def to_arch(self) -> str:
        """The ARCH string ``gennape export`` takes: ``{"matrix": ..., "ops": ...}``."""
        return json.dumps({"matrix": [list(r) for r in self.matrix], "ops": list(self.ops)})


def _check_raw(matrix: Any, ops: Any) -> tuple[list[list[int]], list[str]]:
    """Type and shape checks on user input, before pruning."""
    if not isinstance(matrix, (list, tuple)) or not all(isinstance(r, (list, tuple)) for r in matrix):
        raise ValueError("'matrix' must be a list of rows")
    if not isinstance(ops, (list, tuple)) or not all(isinstance(o, str) for o in ops):
        raise ValueError("'ops' must be a list of op names")
    n = len(matrix)
    if n < 2:
        raise ValueError(f"the matrix has {n} vertices; a cell needs at least input and output")
    if any(len(r) != n for r in matrix):
        raise ValueError(f"the matrix must be square ({n} rows, row lengths {[len(r) for r in matrix]})")
    if len(ops) != n:
        raise ValueError(f"{len(ops)} ops for a {n}x{n} matrix")
    rows = []
    for i, r in enumerate(matrix):
        row = []
        for j, x in enumerate(r):
            if isinstance(x, bool) or x not in (0, 1):
                raise ValueError(f"matrix[{i}][{j}] = {x!r}; entries must be 0 or 1")
            if x and j <= i:
                raise ValueError(f"matrix[{i}][{j}] = 1; the matrix must be strictly upper-triangular")
            row.append(int(x))
        rows.append(row)
    _check_ops(ops)
    return rows, list(ops)


def _check_ops(ops: Sequence[str]) -> None:
    if ops[0] != "input":
        raise ValueError(f"the first op must be 'input', not {ops[0]!r}")
    if ops[-1] != "output":
        raise ValueError(f"the last op must be 'output', not {ops[-1]!r}")
    for i, op in enumerate(ops[1:-1], 1):
        if op not in CELL_OPS:
            raise ValueError(f"ops[{i}] = {op!r}; valid cell ops: {', '.join(CELL_OPS)}")


def _validate(matrix: Sequence[Sequence[int]], ops: Sequence[str]) -> None:
    """The benchmark's limits on a pruned cell (``NASBench._check_spec``)."""
    n = len(ops)
    if len(matrix) != n or any(len(r) != n for r in matrix):
        raise ValueError(f"the matrix must be {n}x{n} for {n} ops")
    for i, r in enumerate(matrix):
        for j in range(i + 1):
            if r[j]:
                raise ValueError(f"matrix[{i}][{j}] = 1; the matrix must be strictly upper-triangular")
    _check_ops(ops)
    if n > MAX_VERTICES:
        raise ValueError(f"{n} vertices after pruning; NAS-Bench-101 allows at most {MAX_VERTICES}")
    edges = sum(map(sum, matrix))
    if edges > MAX_EDGES:
        raise ValueError(f"{edges} edges after pruning; NAS-Bench-101 allows at most {MAX_EDGES}")
    # Every vertex of a pruned cell has an in-edge (but the input) and an out-edge (but the output).
    for v in range(1, n - 1):
        if not any(matrix[u][v] for u in range(v)) or not any(matrix[v][w] for w in range(v + 1, n)):
            raise ValueError(f"vertex {v} lies on no input -> output path; build specs with from_lists()")
    if n == 2 and not matrix[0][1]:
        raise ValueError("the input is not connected to the output")


# --------------------------------------------------------------- cell plans
@dataclass(frozen=True)
class CellPlan:
    """How one cell of given in/out channels is wired (shared by the torch module and the CG).

    Args:
        channels: channels of every vertex (``compute_vertex_channels``).
        vertex_inputs: for each interior vertex ``t`` (index ``t - 1``), the
            interior sources ``src`` summed into it, in order, each with the
            channels to truncate to (``None`` when no truncation); the input
            projection, when there is one, is added last.
        project: for each interior vertex, whether the projected input feeds it.
        concat: interior vertices concatenated into the output, in order.
        project_output: whether the projected input is added to the output
            (or is the output, when ``concat`` is empty).
    """

    channels: tuple[int, ...]
    vertex_inputs: tuple[tuple[tuple[int, int | None], ...], ...]
    project: tuple[bool, ...]
    concat: tuple[int, ...]
    project_output: bool


@lru_cache(maxsize=65536)
def cell_plan(spec: NB101Spec, in_channels: int, out_channels: int) -> CellPlan:
    """The wiring of ``spec``'s cell mapping ``in_channels`` to ``out_channels``."""
    m = spec.matrix
    n = len(m)
    ch = compute_vertex_channels(in_channels, out_channels, m)
    vertex_inputs = []
    project = []
    for t in range(1, n - 1):
        srcs = []
        for src in range(1, t):
            if m[src][t]:
                if ch[src] < ch[t]:
                    raise ValueError(f"vertex {src} has fewer channels than vertex {t}")
                srcs.append((src, ch[t] if ch[src] > ch[t] else None))
        vertex_inputs.append(tuple(srcs))
        project.append(bool(m[0][t]))
    concat = tuple(t for t in range(1, n - 1) if m[t][n - 1])
    return CellPlan(tuple(ch), tuple(vertex_inputs), tuple(project), concat, bool(m[0][n - 1]))


def stack_channels() -> list[tuple[int, int, int]]:
    """``(in_channels, out_channels, resolution)`` of each of the 9 cells, in order."""
    cells = []
    channels = STEM_CHANNELS
    size = INPUT_SHAPE[1]
    for stack in range(NUM_STACKS):
        in_ch = channels
        if stack > 0:
            size //= 2
            channels *= 2
        for _ in range(CELLS_PER_STACK):
            cells.append((in_ch, channels, size))
            in_ch = channels
    return cells


# ------------------------------------------------------------------- the CG
# Nodes are interned (gennape.cg.families.cell_builder.intern_node): each distinct
# node is one object, created once per process, with the bytes GraphBuilder
# hashes for it computed once.
_intern = intern_node


@lru_cache(maxsize=None)
def _conv(cin: int, cout: int, k: int, size: int) -> Node:
    # A conv without bias with its batch norm merged in: weights + 2 x C.
    return _intern(Node(
        "conv", (cin, size, size), (cout, size, size), kernel=(k, k), weight_shape=(cout, cin, k, k),
        params=cout * cin * k * k + 2 * cout, macs=weighted_macs((cout, size, size), (cout, cin, k, k)),
    ))


@lru_cache(maxsize=None)
def _simple(op: str, in_shape: tuple[int, ...], out_shape: tuple[int, ...],
            kernel: tuple[int, int] = (1, 1), stride: tuple[int, int] = (1, 1)) -> Node:
    return _intern(Node(op, in_shape, out_shape, kernel=kernel, stride=stride))


@lru_cache(maxsize=None)
def _linear(features: int, classes: int) -> Node:
    return _intern(Node("linear", (features,), (classes,), weight_shape=(classes, features),
                        params=classes * features + classes,
                        macs=weighted_macs((classes,), (classes, features))))


class _FastBuilder:
    """:class:`gennape.cg.graph.GraphBuilder`'s canonical order, computed faster.

    Gives exactly ``GraphBuilder.build()``'s CG (same ancestry keys, same heap
    order, same tie-breaking by insertion index; a test and
    ``benchmarks/families.py`` check it), relying on two facts of this
    builder: nodes are added after their inputs (insertion order is
    topological, so keys need no traversal), and nodes are interned (their
    hashed bytes are computed once per process, not once per graph node).
    """

    def __init__(self, name: str = ""):
        self.name = name
        self.nodes: list[Node] = []
        self.inputs: list[tuple[int, ...]] = []

    def add(self, node: Node, inputs: tuple[int, ...] | list[int] = ()) -> int:
        self.nodes.append(node)
        self.inputs.append(tuple(inputs))
        return len(self.nodes) - 1

    def build(self) -> CG:
        return canonical_cg(self.nodes, [order_bytes(n) for n in self.nodes], self.inputs, self.name)


def _feature(c: int, size: int) -> tuple[int, int, int]:
    return (c, size, size)


class _CGWriter:
    """Adds the nodes of the network to a builder in the torch forward's order.

    Like the exporters, it eliminates common subexpressions: a parameter-free
    op applied again to the same inputs (two max-pool vertices fed by the same
    vertex, two truncations of one vertex to the same width, the shared first
    Add of two vertices summing the same sources) is one node. The legacy
    exporter's TorchScript CSE pass and the dynamo exporter's default
    optimiser both merge them, so the ONNX file, and its CG, holds one node.
    """

    def __init__(self, builder: "GraphBuilder | _FastBuilder"):
        self.builder = builder
        self.seen: dict[tuple[int, tuple[int, ...]], int] = {}

    def add(self, node: Node, inputs: tuple[int, ...]) -> int:
        if node.params:
            return self.builder.add(node, inputs)
        key = (id(node), tuple(inputs))  # nodes are interned: id() names the attributes
        i = self.seen.get(key)
        if i is None:
            i = self.seen[key] = self.builder.add(node, inputs)
        return i

    def conv_bn_relu(self, x: int, cin: int, cout: int, k: int, size: int) -> int:
        c = self.add(_conv(cin, cout, k, size), (x,))
        shape = _feature(cout, size)
        return self.add(_simple("relu", shape, shape), (c,))

    def add_all(self, xs: list[int], shape: tuple[int, ...]) -> int:
        # torch's ``a + b + c`` is a chain of binary Adds.
        out = xs[0]
        for x in xs[1:]:
            out = self.add(_simple("add", shape, shape), (out, x))
        return out

    def cell(self, spec: NB101Spec, x: int, cin: int, cout: int, size: int) -> int:
        plan = cell_plan(spec, cin, cout)
        ch = plan.channels
        n = len(ch)
        tensors = [x]
        for t in range(1, n - 1):
            shape = _feature(ch[t], size)
            add_in = []
            for src, trunc in plan.vertex_inputs[t - 1]:
                if trunc is None:
                    add_in.append(tensors[src])
                else:
                    add_in.append(self.add(_simple("slice", _feature(ch[src], size), shape), (tensors[src],)))
            if plan.project[t - 1]:
                add_in.append(self.conv_bn_relu(x, cin, ch[t], 1, size))
            v = self.add_all(add_in, shape)
            op = spec.ops[t]
            if op == "maxpool3x3":
                v = self.add(_simple("max_pool", shape, shape, (3, 3)), (v,))
            else:
                v = self.conv_bn_relu(v, ch[t], ch[t], _CONV_KERNEL[op], size)
            tensors.append(v)
        out_shape = _feature(cout, size)
        if not plan.concat:
            return self.conv_bn_relu(x, cin, cout, 1, size)
        if len(plan.concat) == 1:
            out = tensors[plan.concat[0]]
        else:
            first = plan.concat[0]
            out = self.add(_simple("concat", _feature(ch[first], size), out_shape),
                             [tensors[t] for t in plan.concat])
        if plan.project_output:
            proj = self.conv_bn_relu(x, cin, cout, 1, size)
            out = self.add(_simple("add", out_shape, out_shape), (out, proj))
        return out


def build_cg(spec: NB101Spec, name: str = "", reference: bool = False) -> CG:
    """The benchmark network of ``spec`` as a canonical CG (pure Python).

    ``reference=True`` orders the nodes with :class:`gennape.cg.graph.GraphBuilder`
    itself instead of the equivalent, faster :class:`_FastBuilder`.
    """
    b = GraphBuilder(name) if reference else _FastBuilder(name)
    w = _CGWriter(b)
    c, size = INPUT_SHAPE[0], INPUT_SHAPE[1]
    x = b.add(_simple("input", (), INPUT_SHAPE))
    x = w.conv_bn_relu(x, c, STEM_CHANNELS, 3, size)
    prev_size = size
    for cin, cout, size in stack_channels():
        if size != prev_size:
            x = b.add(_simple("max_pool", _feature(cin, prev_size), _feature(cin, size), (2, 2), (2, 2)), (x,))
            prev_size = size
        x = w.cell(spec, x, cin, cout, size)
    last = stack_channels()[-1][1]
    x = b.add(_simple("global_avg_pool", _feature(last, size), (last, 1, 1)), (x,))
    x = b.add(_linear(last, NUM_CLASSES), (x,))
    b.add(_simple("output", (NUM_CLASSES,), (NUM_CLASSES,)), (x,))
    return b.build()


# ------------------------------------------------------------------- family
def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


#: What a truncated or corrupted (gzipped) JSON file raises while being read.
_READ_ERRORS = (OSError, EOFError, zlib.error, UnicodeDecodeError, ValueError)


def _data_file(data_dir: Path | None, parts: tuple[str, str]) -> Path:
    root = Path(data_dir) if data_dir is not None else _default_data_dir()
    path = root.joinpath(*parts)
    if not path.is_file():
        raise GennapeError(f"{path}: NAS-Bench-101 data file not found")
    return path


class NB101Family(Family):
    """NAS-Bench-101 (CIFAR-10, 32x32); specs are :class:`NB101Spec`, keys are module hashes."""

    name = "nb101"
    title = "NB-101"
    summary = "NAS-Bench-101 cells (matrix + ops), CIFAR-10, 32x32"
    arch_help = '{"matrix": [[0,1,...],...], "ops": ["input", ..., "output"]}'
    input_shape = INPUT_SHAPE
    #: Bumped when the builder's CGs change, so cached CGs are rebuilt.
    cg_version = 2

    def parse(self, arch: str) -> NB101Spec:
        """Parse ``{"matrix": [[...]], "ops": [...]}``; ``ValueError`` says what is wrong."""
        try:
            obj = json.loads(arch)
        except json.JSONDecodeError as err:
            raise ValueError(f"NB-101 arch is not JSON ({err.msg} at char {err.pos}); "
                             'expected {"matrix": [[...]], "ops": [...]}') from None
        if not isinstance(obj, dict) or "matrix" not in obj or "ops" not in obj:
            raise ValueError('NB-101 arch must be a JSON object {"matrix": [[...]], "ops": [...]}')
        return NB101Spec.from_lists(obj["matrix"], obj["ops"])

    def spec_from_record(self, rec: dict[str, Any]) -> NB101Spec:
        return NB101Spec.from_lists(rec["matrix"], rec["ops"])

    def to_cg(self, spec: NB101Spec) -> CG:
        return build_cg(spec)

    def to_module(self, spec: NB101Spec):
        from gennape.cg.families.nets.nb101 import NB101Network

        return NB101Network(spec)

    def load_labelled(self, data_dir: Path | None = None) -> list[LabelledArch]:
        """The 30,001 labelled archs; label ``val_acc_108``, ``extra`` keeps the other columns."""
        path = _data_file(data_dir, LABELLED_FILE)
        try:
            with _open_text(path) as f:
                records = json.load(f)
        except _READ_ERRORS as err:
            raise GennapeError(f"{path}: truncated or corrupted ({type(err).__name__}: {err})") from None
        if not isinstance(records, list):
            raise GennapeError(f"{path}: expected a JSON list of NB-101 records")
        out = []
        for i, rec in enumerate(records):
            try:
                spec = self.spec_from_record(rec)
                extra = {k: v for k, v in rec.items() if k not in ("hash", "matrix", "ops", "val_acc_108")}
                out.append(LabelledArch(key=rec["hash"], spec=spec, accuracy=float(rec["val_acc_108"]), extra=extra))
            except (KeyError, TypeError, ValueError) as err:
                raise GennapeError(f"{path}: record {i}: {err}") from None
        return out

    def iter_specs(self, data_dir: Path | None = None) -> Iterator[NB101Spec]:
        """Every architecture of the space (423,624 specs), in file order."""
        path = _data_file(data_dir, ALL_SPECS_FILE)
        with _open_text(path) as f:
            number = 0
            while True:
                number += 1
                try:
                    line = f.readline()  # a truncated gzip stream fails here, not in json
                    if not line:
                        return
                    spec = self.spec_from_record(json.loads(line))
                except (*_READ_ERRORS, KeyError, TypeError) as err:
                    raise GennapeError(f"{path}: line {number}: {type(err).__name__}: {err}") from None
                yield spec


FAMILY = register_family(NB101Family())

__all__ = [
    "NB101Spec", "NB101Family", "FAMILY", "CELL_OPS", "CellPlan", "cell_plan", "prune",
    "hash_module", "canonical_order", "compute_vertex_channels", "build_cg", "stack_channels",
]
