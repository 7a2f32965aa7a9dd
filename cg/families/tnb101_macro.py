"""TransNAS-Bench-101 macro (skeleton-level) space: ResNet skeletons on Taskonomy, 3x256x256 inputs.

Spec: one code per module (4 to 6 modules), as the benchmark's string
``64-<codes>-basic`` or the shared file's ``arch`` (the codes, then ``0`` padding
to length 6), plus the task (see :mod:`gennape.cg.families.tnb101_common`).
Code ``1`` keeps channels and resolution, ``2`` doubles the channels, ``3``
halves the resolution (stride 2), ``4`` does both (NASLib ``MacroNet``: "channel
change: [2, 4]; stride change: [3, 4]"). The space (NASLib's sampler) has 1 to 4
modules halving the resolution and 1 to 3 doubling the channels: 3,256 networks.

Network (NASLib ``MacroNet('64-<codes>-basic')`` + ``FFDecoder``): the shared stem
(64 channels at 64x64); per module two ResNet basic blocks (``ResNetBasicblock``:
ReLU-conv3x3-BN twice, plus the input; the first block carries the module's
stride and channel change and then has a 1x1 conv + BN shortcut); global average
pool; linear from ``64 * 2^(number of 2s and 4s)`` channels. Every BN is affine.
This reproduces the file's ``params`` exactly (see ``benchmarks/families.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import product
from pathlib import Path

from gennape.cg.families import tnb101_common as tnb
from gennape.cg.families.base import Family, LabelledArch, register_family
from gennape.cg.families.cell_builder import LayerGraph
from gennape.cg.graph import CG

MODULES = range(4, 7)
CODES = range(1, 5)
#: Modules halving the resolution (codes 3, 4) and doubling the channels (codes 2, 4).
DOWNSAMPLES = range(1, 5)
WIDENINGS = range(1, 4)
BLOCKS_PER_MODULE = 2
FILE_LENGTH = 6


def in_space(codes: tuple[int, ...]) -> bool:
    """Whether valid codes have 1-4 modules halving the resolution and 1-3 doubling the channels."""
    return sum(c in (3, 4) for c in codes) in DOWNSAMPLES and sum(c in (2, 4) for c in codes) in WIDENINGS


def module_layout(codes: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """``(c_in, c_out, stride)`` of every module's first block (``MacroNet.__init__``)."""
    out, c = [], tnb.BASE_CHANNELS
    for code in codes:
        c_out = c * 2 if code % 2 == 0 else c
        out.append((c, c_out, 2 if code > 2 else 1))
        c = c_out
    return out


@dataclass(frozen=True)
class TNB101MacroSpec:
    """A macro skeleton (one code per module) and the task of its head.

    Construction validates; ``ValueError`` says what is wrong.
    """

    codes: tuple[int, ...]
    task: str = tnb.DEFAULT_TASK

    def __post_init__(self):
        codes = tnb.check_codes(self.codes, "macro", MODULES, CODES)
        if not in_space(codes):
            down, wide = sum(c in (3, 4) for c in codes), sum(c in (2, 4) for c in codes)
            raise ValueError(
                f"TNB-101 macro arch {list(codes)}: {down} module(s) halve the resolution (codes 3, 4) and "
                f"{wide} double the channels (codes 2, 4); the space has 1-4 and 1-3")
        object.__setattr__(self, "codes", codes)
        tnb.check_task(self.task, "macro")

    @property
    def arch_str(self) -> str:
        """The benchmark's string, ``64-<codes>-basic``."""
        return f"{tnb.BASE_CHANNELS}-{''.join(map(str, self.codes))}-basic"

    def to_arch(self) -> str:
        return tnb.with_task(self.arch_str, self.task)


def parse(arch, task: str | None = None) -> TNB101MacroSpec:
    """Parse ``64-<codes>-basic[@task]`` or the file's list (codes, ``0`` padding to 6);
    ``ValueError`` says what is wrong."""
    body, parsed_task = tnb.split_task(arch, "macro")
    task = task if task is not None else parsed_task
    if isinstance(body, str):
        codes = tnb.parse_int_list(body, "macro")
        if codes is None:
            parts = body.split("-")
            if len(parts) != 3 or parts[0] != str(tnb.BASE_CHANNELS) or parts[2] != "basic" \
                    or not parts[1].isdigit():
                raise ValueError(f"TNB-101 macro arch {arch!r} must look like 64-<4 to 6 codes 1-4>-basic, "
                                 "e.g. 64-111114-basic")
            codes = [int(ch) for ch in parts[1]]
        body = codes
    if isinstance(body, (list, tuple)) and len(body) == FILE_LENGTH and 0 in body:
        n = body.index(0)
        if any(body[n:]):
            raise ValueError(f"TNB-101 macro arch {list(body)}: 0 is padding and may only end the list")
        body = body[:n]
    return TNB101MacroSpec(body, task)


# ------------------------------------------------------------------ CG path
def _basic_block(g: LayerGraph, x: int, c_out: int, stride: int) -> int:
    """``ResNetBasicblock``: ``shortcut + conv_b(conv_a(x))``."""
    a = g.bn(g.conv(g.relu(x), c_out, 3, stride, 1))
    b = g.bn(g.conv(g.relu(a), c_out, 3, 1, 1))
    shortcut = x if stride == 1 and g.shape(x)[0] == c_out else g.bn(g.conv(x, c_out, 1, stride))
    return g.add(shortcut, b)


def build_cg(spec: TNB101MacroSpec, reference: bool = False) -> CG:
    """The canonical CG (``reference=True``: ordered by :class:`gennape.cg.graph.GraphBuilder`)."""
    g = LayerGraph(f"tnb101_macro:{spec.to_arch()}")
    x = tnb.stem(g, g.input(tnb.INPUT_SHAPE))
    for _, c_out, stride in module_layout(spec.codes):
        x = _basic_block(g, x, c_out, stride)
        for _ in range(BLOCKS_PER_MODULE - 1):
            x = _basic_block(g, x, c_out, 1)
    tnb.head(g, x, spec.task)
    return g.build(reference)


def network_convs(spec: TNB101MacroSpec) -> list[tnb.ConvBN]:
    """Every conv + BN of the network, in order (shortcut after the block's two convs)."""
    convs = tnb.stem_convs()
    size = tnb.INPUT_SHAPE[1] // 4
    for c_in, c_out, stride in module_layout(spec.codes):
        for block in range(BLOCKS_PER_MODULE):
            ci, s = (c_in, stride) if block == 0 else (c_out, 1)
            out = size // s
            convs += [(ci, c_out, 3, size, out, True), (c_out, c_out, 3, out, out, True)]
            if s != 1 or ci != c_out:
                convs.append((ci, c_out, 1, size, out, False))
            size = out
    return convs


def final_channels(spec: TNB101MacroSpec) -> int:
    return module_layout(spec.codes)[-1][1]


@lru_cache(maxsize=None)
def space() -> tuple[tuple[int, ...], ...]:
    """The codes of every skeleton of the space, sorted."""
    out = []
    for n in MODULES:
        for codes in product(CODES, repeat=n):
            if in_space(codes):
                out.append(codes)
    return tuple(sorted(out))


# ------------------------------------------------------------------- family
class TNB101MacroFamily(Family):
    """TransNAS-Bench-101 macro skeletons (``tnb101_macro``)."""

    name = "tnb101_macro"
    title = "TNB-101 macro"
    summary = "TransNAS-Bench-101 macro skeletons (64-<codes>-basic), Taskonomy, 256x256"
    arch_help = "64-111114-basic or [1, 1, 1, 1, 1, 4], optionally @class_scene / @room_layout"
    input_shape = tnb.INPUT_SHAPE
    label_options = {"task": tnb.CLASSIFICATION_TASKS}
    data_file = Path("tnb101") / "tnb101_macro.json.gz"

    def parse(self, arch) -> TNB101MacroSpec:
        return parse(arch)

    def to_cg(self, spec: TNB101MacroSpec) -> CG:
        return build_cg(spec)

    def trainable_params(self, spec: TNB101MacroSpec) -> int:
        """Counted from the layer list (equals ``to_cg(spec).params``; a test checks)."""
        return tnb.trainable_params(network_convs(spec), final_channels(spec), spec.task)

    def benchmark_flops(self, spec: TNB101MacroSpec) -> int:
        return tnb.benchmark_flops(network_convs(spec), final_channels(spec), spec.task)

    def to_module(self, spec: TNB101MacroSpec):
        from gennape.cg.families.nets.tnb101 import macro_network

        return macro_network(spec)

    def all_specs(self, task: str = tnb.DEFAULT_TASK) -> list[TNB101MacroSpec]:
        """Every skeleton of the space (3,256), sorted by codes."""
        return [TNB101MacroSpec(codes, task) for codes in space()]

    @property
    def space_size(self) -> int:  # type: ignore[override]
        return len(space())

    def sample(self, rng) -> TNB101MacroSpec:
        """Uniform over the 3,256 skeletons."""
        return TNB101MacroSpec(rng.choice(space()))

    def load_labelled(self, data_dir: Path | None = None, task: str = tnb.DEFAULT_TASK) -> list[LabelledArch]:
        """The 662 skeletons of the shared file with ``task``'s label (``class_object`` or
        ``class_scene``): the BEST value over training epochs (``valid_top1``, percent ->
        fraction; the file has no final-epoch values). The file's other 63 networks
        have no classification label and are left out. ``extra``: ``params`` (a count),
        ``params_millions`` and ``flops`` (millions) of ``task``.
        """
        from gennape.cg.data import data_dir as find

        root = Path(data_dir) if data_dir is not None else find()
        return tnb.load_labelled(root / self.data_file, task, parse, lambda rec, t: rec[t], tnb.task_columns)


FAMILY = register_family(TNB101MacroFamily())
