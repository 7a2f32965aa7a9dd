"""Search spaces over the benchmark families, as categorical genotypes.

A strategy never sees a family's spec classes: it works on *genotypes*, tuples
of ints where position ``i`` takes one of ``decisions[i]`` values (an NB-201
edge's op, an NB-101 edge bit or vertex op, an OFA block's kernel size, ...).
A space decodes a genotype into the family's spec (``None`` when the genotype
is no valid network, e.g. an NB-101 cell whose input is not connected to its
output, or an NB-201 / TNB-101 micro cell whose output does not depend on its
input: such "dead" cells compute a constant, so a search never proposes them),
encodes a spec back, and names each spec by a canonical key (the
cache key of :mod:`gennape.transfer.search.search`).

One *change* flips one position of the genotype: an op or an edge (TNB-101
macro, whose skeletons have 4 to 6 modules: one edit of the code string, a
module's code replaced, removed or inserted). That is the edit distance of
:mod:`gennape.transfer.search.landscape` and the neighbourhood of local search. Genotypes may carry inactive genes (an NB-101
vertex on no input -> output path, an OFA block beyond its stage's depth):
they keep their values through mutations, as NAS-Bench-101's evolution keeps
the unpruned matrix, so two changes can grow a cell.

:class:`PoolSpace` restricts a space to a finite set of specs (a labelled
table used as the candidate pool of :mod:`benchmarks.search`).
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import numpy as np

Genotype = tuple[int, ...]


class Space:
    """A family's search space.

    Subclasses set ``family`` (a :class:`gennape.cg.families.base.Family`),
    ``decisions`` and implement :meth:`decode` and :meth:`encode`.
    """

    family: Any = None
    decisions: tuple[int, ...] = ()
    #: (name, ARCH string) of the architecture people start from, or None.
    reference_arch: tuple[str, str] | None = None
    #: Random draws before :meth:`sample` gives up (for spaces with invalid genotypes).
    max_tries = 10_000

    @property
    def name(self) -> str:
        return self.family.name

    def decode(self, genotype: Genotype) -> Any | None:
        """The spec of ``genotype``, or ``None`` when it is not a valid network."""
        raise NotImplementedError

    def encode(self, spec: Any) -> Genotype:
        """A genotype decoding to ``spec``."""
        raise NotImplementedError

    def key(self, spec: Any) -> str:
        """Canonical name: equal networks get equal keys."""
        return spec.to_arch()

    def live(self, spec: Any) -> Any | None:
        """``spec``, or None when its network's output does not depend on its input
        (``family.output_depends_on_input``: a dead cell, constant output)."""
        return spec if self.family.output_depends_on_input(spec) else None

    def check(self, spec: Any) -> Any:
        """``spec`` if it is a network of this space (a search may start from it);
        ``ValueError`` says why not."""
        if self.decode(self.encode(spec)) is None:
            why = ("its output does not depend on its input (a dead cell)"
                   if not self.family.output_depends_on_input(spec) else "it is not in the space")
            raise ValueError(f"{spec.to_arch()}: {why}")
        return spec

    def reference(self) -> Any | None:
        """The family's reference spec (:attr:`reference_arch`), or None."""
        return self.family.parse(self.reference_arch[1]) if self.reference_arch else None

    # ------------------------------------------------------------ moves
    def random_genotype(self, rng: np.random.Generator) -> Genotype:
        return tuple(int(rng.integers(n)) for n in self.decisions)

    def sample(self, rng: np.random.Generator) -> Genotype:
        """A uniformly drawn valid genotype."""
        for _ in range(self.max_tries):
            g = self.random_genotype(rng)
            if self.decode(g) is not None:
                return g
        raise RuntimeError(f"{self.name}: no valid genotype in {self.max_tries} random draws")

    def changes(self, genotype: Genotype) -> list[Genotype]:
        """Every valid genotype one change away (phenotype possibly equal)."""
        out = []
        for i, n in enumerate(self.decisions):
            for v in range(n):
                if v != genotype[i]:
                    g = genotype[:i] + (v,) + genotype[i + 1:]
                    if self.decode(g) is not None:
                        out.append(g)
        return out

    def neighbours(self, genotype: Genotype) -> list[Genotype]:
        """Valid genotypes one change away whose network differs (local search's neighbourhood)."""
        own = self.key(self.decode(genotype))
        seen, out = {own}, []
        for g in self.changes(genotype):
            k = self.key(self.decode(g))
            if k not in seen:
                seen.add(k)
                out.append(g)
        return out

    def mutate(self, genotype: Genotype, rng: np.random.Generator) -> Genotype:
        """A random valid single change (may leave the network as it is when it
        touches an inactive gene; that is how two changes grow an NB-101 cell)."""
        options = self.changes(genotype)
        return options[int(rng.integers(len(options)))] if options else self.sample(rng)

    def project(self, genotype: Genotype, rng: np.random.Generator) -> Genotype | None:
        """A valid genotype for a freely drawn one (REINFORCE's samples): itself, or None."""
        return genotype if self.decode(genotype) is not None else None

    def distance(self, a: Genotype, b: Genotype) -> int:
        """Number of changes between two genotypes."""
        return sum(x != y for x, y in zip(a, b))


# ------------------------------------------------------------------ NB-201
class NB201Space(Space):
    """Six cell edges, each one of the five NB-201 ops; the cells whose output
    node is dead (every path from the input passes a ``none``) are left out."""

    def __init__(self):
        from gennape.cg.families import get_family
        from gennape.cg.families.nb201 import EDGES, OPS

        self.family, self._ops = get_family("nb201"), OPS
        self.decisions = (len(OPS),) * len(EDGES)
        # The ResNet basic block as a cell: node 3 = x + conv3x3(conv3x3(x)).
        self.reference_arch = ("ResNet cell", "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|nor_conv_3x3~1|none~2|")

    def decode(self, genotype):
        from gennape.cg.families.nb201 import NB201Spec

        return self.live(NB201Spec(tuple(self._ops[i] for i in genotype)))

    def encode(self, spec):
        return tuple(self._ops.index(op) for op in spec.ops)


# ------------------------------------------------------------------ NB-101
class NB101Space(Space):
    """21 edge bits of the 7-vertex upper-triangular matrix and 5 interior ops.

    Decoding prunes the cell and renumbers it into the benchmark's
    representative (:meth:`gennape.cg.families.nb101.NB101Spec.from_lists`);
    keys are module hashes, so isomorphic cells share one.
    """

    def __init__(self):
        from gennape.cg.families import get_family
        from gennape.cg.families.nb101 import CELL_OPS, MAX_VERTICES

        self.family, self._ops, self._n = get_family("nb101"), CELL_OPS, MAX_VERTICES
        self._pairs = [(i, j) for j in range(MAX_VERTICES) for i in range(j)]
        self.decisions = (2,) * len(self._pairs) + (len(CELL_OPS),) * (MAX_VERTICES - 2)
        # The ResNet-like cell: two 3x3 convs with the input added to the output.
        self.reference_arch = ("ResNet-like cell", '{"matrix": [[0, 1, 0, 1], [0, 0, 1, 0], [0, 0, 0, 1], '
                               '[0, 0, 0, 0]], "ops": ["input", "conv3x3-bn-relu", "conv3x3-bn-relu", "output"]}')
        self._memo: dict[Genotype, Any] = {}

    def decode(self, genotype):
        if genotype in self._memo:
            return self._memo[genotype]
        from gennape.cg.families.nb101 import NB101Spec

        n, e = self._n, len(self._pairs)
        matrix = [[0] * n for _ in range(n)]
        for (i, j), bit in zip(self._pairs, genotype[:e]):
            matrix[i][j] = bit
        ops = ["input", *(self._ops[v] for v in genotype[e:]), "output"]
        try:
            spec = NB101Spec.from_lists(matrix, ops)
        except ValueError:
            spec = None
        if len(self._memo) < 200_000:  # decoding prunes and canonicalises: worth remembering
            self._memo[genotype] = spec
        return spec

    def encode(self, spec):
        # Vertices 0..m-2 keep their places, the output goes last; unused vertices are idle convs.
        m, n = spec.num_vertices, self._n
        place = list(range(m - 1)) + [n - 1]
        matrix = [[0] * n for _ in range(n)]
        for i in range(m):
            for j in range(m):
                if spec.matrix[i][j]:
                    matrix[place[i]][place[j]] = 1
        ops = [0] * (n - 2)
        for v in range(1, m - 1):
            ops[v - 1] = self._ops.index(spec.ops[v])
        return tuple(matrix[i][j] for i, j in self._pairs) + tuple(ops)

    def key(self, spec):
        return spec.hash


# ------------------------------------------------------------------ NB-301
class NB301Space(Space):
    """Per cell type (normal, reduce) and intermediate node k: two inputs out
    of the k + 2 earlier nodes, each with one of the seven DARTS ops. A node's
    two inputs must differ; the pair order does not matter (keys sort it)."""

    def __init__(self):
        from gennape.cg.families import get_family
        from gennape.cg.families.nb301 import OPS, STEPS

        self.family, self._steps = get_family("nb301"), STEPS
        per_cell = []
        for k in range(STEPS):
            per_cell += [k + 2, len(OPS), k + 2, len(OPS)]
        self.decisions = tuple(per_cell) * 2
        # DARTS (second order), the genotype of the DARTS paper, in NB-301's compact encoding.
        self.reference_arch = ("DARTS-V2", "[[(0, 3), (1, 3), (0, 3), (1, 3), (1, 3), (0, 2), (0, 2), (2, 5)], "
                               "[(0, 0), (1, 0), (2, 2), (1, 0), (0, 0), (2, 2), (2, 2), (1, 0)]]")

    def decode(self, genotype):
        from gennape.cg.families.nb301 import NB301Spec

        cells = []
        for c in range(2):
            pairs = []
            for k in range(self._steps):
                a, oa, b, ob = genotype[16 * c + 4 * k: 16 * c + 4 * k + 4]
                if a == b:
                    return None
                pairs += sorted([(a, oa), (b, ob)])
            cells.append(tuple(pairs))
        return NB301Spec(cells[0], cells[1])

    def encode(self, spec):
        return tuple(v for cell in (spec.normal, spec.reduce) for pair in cell for v in pair)

    def key(self, spec):
        return self.decode(self.encode(spec)).to_arch()  # pairs of a node sorted


# ---------------------------------------------------------------- OFA-MBv3
class OFASpace(Space):
    """20 kernel sizes, 20 expand ratios, 5 stage depths and the resolution."""

    def __init__(self):
        from gennape.cg.families import get_family
        from gennape.cg.families import ofa_mbv3 as ofa

        self.family, self._ofa = get_family("ofa_mbv3"), ofa
        nb = ofa.NUM_BLOCKS
        self.decisions = ((len(ofa.KERNEL_SIZES),) * nb + (len(ofa.EXPAND_RATIOS),) * nb
                          + (len(ofa.DEPTHS),) * ofa.NUM_STAGES + (len(ofa.RESOLUTIONS),))
        # The largest subnet (every block 7x7, expand 6, depth 4) at 224 px.
        self.reference_arch = ("largest subnet (ks 7, e 6, d 4, r 224)",
                               json.dumps({"ks": [7] * nb, "e": [6] * nb, "d": [4] * ofa.NUM_STAGES, "r": 224}))

    def decode(self, genotype):
        o, nb = self._ofa, self._ofa.NUM_BLOCKS
        ks = tuple(o.KERNEL_SIZES[i] for i in genotype[:nb])
        e = tuple(o.EXPAND_RATIOS[i] for i in genotype[nb:2 * nb])
        d = tuple(o.DEPTHS[i] for i in genotype[2 * nb:2 * nb + o.NUM_STAGES])
        return o.OFASpec(ks, e, d, o.RESOLUTIONS[genotype[-1]])

    def encode(self, spec):
        o = self._ofa
        # Inactive blocks are stored as 0 in a spec; give them the smallest choice.
        ks = tuple(o.KERNEL_SIZES.index(v) if v else 0 for v in spec.ks)
        e = tuple(o.EXPAND_RATIOS.index(v) if v else 0 for v in spec.e)
        return ks + e + tuple(o.DEPTHS.index(v) for v in spec.d) + (o.RESOLUTIONS.index(spec.r),)


# ------------------------------------------------------------- TNB-101 micro
class TNB101MicroSpace(Space):
    """TransNAS-Bench-101 micro cells: six edges (``a_bc_def``), each one of the
    four op codes (0 zero, 1 skip, 2 conv1x1, 3 conv3x3); the 169 dead cells
    (constant output) are left out. One change = one edge's op.

    Args:
        task: the head of the networks built (``class_object`` default).
    """

    def __init__(self, task: str | None = None):
        from gennape.cg.families import get_family
        from gennape.cg.families import tnb101_common as tnb
        from gennape.cg.families.tnb101_micro import EDGES, OPS

        self.family, self.task = get_family("tnb101_micro"), tnb.check_task(task or tnb.DEFAULT_TASK, "micro")
        self.decisions = (len(OPS),) * len(EDGES)
        # The ResNet basic block as a cell: node 3 = skip(x) + conv3x3(conv3x3(x)).
        self.reference_arch = ("ResNet cell", "64-41414-3_00_130")

    def decode(self, genotype):
        from gennape.cg.families.tnb101_micro import TNB101MicroSpec

        return self.live(TNB101MicroSpec(tuple(genotype), self.task))

    def encode(self, spec):
        return tuple(spec.ops)

    def reference(self):
        from gennape.cg.families.tnb101_micro import parse

        return parse(self.reference_arch[1], self.task)


# ------------------------------------------------------------- TNB-101 macro
class TNB101MacroSpace(Space):
    """TransNAS-Bench-101 macro skeletons: 4 to 6 module codes (1 keep, 2 double
    the channels, 3 halve the resolution, 4 both), 1-4 modules halving and 1-3
    doubling (3,256 skeletons).

    A genotype is the file's ``arch``: the codes, then 0 padding to six. One
    change is one edit of the code string: a module's code replaced, a module
    removed, or a module inserted, each giving a skeleton of the space; the
    distance is the edit (Levenshtein) distance of the code strings.

    Args:
        task: the head of the networks built (``class_object`` default).
    """

    def __init__(self, task: str | None = None):
        from gennape.cg.families import get_family
        from gennape.cg.families import tnb101_common as tnb
        from gennape.cg.families import tnb101_macro as macro

        self.family, self._macro = get_family("tnb101_macro"), macro
        self.task = tnb.check_task(task or tnb.DEFAULT_TASK, "macro")
        self._length = macro.FILE_LENGTH
        self.decisions = (len(macro.CODES) + 1,) * macro.FILE_LENGTH  # 0 = no module
        # ResNet-18's skeleton: four stages of two basic blocks, the last three halve and widen.
        self.reference_arch = ("ResNet-18 skeleton", "64-1444-basic")

    def _codes(self, genotype) -> tuple[int, ...]:
        return tuple(v for v in genotype if v)

    def decode(self, genotype):
        codes = self._codes(genotype)
        m = self._macro
        if len(codes) not in m.MODULES or not m.in_space(codes) or tuple(genotype[:len(codes)]) != codes:
            return None  # not canonical (0 inside the codes) or not a skeleton of the space
        return m.TNB101MacroSpec(codes, self.task)

    def encode(self, spec):
        return tuple(spec.codes) + (0,) * (self._length - len(spec.codes))

    def reference(self):
        return self._macro.parse(self.reference_arch[1], self.task)

    def sample(self, rng):
        """Uniform over the skeletons (not over padded genotypes)."""
        skeletons = self._macro.space()
        return self.encode(self._macro.TNB101MacroSpec(skeletons[int(rng.integers(len(skeletons)))], self.task))

    def changes(self, genotype):
        codes, out = list(self._codes(genotype)), []
        values = list(self._macro.CODES)
        edits = [codes[:i] + [v] + codes[i + 1:] for i in range(len(codes)) for v in values if v != codes[i]]
        edits += [codes[:i] + codes[i + 1:] for i in range(len(codes))]
        edits += [codes[:i] + [v] + codes[i:] for i in range(len(codes) + 1) for v in values]
        for e in edits:
            if len(e) <= self._length:
                g = tuple(e) + (0,) * (self._length - len(e))
                if g != genotype and self.decode(g) is not None and g not in out:
                    out.append(g)
        return out

    def project(self, genotype, rng):
        """A freely drawn genotype with its zeros dropped (codes kept in order), if a skeleton."""
        codes = self._codes(genotype)
        g = codes + (0,) * (self._length - len(codes))
        return g if self.decode(g) is not None else None

    def distance(self, a, b):
        x, y = self._codes(a), self._codes(b)
        row = list(range(len(y) + 1))
        for i, u in enumerate(x, 1):
            prev, row[0] = row[0], i
            for j, v in enumerate(y, 1):
                prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (u != v))
        return row[-1]


_SPACES = {"nb101": NB101Space, "nb201": NB201Space, "nb301": NB301Space, "ofa_mbv3": OFASpace,
           "tnb101_micro": TNB101MicroSpace, "tnb101_macro": TNB101MacroSpace}
#: Families with a search space.
SPACE_NAMES: tuple[str, ...] = tuple(_SPACES)


def get_space(family: str) -> Space:
    """The search space of ``family``; ``ValueError`` lists the valid names."""
    if family not in _SPACES:
        raise ValueError(f"no search space for family {family!r}; valid families: {', '.join(_SPACES)}")
    return _SPACES[family]()


# -------------------------------------------------------------------- pools
class PoolSpace(Space):
    """``base`` restricted to the specs of ``pool`` (a labelled table).

    Sampling draws a pool member uniformly. A change that leaves the pool is
    replaced by the nearest pool members (fewest changes) to the changed
    genotype, so mutations and neighbourhoods stay local where the pool is
    dense (NB-201's whole space) and still move where it is sparse (OFA's 2,223
    of ~10^19 subnets).

    Args:
        base: the family's space.
        pool: specs (duplicates by key and dead cells, see :meth:`Space.live`, are dropped).
        k_nearest: how many nearest pool members stand for an off-pool move.
    """

    def __init__(self, base: Space, pool: Sequence[Any], k_nearest: int = 8):
        self.base, self.family, self.decisions = base, base.family, base.decisions
        self.reference_arch, self.k_nearest = base.reference_arch, k_nearest
        by_key: dict[str, Any] = {}
        for spec in pool:
            if base.live(spec) is not None:  # a dead cell of a labelled table is no candidate
                by_key.setdefault(base.key(spec), spec)
        self.specs = list(by_key.values())
        self.keys = {k: i for i, k in enumerate(by_key)}
        self.genotypes = [base.encode(s) for s in self.specs]
        self._matrix = np.array(self.genotypes, dtype=np.int16)

    def decode(self, genotype):
        spec = self.base.decode(genotype)
        return spec if spec is not None and self.base.key(spec) in self.keys else None

    def encode(self, spec):
        return self.base.encode(spec)

    def key(self, spec):
        return self.base.key(spec)

    def sample(self, rng):
        return self.genotypes[int(rng.integers(len(self.genotypes)))]

    def nearest(self, genotype: Genotype, k: int | None = None) -> list[Genotype]:
        """The ``k`` pool genotypes fewest changes from ``genotype`` (itself excluded)."""
        if type(self.base).distance is Space.distance:  # changes = differing genes: vectorised
            d = (self._matrix != np.asarray(genotype, dtype=np.int16)).sum(axis=1)
        else:  # the space's own distance (TNB-101 macro: edits of the code string)
            d = np.array([self.base.distance(genotype, g) for g in self.genotypes], dtype=np.int64)
        d[d == 0] = np.iinfo(np.int16).max  # the genotype itself is no neighbour
        order = np.argsort(d, kind="stable")[: k or self.k_nearest]
        return [self.genotypes[i] for i in order]

    def changes(self, genotype):
        inside = [g for g in self.base.changes(genotype) if self.decode(g) is not None]
        return inside or self.nearest(genotype)

    def project(self, genotype, rng):
        if self.decode(genotype) is not None:
            return genotype
        near = self.nearest(genotype, 1)
        return near[0] if near else None


__all__ = ["SPACE_NAMES", "Genotype", "Space", "NB201Space", "NB101Space", "NB301Space", "OFASpace",
           "TNB101MicroSpace", "TNB101MacroSpace", "PoolSpace", "get_space"]
