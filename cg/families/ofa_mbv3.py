"""Once-for-All MobileNetV3 (width 1.0) subnets: ``ks`` / ``e`` / ``d`` / ``r`` specs.

The network is exactly what mit-han-lab/once-for-all builds with
``OFAMobileNetV3(width_mult=1.0, ks_list=[3, 5, 7], expand_ratio_list=[3, 4, 6],
depth_list=[2, 3, 4])``, ``set_active_subnet(ks, e, d)`` and
``get_active_subnet()``:

* stem: 3x3 stride-2 conv to 16 channels + BN + h-swish;
* first block: depthwise 3x3 (16 channels) + BN + ReLU, 1x1 project to 16 + BN,
  residual;
* five stages of up to four MBConv blocks, widths 24 / 40 / 80 / 112 / 160,
  activations relu / relu / h-swish / h-swish / h-swish, squeeze-excite in
  stages 2, 4 and 5, first-block strides 2 / 2 / 2 / 1 / 2. Stage ``s`` uses its
  first ``d[s]`` blocks; block ``4 s + i`` has depthwise kernel ``ks[4 s + i]``
  and expanded width ``make_divisible(round(C_in * e[4 s + i]), 8)``; its SE
  squeezes to ``make_divisible(mid // 4, 8)`` channels (1x1 convs with bias,
  ReLU, hard sigmoid); a block adds its input when stride is 1 and widths match;
* head: 1x1 conv to 960 + BN + h-swish, global average pool, 1x1 conv to 1280
  (no BN, no bias) + h-swish, dropout 0.1, linear 1280 -> 1000.

One network gives one spec: the kernel sizes and expand ratios of blocks beyond
a stage's depth do not change the network, so the spec stores them as 0 (as
OFA's own ``MobileNetArchEncoder.feature2arch`` does); the parser accepts any
valid value or 0 there.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

from gennape.cg.data import data_dir as default_data_dir
from gennape.cg.errors import GennapeError
from gennape.cg.families.base import Family, LabelledArch, register_family
from gennape.cg.graph import CG, GraphBuilder, Node
from gennape.cg.ops import conv_op_for, weighted_macs

KERNEL_SIZES = (3, 5, 7)
EXPAND_RATIOS = (3, 4, 6)
DEPTHS = (2, 3, 4)
#: Resolutions the OFA supernet was trained at (128..224 in steps of 4).
RESOLUTIONS = tuple(range(128, 225, 4))
NUM_STAGES = 5
MAX_DEPTH = 4
NUM_BLOCKS = NUM_STAGES * MAX_DEPTH

CHANNEL_DIVISIBLE = 8
SE_REDUCTION = 4


def make_divisible(v: float, divisor: int = CHANNEL_DIVISIBLE, min_val: int | None = None) -> int:
    """OFA's (and TF-slim's) channel rounding: nearest multiple of ``divisor``,
    never below ``min_val`` nor more than 10% below ``v``."""
    if min_val is None:
        min_val = divisor
    new_v = max(min_val, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


# Layout of OFAMobileNetV3 at width_mult 1.0 (base widths rounded by make_divisible).
STEM_CHANNELS = make_divisible(16)
FIRST_BLOCK_CHANNELS = make_divisible(16)
STAGE_CHANNELS = tuple(make_divisible(w) for w in (24, 40, 80, 112, 160))
STAGE_ACTS = ("relu", "relu", "h_swish", "h_swish", "h_swish")
STAGE_SE = (False, True, False, True, True)
STAGE_STRIDES = (2, 2, 2, 1, 2)
FINAL_EXPAND_CHANNELS = make_divisible(960)
FEATURE_MIX_CHANNELS = make_divisible(1280)
NUM_CLASSES = 1000
DROPOUT = 0.1

_ACT_OPS = {"relu": "relu", "h_swish": "hard_swish"}


@dataclass(frozen=True)
class MBConvConfig:
    """One inverted-bottleneck block of a subnet (what OFA's ``MBConvLayer`` gets).

    Args:
        in_channels / mid_channels / out_channels: block widths.
        kernel: depthwise kernel size.
        stride: depthwise stride.
        act: ``relu`` or ``h_swish``.
        se_channels: SE squeeze width, 0 without SE.
        expand: whether the 1x1 expansion conv exists (False only for the first block).
        residual: whether the block adds its input.
    """

    in_channels: int
    mid_channels: int
    out_channels: int
    kernel: int
    stride: int
    act: str
    se_channels: int
    expand: bool
    residual: bool


@dataclass(frozen=True)
class OFASpec:
    """An OFA-MobileNetV3 w1.0 subnet.

    Construction validates and canonicalises: values of blocks beyond a stage's
    depth become 0, so equal networks give equal (and equally hashed) specs.

    Args:
        ks: 20 depthwise kernel sizes (3, 5 or 7), four per stage.
        e: 20 expand ratios (3, 4 or 6).
        d: 5 stage depths (2, 3 or 4).
        r: input resolution (128..224, a multiple of 4).
    """

    ks: tuple[int, ...]
    e: tuple[int, ...]
    d: tuple[int, ...]
    r: int = 224

    def __post_init__(self):
        d = _int_tuple("d", self.d, NUM_STAGES, DEPTHS)
        active = [i % MAX_DEPTH < d[i // MAX_DEPTH] for i in range(NUM_BLOCKS)]
        ks = _block_tuple("ks", self.ks, KERNEL_SIZES, active)
        e = _block_tuple("e", self.e, EXPAND_RATIOS, active)
        r = self.r
        if isinstance(r, bool) or not isinstance(r, int) or r not in RESOLUTIONS:
            raise ValueError(
                f"r must be an input resolution from {RESOLUTIONS[0]} to {RESOLUTIONS[-1]} "
                f"in steps of 4, got {r!r}"
            )
        object.__setattr__(self, "ks", ks)
        object.__setattr__(self, "e", e)
        object.__setattr__(self, "d", d)

    def to_arch(self) -> str:
        """The ARCH string: ``{"ks": [...], "e": [...], "d": [...], "r": 224}``."""
        return json.dumps({"ks": list(self.ks), "e": list(self.e), "d": list(self.d), "r": self.r})

    def blocks(self) -> list[MBConvConfig]:
        """The subnet's blocks in order, the fixed first block included."""
        return list(_blocks(self.ks, self.e, self.d))


def _int_tuple(name: str, values: Any, length: int, choices: Sequence[int]) -> tuple[int, ...]:
    if not isinstance(values, (list, tuple)) or len(values) != length:
        raise ValueError(f"{name} must be a list of {length} integers, got {values!r}")
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, int) or v not in choices:
            raise ValueError(f"{name}[{i}] must be one of {list(choices)}, got {v!r}")
    return tuple(values)


def _block_tuple(name: str, values: Any, choices: Sequence[int], active: list[bool]) -> tuple[int, ...]:
    if not isinstance(values, (list, tuple)) or len(values) != NUM_BLOCKS:
        raise ValueError(f"{name} must be a list of {NUM_BLOCKS} integers (4 per stage), got {values!r}")
    out = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, int) or v not in (*choices, 0):
            raise ValueError(f"{name}[{i}] must be one of {list(choices)}, got {v!r}")
        if active[i] and v == 0:
            raise ValueError(
                f"{name}[{i}] is 0 but block {i % MAX_DEPTH + 1} of stage {i // MAX_DEPTH + 1} "
                f"is active (d[{i // MAX_DEPTH}] >= {i % MAX_DEPTH + 1}); use one of {list(choices)}"
            )
        out.append(v if active[i] else 0)
    return tuple(out)


@lru_cache(maxsize=4096)
def _blocks(ks: tuple[int, ...], e: tuple[int, ...], d: tuple[int, ...]) -> tuple[MBConvConfig, ...]:
    c = FIRST_BLOCK_CHANNELS
    # OFA's first block: MBConv with expand ratio 1 (no 1x1 expansion), 3x3, ReLU, no SE.
    blocks = [MBConvConfig(STEM_CHANNELS, STEM_CHANNELS, c, 3, 1, "relu", 0, False, STEM_CHANNELS == c)]
    for s in range(NUM_STAGES):
        out = STAGE_CHANNELS[s]
        for i in range(d[s]):
            b = s * MAX_DEPTH + i
            stride = STAGE_STRIDES[s] if i == 0 else 1
            mid = make_divisible(round(c * e[b]))
            se = make_divisible(mid // SE_REDUCTION) if STAGE_SE[s] else 0
            blocks.append(MBConvConfig(c, mid, out, ks[b], stride, STAGE_ACTS[s], se, True,
                                       stride == 1 and c == out))
            c = out
    return tuple(blocks)


# ----------------------------------------------------------------- spec -> CG
def _conv_out(size: int, kernel: int, stride: int) -> int:
    pad = kernel // 2
    return (size + 2 * pad - kernel) // stride + 1


class _Emitter:
    """Appends nodes in execution order; every op here has one data input except
    ``add`` and ``mul``, which get theirs explicitly."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.inputs: list[tuple[int, ...]] = []

    def add(self, node: Node, inputs: tuple[int, ...]) -> int:
        self.nodes.append(node)
        self.inputs.append(inputs)
        return len(self.nodes) - 1

    def conv(self, x: int, shape: tuple, cout: int, k: int, s: int = 1, groups: int = 1,
             bn: bool = True, bias: bool = False) -> tuple[int, tuple]:
        cin, h, w = shape
        ho, wo = _conv_out(h, k, s), _conv_out(w, k, s)
        out = (cout, ho, wo)
        cpg = cin // groups
        params = cout * cpg * k * k + (cout if bias else 0) + (2 * cout if bn else 0)
        weight = (cout, cpg, k, k)
        node = Node(conv_op_for(groups, cin), shape, out, (k, k), (s, s), (1, 1), groups,
                    weight, params, weighted_macs(out, weight))
        return self.add(node, (x,)), out

    def unary(self, op: str, x: int, shape: tuple, out: tuple | None = None) -> int:
        return self.add(Node(op, shape, shape if out is None else out), (x,))


@lru_cache(maxsize=None)
def _block_nodes(b: MBConvConfig, shape: tuple) -> tuple[tuple[Node, tuple[int, ...]], ...]:
    """The nodes of one block fed by a tensor of ``shape``, each with its inputs as
    block-local ids: 0 is the block's input, ``k`` the block's ``k``-th node.
    Blocks repeat across specs, so they are built once."""
    g = _Emitter()
    x = g.add(Node("input", (), shape), ())  # placeholder for the block input, dropped below
    act = _ACT_OPS[b.act]
    y, ys = x, shape
    if b.expand:
        y, ys = g.conv(y, ys, b.mid_channels, 1)
        y = g.unary(act, y, ys)
    y, ys = g.conv(y, ys, b.mid_channels, b.kernel, b.stride, groups=b.mid_channels)
    y = g.unary(act, y, ys)
    if b.se_channels:
        pooled = (ys[0], 1, 1)
        z = g.unary("global_avg_pool", y, ys, pooled)
        z, zs = g.conv(z, pooled, b.se_channels, 1, bn=False, bias=True)
        z = g.unary("relu", z, zs)
        z, zs = g.conv(z, zs, b.mid_channels, 1, bn=False, bias=True)
        z = g.unary("hard_sigmoid", z, zs)
        y = g.add(Node("mul", ys, ys), (y, z))  # SE: features first, gate second
    y, ys = g.conv(y, ys, b.out_channels, 1)
    if b.residual:
        g.add(Node("add", ys, ys), (y, x))  # residual: block output first, input second
    return tuple(zip(g.nodes[1:], g.inputs[1:]))


def _emit_block(g: _Emitter, x: int, shape: tuple, b: MBConvConfig) -> tuple[int, tuple]:
    base = len(g.nodes) - 1  # local id k >= 1 becomes base + k
    nodes = _block_nodes(b, shape)
    for node, inputs in nodes:
        g.add(node, tuple(x if k == 0 else base + k for k in inputs))
    return len(g.nodes) - 1, nodes[-1][0].out_shape


def build_cg(spec: OFASpec) -> CG:
    """The canonical CG of ``spec``, node for node what the ONNX importer builds
    from the exported module (see :mod:`gennape.cg.graph` for the canonical rules)."""
    g = _Emitter()
    shape = (3, spec.r, spec.r)
    x = g.add(Node("input", (), shape), ())
    x, shape = g.conv(x, shape, STEM_CHANNELS, 3, 2)
    x = g.unary("hard_swish", x, shape)
    for b in spec.blocks():
        x, shape = _emit_block(g, x, shape, b)
    x, shape = g.conv(x, shape, FINAL_EXPAND_CHANNELS, 1)
    x = g.unary("hard_swish", x, shape)
    pooled = (shape[0], 1, 1)
    x = g.unary("global_avg_pool", x, shape, pooled)
    x, shape = g.conv(x, pooled, FEATURE_MIX_CHANNELS, 1, bn=False)
    x = g.unary("hard_swish", x, shape)
    feat = (FEATURE_MIX_CHANNELS,)
    x = g.add(Node("linear", feat, (NUM_CLASSES,), weight_shape=(NUM_CLASSES, FEATURE_MIX_CHANNELS),
                   params=NUM_CLASSES * FEATURE_MIX_CHANNELS + NUM_CLASSES,
                   macs=weighted_macs((NUM_CLASSES,), (NUM_CLASSES, FEATURE_MIX_CHANNELS))), (x,))
    g.add(Node("output", (NUM_CLASSES,), (NUM_CLASSES,)), (x,))
    return _to_cg(g, f"ofa_mbv3:{spec.to_arch()}")


def _to_cg(g: _Emitter, name: str) -> CG:
    """The CG of the emitted nodes, in GraphBuilder's canonical order.

    A DAG has exactly one topological order when every node feeds the next one
    in that order; then GraphBuilder's order is the emission order and the
    CG is built directly, skipping its hashing. Otherwise, build
    through GraphBuilder.
    """
    inputs = g.inputs
    if all(i - 1 in inputs[i] for i in range(1, len(inputs))):
        edges = tuple((s, d) for d, srcs in enumerate(inputs) for s in srcs)
        return CG(nodes=tuple(g.nodes), edges=edges, name=name)
    b = GraphBuilder(name=name)
    for node, srcs in zip(g.nodes, inputs):
        b.add(node, srcs)
    return b.build()


# ------------------------------------------------------------------ family
class OFAMobileNetV3Family(Family):
    """OFA-MobileNetV3 w1.0 subnets on ImageNet (``ofa_mbv3``)."""

    name = "ofa_mbv3"
    title = "OFA-MobileNetV3 (ImageNet)"
    summary = "Once-for-All MobileNetV3 w1.0 subnets (ks/e/d/r), ImageNet"
    arch_help = '{"ks": [...20], "e": [...20], "d": [...5], "r": 224}'
    input_shape = (3, 224, 224)
    #: The labelled file, relative to the data folder.
    data_file = Path("ofa_mbv3") / "ofa_mbv3_w10_imagenet.csv"

    def parse(self, arch: str) -> OFASpec:
        """Parse ``{"ks": [20 ints], "e": [20 ints], "d": [5 ints], "r": 224}``
        (``r`` defaults to 224); ``ValueError`` says what is wrong."""
        try:
            obj = json.loads(arch)
        except (TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"OFA arch must be a JSON object with ks, e, d, r: {exc}") from None
        if not isinstance(obj, dict):
            raise ValueError(f"OFA arch must be a JSON object with ks, e, d, r, got {type(obj).__name__}")
        missing = [k for k in ("ks", "e", "d") if k not in obj]
        unknown = sorted(set(obj) - {"ks", "e", "d", "r"})
        if missing or unknown:
            problems = ([f"missing {', '.join(missing)}"] if missing else []) + (
                [f"unknown key(s) {', '.join(unknown)}"] if unknown else [])
            raise ValueError(f"OFA arch: {'; '.join(problems)}; expected keys ks, e, d, r")
        return OFASpec(obj["ks"], obj["e"], obj["d"], obj.get("r", 224))

    def to_cg(self, spec: OFASpec) -> CG:
        return build_cg(spec)

    def to_module(self, spec: OFASpec):
        from gennape.cg.families.nets.ofa_mbv3 import OFAMobileNetV3Net

        return OFAMobileNetV3Net(
            spec.blocks(), stem_channels=STEM_CHANNELS, final_expand_channels=FINAL_EXPAND_CHANNELS,
            feature_mix_channels=FEATURE_MIX_CHANNELS, num_classes=NUM_CLASSES, dropout=DROPOUT,
        )

    def example_input_shape(self, spec: OFASpec) -> tuple[int, int, int]:
        return (3, spec.r, spec.r)

    def load_labelled(self, data_dir: Path | None = None) -> list[LabelledArch]:
        """Every row of ``ofa_mbv3/ofa_mbv3_w10_imagenet.csv``: label ``top1 / 100``,
        ``extra`` holds ``macs`` and ``params`` (OFA's counts).

        The file has 2,223 rows but 2,162 distinct networks: 57 networks appear
        2 or 3 times (rows differing only in unused blocks' values), with
        slightly different top-1. Rows are kept as they are; ``key`` is the
        canonical ARCH string, so duplicates share it.
        """
        path = Path(data_dir if data_dir is not None else default_data_dir()) / self.data_file
        if not path.is_file():
            raise GennapeError(f"{path}: benchmark data file not found")
        out = []
        with open(path, newline="") as f:
            for line, row in enumerate(csv.DictReader(f), start=2):
                try:
                    spec = OFASpec(json.loads(row["ks"]), json.loads(row["e"]),
                                   json.loads(row["d"]), int(row["r"]))
                    top1 = float(row["top1"])
                    extra = {"macs": int(row["macs"]), "params": int(row["params"])}
                except (KeyError, TypeError, ValueError) as exc:
                    raise GennapeError(f"{path}: line {line}: {exc}") from None
                out.append(LabelledArch(spec.to_arch(), spec, top1 / 100.0, extra))
        return out


FAMILY = register_family(OFAMobileNetV3Family())

__all__ = ["OFASpec", "MBConvConfig", "OFAMobileNetV3Family", "FAMILY", "build_cg", "make_divisible"]
