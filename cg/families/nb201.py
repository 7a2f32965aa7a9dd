"""NAS-Bench-201: cells given as arch strings, on CIFAR-10 (32x32, 10 classes).

The network is AutoDL's ``TinyNetwork`` as NAS-Bench-201 trained it: stem
conv3x3(3, 16) + BN; three stages of N = 5 cells with C = 16, 32, 64; a
ResNet basic block (stride 2, avg-pool + 1x1-conv shortcut) between stages;
BN + ReLU; global average pool; linear 64 -> 10. Every BN is affine: that is
what NASLib's ``params`` counts (``0.615386`` M for the file's first cell is
only reached with affine cell BNs; with ``affine=False`` it would be 0.610906).

Cell edges: ``nor_conv_kxk`` = ReLU, conv (no bias), BN; ``avg_pool_3x3`` =
AvgPool(3, 1, 1, count_include_pad=False) with no conv (C_in == C_out);
``skip_connect`` = identity; ``none`` = zeros.

``none`` and dead nodes
-----------------------
A ``none`` edge adds zeros, so it is no edge in the CG. A node is *live* when
its value depends on the network input, i.e. some non-``none`` edge comes from
a live node. A *dead* node is constant: zero when all its edges are ``none``,
else the input-independent output of a conv reading a dead node (its BN
shift). The CG shows live data flow only: dead nodes, the layers computing
them and every edge leaving them are absent (a constant branch, by the
canonical rules), and so are live layers whose result nothing uses (the
exporter drops them too). So the CG's ``params`` is
:func:`trainable_params` minus exactly the layers off every input-to-output
path (:func:`path_params` counts what is left). Both torch modules compute
dead values: :mod:`gennape.cg.families.nets.nb201` from constant zero tensors
of shape ``(1, C, H, W)`` (constant subgraphs in the export),
:mod:`gennape.cg.families.nets.nb201_reference` as AutoDL does, ``x.mul(0.)``.

When a cell's output node is dead the network's output does not depend on its
input (341 of the 15,625 cells): the CG keeps only an ``input`` node and an
``output`` node with no incoming edge. The exported ONNX then has no network
input at all (the exporter drops the unused input), which the importer refuses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from gennape.cg.families.base import Family, LabelledArch, read_json_list, register_family
from gennape.cg.families.cell_builder import LayerGraph, sum_cell
from gennape.cg.graph import CG

#: The five NAS-Bench-201 edge operations.
OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")

#: ``(node, input_node)`` of the six cell edges, in arch-string order.
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))

CHANNELS: tuple[int, ...] = (16, 32, 64)
CELLS_PER_STAGE = 5
NUM_CLASSES = 10


@dataclass(frozen=True)
class NB201Spec:
    """A NAS-Bench-201 cell: the op on each of the six edges of :data:`EDGES`."""

    ops: tuple[str, ...]

    def to_arch(self) -> str:
        it = iter(zip(self.ops, EDGES))
        groups = []
        for node in (1, 2, 3):
            groups.append("|".join(f"{op}~{src}" for op, (_, src) in (next(it) for _ in range(node))))
        return "|" + "|+|".join(groups) + "|"

    def live_nodes(self) -> tuple[bool, bool, bool, bool]:
        """Whether each cell node (0..3) depends on the cell input."""
        live = [True, False, False, False]
        for op, (node, src) in zip(self.ops, EDGES):
            if op != "none" and live[src]:
                live[node] = True
        return tuple(live)  # type: ignore[return-value]


def parse(arch: str) -> NB201Spec:
    """Parse ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``; ``ValueError`` says what is wrong."""
    if not isinstance(arch, str):
        raise ValueError(f"NB-201 arch must be a string, got {type(arch).__name__}")
    text = arch.strip()
    groups = text.split("+")
    if len(groups) != 3:
        raise ValueError(
            f"NB-201 arch {arch!r} must have 3 node groups joined by '+', got {len(groups)}; "
            "expected like |nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
        )
    ops: list[str] = []
    for node, group in enumerate(groups, start=1):
        if not (group.startswith("|") and group.endswith("|")) or len(group) < 2:
            raise ValueError(f"NB-201 arch {arch!r}: node {node} group {group!r} must be wrapped in '|'")
        items = group[1:-1].split("|")
        if len(items) != node:
            raise ValueError(f"NB-201 arch {arch!r}: node {node} must have {node} input edge(s), got {len(items)}")
        for src, item in enumerate(items):
            op, sep, idx = item.partition("~")
            if not sep:
                raise ValueError(f"NB-201 arch {arch!r}: edge {item!r} must be op~input")
            if op not in OPS:
                raise ValueError(f"NB-201 arch {arch!r}: unknown op {op!r}; valid ops: {', '.join(OPS)}")
            if idx != str(src):
                raise ValueError(
                    f"NB-201 arch {arch!r}: edge {src + 1} of node {node} must read node {src}, got {idx!r}"
                )
            ops.append(op)
    return NB201Spec(tuple(ops))


def _edge(g: LayerGraph, op: str, x: int) -> int:
    """One live cell edge (not ``none``) applied to layer ``x``."""
    if op == "skip_connect":
        return x
    if op == "avg_pool_3x3":
        return g.pool("avg_pool", x, 3, 1, 1)
    k = 3 if op == "nor_conv_3x3" else 1
    c = g.shape(x)[0]
    return g.bn(g.conv(g.relu(x), c, k, 1, k // 2))


def _cell(g: LayerGraph, spec: NB201Spec, x: int) -> int | None:
    """The cell on live layer ``x``; its live output or None (dead output node).
    Dead values: :func:`gennape.cg.families.cell_builder.sum_cell`."""
    edges = [(node, src, op) for op, (node, src) in zip(spec.ops, EDGES) if op != "none"]
    return sum_cell(g, x, edges, lambda v, op, _src: _edge(g, op, v), last=3)


def _resblock(g: LayerGraph, x: int, c_out: int) -> int:
    a = g.bn(g.conv(g.relu(x), c_out, 3, 2, 1))
    b = g.bn(g.conv(g.relu(a), c_out, 3, 1, 1))
    shortcut = g.conv(g.pool("avg_pool", x, 2, 2, 0), c_out, 1)
    return g.add(shortcut, b)


def build_cg(spec: NB201Spec, reference: bool = False) -> CG:
    """The canonical CG (``reference=True``: ordered by :class:`gennape.cg.graph.GraphBuilder`)."""
    g = LayerGraph(spec.to_arch())
    x: int | None = g.input((3, 32, 32))
    x = g.bn(g.conv(x, CHANNELS[0], 3, 1, 1))
    for stage, c in enumerate(CHANNELS):
        if stage > 0 and x is not None:
            x = _resblock(g, x, c)
        for _ in range(CELLS_PER_STAGE):
            if x is not None:
                x = _cell(g, spec, x)
    if x is not None:
        x = g.linear(g.global_avg_pool(g.relu(g.bn(x))), NUM_CLASSES)
    g.output(x, (NUM_CLASSES,))
    return g.build(reference)


def trainable_params(spec: NB201Spec) -> int:
    """The network's trainable-parameter count (every layer, dead ones too),
    without building it; equals ``to_module(spec)``'s count."""
    def conv_bn(c_in: int, c_out: int, k: int) -> int:
        return c_in * c_out * k * k + 2 * c_out

    total = conv_bn(3, CHANNELS[0], 3)
    for stage, c in enumerate(CHANNELS):
        if stage > 0:
            c_in = CHANNELS[stage - 1]
            total += conv_bn(c_in, c, 3) + conv_bn(c, c, 3) + c_in * c  # + 1x1 shortcut
        for op in spec.ops:
            if op.startswith("nor_conv"):
                total += CELLS_PER_STAGE * conv_bn(c, c, int(op[-3]))
    return total + 2 * CHANNELS[-1] + CHANNELS[-1] * NUM_CLASSES + NUM_CLASSES


def path_params(spec: NB201Spec) -> int:
    """The trainable parameters of the layers on some input-to-output path:
    :func:`trainable_params` minus the layers of dead nodes' edges and of
    edges into nodes no ``output`` uses; 0 when the cell output is dead (the
    network's output is then a constant). The CG's ``params`` equals it."""
    live = spec.live_nodes()
    if not live[3]:
        return 0
    used = [False, False, False, True]
    for op, (node, src) in sorted(zip(spec.ops, EDGES), key=lambda e: -e[1][0]):
        if op != "none" and used[node]:
            used[src] = True
    dropped = 0
    for stage, c in enumerate(CHANNELS):
        for op, (node, src) in zip(spec.ops, EDGES):
            if op.startswith("nor_conv") and not (live[src] and used[node]):
                k = int(op[-3])
                dropped += CELLS_PER_STAGE * (c * c * k * k + 2 * c)
    return trainable_params(spec) - dropped


class NB201Family(Family):
    name = "nb201"
    title = "NB-201 (CIFAR-10)"
    summary = "NAS-Bench-201 cells (arch strings), CIFAR-10 / CIFAR-100 / ImageNet16-120 labels"
    arch_help = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    input_shape = (3, 32, 32)
    space_size = len(OPS) ** len(EDGES)
    #: ``dataset`` of :meth:`load_labelled` -> (file, column).
    DATASETS = {"cifar10": ("nb201_cifar10_15625.json.gz", "test_acc_200ep"),
                "cifar100": ("nb201_3datasets_15625.json.gz", "cifar100"),
                "imagenet16_120": ("nb201_3datasets_15625.json.gz", "imagenet16_120")}
    label_options = {"dataset": tuple(DATASETS)}

    def parse(self, arch: str) -> NB201Spec:
        return parse(arch)

    def to_cg(self, spec: NB201Spec) -> CG:
        return build_cg(spec)

    def trainable_params(self, spec: NB201Spec) -> int:
        return trainable_params(spec)

    def to_module(self, spec: NB201Spec):
        from gennape.cg.families.nets.nb201 import TinyNetwork

        return TinyNetwork(spec)

    def reference_module(self, spec: NB201Spec):
        """The network as NAS-Bench-201's own code writes it (``none`` as ``x.mul(0.)``)."""
        from gennape.cg.families.nets.nb201_reference import TinyNetwork

        return TinyNetwork(spec)

    def sample(self, rng) -> NB201Spec:
        return NB201Spec(tuple(rng.choice(OPS) for _ in EDGES))

    def output_depends_on_input(self, spec: NB201Spec) -> bool:
        return spec.live_nodes()[3]

    def load_labelled(self, data_dir: Path | None = None, dataset: str = "cifar10") -> list[LabelledArch]:
        """All 15,625 cells with their test accuracy after 200 epochs on ``dataset``
        (as a fraction; mean over the benchmark's runs).

        ``cifar10`` reads ``nb201_cifar10_15625.json.gz`` (every figure so far was
        measured on it); ``cifar100`` and ``imagenet16_120`` read
        ``nb201_3datasets_15625.json.gz`` (NATS-Bench ``tss``, ``hp=200``).
        Specs and CGs are the CIFAR-10 network's for every dataset: the benchmark's
        CIFAR-100 / ImageNet16-120 networks differ only in the classifier (100 / 120
        outputs) and, for ImageNet16-120, the 16x16 input. For CIFAR-10, ``extra``
        holds NASLib's params / flops / zero-cost scores of the 724 cells of
        ``naslib_zc_nasbench201_cifar10_724.json`` when present.
        """
        from gennape.cg.data import data_dir as find
        from gennape.cg.errors import GennapeError

        if dataset not in self.DATASETS:
            raise ValueError(f"unknown NB-201 dataset {dataset!r}; valid datasets: {', '.join(self.DATASETS)}")
        file, column = self.DATASETS[dataset]
        root = Path(data_dir) if data_dir is not None else find()
        path = root / "nb201" / file
        records = read_json_list(path, "an NB-201 label file", f'a gzipped JSON list of {{"arch", "{column}"}}')
        zc = load_zero_cost(root) if dataset == "cifar10" else {}
        out = []
        for i, rec in enumerate(records):
            try:
                spec = parse(rec["arch"])
                accuracy = float(rec[column]) / 100.0
            except (KeyError, TypeError, ValueError) as e:
                raise GennapeError(f"{path}: record {i}: {type(e).__name__}: {e}") from None
            key = spec.to_arch()
            out.append(LabelledArch(key, spec, accuracy, dict(zc.get(key, {}))))
        return out


def load_zero_cost(root: Path) -> dict[str, dict]:
    """``arch string -> {params (count), flops, val_accuracy, <proxy>: score}`` from
    NASLib's zero-cost file (empty when the file is absent)."""
    path = Path(root) / "nb201" / "naslib_zc_nasbench201_cifar10_724.json"
    if not path.is_file():
        return {}
    from gennape.cg.errors import GennapeError

    try:
        records = list(json.loads(path.read_text(encoding="utf-8"))["cifar10"].items())
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise GennapeError(f"{path}: not a NASLib NB-201 file ({type(e).__name__}: {e}); "
                           'expected {"cifar10": {key: record}}') from None
    out = {}
    for key, rec in records:
        try:
            out[parse(rec["arch_str"]).to_arch()] = _scores(rec, skip=("idx", "arch", "arch_str"))
        except (KeyError, TypeError, ValueError) as e:
            raise GennapeError(f"{path}: record {key!r}: {type(e).__name__}: {e}") from None
    return out


def _scores(rec: dict, skip: tuple[str, ...]) -> dict:
    """Flatten NASLib's ``{"score", "time"}`` entries; ``params`` (millions) -> a count."""
    extra = {}
    for k, v in rec.items():
        if k in skip:
            continue
        extra[k] = v["score"] if isinstance(v, dict) and "score" in v else v
    if "params" in extra:
        extra["params_millions"] = extra["params"]
        extra["params"] = round(extra["params"] * 1e6)
    return extra


FAMILY = register_family(NB201Family())


# ------------------------------------------------------------- equivalence
# Kept for callers of the module-level names; the checks themselves are Family's.
def onnx_cg(family: Family, spec, reference: bool = False) -> CG:
    """``family.onnx_cg(spec, reference)``: the importer's CG of the exported
    module (with ``reference``: of the benchmark's own network code)."""
    return family.onnx_cg(spec, reference)


def random_specs(n: int, seed: int = 0) -> list[NB201Spec]:
    """``n`` distinct random cells (deterministic for a seed)."""
    return FAMILY.random_specs(n, seed)


def equivalence_check(n: int = 50, seed: int = 0, family: Family | None = None, specs=None,
                      reference: bool = False) -> dict:
    """:meth:`Family.equivalence_check` of ``family`` (default NB-201)."""
    return (family or FAMILY).equivalence_check(n, seed, specs, reference)
