"""DARTS genotypes as NAS-Bench-301 trained them, on CIFAR-10 (32x32, 10 classes).

Spec: the compact encoding of NASLib's NB-301 file,
``[[(input_node, op_index) x 8 normal], [(input_node, op_index) x 8 reduce]]``
(pairs ``2k`` and ``2k+1`` feed intermediate node ``k+2``; nodes 0 and 1 are
the cell inputs; the cell output concatenates nodes 2..5), with
``op_index`` into :data:`OPS`.

Network: DARTS ``NetworkCIFAR`` with C = 32 and 8 cells (reductions at cells
2 and 5), stem conv3x3(3, 96) + BN, ReLU-conv1x1-BN preprocessing
(FactorizedReduce for input 0 after a reduction), global average pool and
linear 512 -> 10; the auxiliary head is a training-only branch and not part
of the network (NASLib's ``count_parameters_in_MB`` excludes it too).
BN settings follow NASLib's ``NasBench301SearchSpace``, the network whose
``params`` the shared file reports: cell-op BNs (SepConv, DilConv, the
FactorizedReduce of a reduction-cell ``skip_connect``) are non-affine, and
every pooling op is followed by a non-affine BN; stem and preprocessing BNs
are affine. This reproduces NASLib's ``params`` exactly for all 725 genotypes
of the file; the DARTS-paper choice (affine everywhere, no BN after pools)
would count 0.5-1.2 % more.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path

from gennape.cg.families.base import Family, LabelledArch, register_family
from gennape.cg.families.cell_builder import LayerGraph
from gennape.cg.graph import CG

#: DARTS op names in NB-301 / NASLib compact-encoding order.
OPS: tuple[str, ...] = (
    "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
    "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
)

INIT_CHANNELS = 32
LAYERS = 8
STEM_MULTIPLIER = 3
NUM_CLASSES = 10
STEPS = 4  # intermediate nodes per cell

Pairs = tuple[tuple[int, int], ...]


def reduction_layers(layers: int = LAYERS) -> tuple[int, int]:
    return (layers // 3, 2 * layers // 3)


@dataclass(frozen=True)
class NB301Spec:
    """A DARTS genotype: 8 ``(input_node, op_index)`` pairs per cell type."""

    normal: Pairs
    reduce: Pairs

    def to_arch(self) -> str:
        return str([list(self.normal), list(self.reduce)])

    def ops(self, reduction: bool) -> list[tuple[str, int]]:
        """``(op name, input node)`` of the 8 edges of one cell type."""
        return [(OPS[o], i) for i, o in (self.reduce if reduction else self.normal)]


def parse(arch) -> NB301Spec:
    """Parse the compact genotype (a string as in the shared file, with tuples or
    lists, or the nested sequence itself); ``ValueError`` says what is wrong."""
    value = arch
    if isinstance(arch, str):
        try:
            value = ast.literal_eval(arch.strip())
        except (ValueError, SyntaxError) as e:
            raise ValueError(f"NB-301 arch {arch!r} is not a literal list: {e}") from None
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(
            f"NB-301 arch {arch!r} must be [normal, reduce], two lists of 8 (input_node, op_index) pairs"
        )
    cells = []
    for name, cell in zip(("normal", "reduce"), value):
        if not isinstance(cell, (list, tuple)) or len(cell) != 2 * STEPS:
            raise ValueError(f"NB-301 arch: the {name} cell must have {2 * STEPS} (input_node, op_index) pairs")
        pairs = []
        for j, pair in enumerate(cell):
            if (not isinstance(pair, (list, tuple)) or len(pair) != 2
                    or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair)):
                raise ValueError(f"NB-301 arch: {name} pair {j} {pair!r} must be two integers (input_node, op_index)")
            node, op = pair
            if not 0 <= op < len(OPS):
                raise ValueError(
                    f"NB-301 arch: {name} pair {j} has op_index {op}; valid 0..{len(OPS) - 1} ({', '.join(OPS)})"
                )
            if not 0 <= node < j // 2 + 2:
                raise ValueError(
                    f"NB-301 arch: {name} pair {j} feeds node {j // 2 + 2} from node {node}; "
                    f"valid inputs are 0..{j // 2 + 1}"
                )
            pairs.append((node, op))
        for k in range(STEPS):
            if pairs[2 * k][0] == pairs[2 * k + 1][0]:
                raise ValueError(
                    f"NB-301 arch: the two inputs of {name} node {k + 2} are both node {pairs[2 * k][0]}; "
                    "NB-301 genotypes use two different input nodes"
                )
        cells.append(tuple(pairs))
    return NB301Spec(cells[0], cells[1])


# ---------------------------------------------------------------- CG path
def _factorized_reduce(g: LayerGraph, x: int, c_out: int, affine: bool) -> int:
    r = g.relu(x)
    a = g.conv(r, c_out // 2, 1, 2)
    b = g.conv(g.crop(r, 1), c_out // 2, 1, 2)
    return g.bn(g.concat([a, b]), affine)


def _relu_conv_bn(g: LayerGraph, x: int, c_out: int) -> int:
    return g.bn(g.conv(g.relu(x), c_out, 1))


def _op(g: LayerGraph, name: str, x: int, c: int, stride: int) -> int:
    if name == "skip_connect":
        return x if stride == 1 else _factorized_reduce(g, x, c, affine=False)
    if name in ("max_pool_3x3", "avg_pool_3x3"):
        return g.bn(g.pool(name[:-4], x, 3, stride, 1), affine=False)
    k = int(name[-1])
    if name.startswith("sep_conv"):
        y = g.bn(g.conv(g.conv(g.relu(x), c, k, stride, k // 2, groups=c), c, 1), affine=False)
        return g.bn(g.conv(g.conv(g.relu(y), c, k, 1, k // 2, groups=c), c, 1), affine=False)
    # dil_conv
    return g.bn(g.conv(g.conv(g.relu(x), c, k, stride, k - 1, dilation=2, groups=c), c, 1), affine=False)


def _cell(g: LayerGraph, spec: NB301Spec, s0: int, s1: int, c: int, reduction: bool,
          reduction_prev: bool) -> int:
    s0 = _factorized_reduce(g, s0, c, affine=True) if reduction_prev else _relu_conv_bn(g, s0, c)
    s1 = _relu_conv_bn(g, s1, c)
    states = [s0, s1]
    edges = spec.ops(reduction)
    for k in range(STEPS):
        terms = []
        for name, i in edges[2 * k: 2 * k + 2]:
            stride = 2 if reduction and i < 2 else 1
            terms.append(_op(g, name, states[i], c, stride))
        states.append(g.add(terms[0], terms[1]))
    return g.concat(states[2:])


def build_cg(spec: NB301Spec, reference: bool = False) -> CG:
    """The canonical CG (``reference=True``: ordered by :class:`gennape.cg.graph.GraphBuilder`)."""
    g = LayerGraph(spec.to_arch())
    x = g.input((3, 32, 32))
    c = STEM_MULTIPLIER * INIT_CHANNELS
    s0 = s1 = g.bn(g.conv(x, c, 3, 1, 1))
    c = INIT_CHANNELS
    reduction_prev = False
    for i in range(LAYERS):
        reduction = i in reduction_layers()
        if reduction:
            c *= 2
        s0, s1 = s1, _cell(g, spec, s0, s1, c, reduction, reduction_prev)
        reduction_prev = reduction
    g.output(g.linear(g.global_avg_pool(s1), NUM_CLASSES), (NUM_CLASSES,))
    return g.build(reference)


class NB301Family(Family):
    name = "nb301"
    title = "NB-301 (DARTS)"
    summary = "DARTS genotypes as trained by NAS-Bench-301, CIFAR-10, 32x32"
    arch_help = "the compact DARTS genotype of the shared file, e.g. '[[[0, 3], [1, 3], ...], [[0, 0], ...]]'"
    input_shape = (3, 32, 32)

    def parse(self, arch) -> NB301Spec:
        return parse(arch)

    def to_cg(self, spec: NB301Spec) -> CG:
        return build_cg(spec)

    def to_module(self, spec: NB301Spec):
        from gennape.cg.families.nets.nb301 import NetworkCIFAR

        return NetworkCIFAR(spec)

    def reference_module(self, spec: NB301Spec):
        """The network as DARTS's own code writes it (see :mod:`gennape.cg.families.nets.nb301_reference`)."""
        from gennape.cg.families.nets.nb301_reference import NetworkCIFAR

        return NetworkCIFAR(spec)

    def sample(self, rng) -> NB301Spec:
        """A genotype as NASLib samples one: two distinct inputs per node, ops uniform."""
        cells = []
        for _ in range(2):
            pairs = []
            for k in range(STEPS):
                a, b = rng.sample(range(k + 2), 2)
                pairs += [(a, rng.randrange(len(OPS))), (b, rng.randrange(len(OPS)))]
            cells.append(tuple(pairs))
        return NB301Spec(cells[0], cells[1])

    def load_labelled(self, data_dir: Path | None = None) -> list[LabelledArch]:
        """The 725 genotypes of NASLib's NB-301 file; label ``val_accuracy``
        (percent -> fraction; NB-301 surrogate predictions, a noisy label);
        ``extra`` keeps ``params`` (a count), ``flops`` and zero-cost scores."""
        from gennape.cg.data import data_dir as find
        from gennape.cg.errors import GennapeError
        from gennape.cg.families.nb201 import _scores

        root = Path(data_dir) if data_dir is not None else find()
        path = root / "nb301" / "naslib_zc_nasbench301_725.json"
        if not path.is_file():
            raise GennapeError(f"{path}: benchmark data file not found")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))["cifar10"]
            records = list(data.items())
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise GennapeError(f"{path}: not a NASLib NB-301 file ({type(e).__name__}: {e}); "
                               'expected {"cifar10": {key: record}}') from None
        out = []
        for key, rec in records:
            try:
                spec = parse(rec["arch"])
                extra = _scores(rec, skip=("idx", "arch", "val_accuracy"))
                accuracy = float(rec["val_accuracy"]) / 100.0
            except (KeyError, TypeError, ValueError) as e:
                raise GennapeError(f"{path}: record {key!r}: {type(e).__name__}: {e}") from None
            out.append(LabelledArch(spec.to_arch(), spec, accuracy, extra))
        return out


def random_specs(n: int, seed: int = 0) -> list[NB301Spec]:
    """``n`` distinct random genotypes, sampled as NASLib samples them."""
    return FAMILY.random_specs(n, seed)


def equivalence_check(n: int = 50, seed: int = 0, specs=None, reference: bool = False) -> dict:
    """:meth:`Family.equivalence_check` for DARTS genotypes (``reference``: DARTS's own model code)."""
    return FAMILY.equivalence_check(n, seed, specs, reference)


FAMILY = register_family(NB301Family())
