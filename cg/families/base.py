"""What every benchmark family provides, and the registry families join.

A family is one module of :mod:`gennape.cg.families` that ends with
``FAMILY = register_family(MyFamily())``; nothing else lists it
(``gennape export``'s choices and help, the benchmarks and
:func:`gennape.cg.families.get_family` all read :data:`REGISTRY`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from gennape.cg.graph import CG


@dataclass(frozen=True)
class LabelledArch:
    """One architecture of a benchmark file with its label.

    Args:
        key: a stable identifier (NB-101 module hash, NB-201 arch string, ...).
        spec: the family's parsed spec object.
        accuracy: the label as a fraction in [0, 1].
        extra: other columns of the record (params, flops, zero-cost scores, ...).
    """

    key: str
    spec: Any
    accuracy: float
    extra: dict[str, Any]


#: family name -> the registered :class:`Family` instance, in registration order.
REGISTRY: dict[str, "Family"] = {}


def read_json_list(path: Path, what: str, expected: str) -> list:
    """The gzipped JSON list in a benchmark's label file ``path``; a missing
    or unreadable file is a one-line :class:`GennapeError` naming it as ``what``
    and saying what was ``expected``."""
    import gzip
    import json

    from gennape.cg.errors import GennapeError

    if not path.is_file():
        raise GennapeError(f"{path}: benchmark data file not found")
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return list(json.load(f))
    except (OSError, EOFError, ValueError, TypeError) as e:
        raise GennapeError(f"{path}: not {what} ({type(e).__name__}: {e}); expected {expected}") from None


def register_family(family: "Family") -> "Family":
    """Register ``family`` under ``family.name``; returns it (``FAMILY = register_family(...)``).

    Each family module calls this once for its ``FAMILY``; two modules claiming
    one name is an error.
    """
    if not family.name:
        raise ValueError(f"{type(family).__name__} has no name")
    old = REGISTRY.get(family.name)
    if old is not None and old is not family:
        raise ValueError(f"family {family.name!r} is registered twice "
                         f"({type(old).__module__} and {type(family).__module__})")
    REGISTRY[family.name] = family
    return family


class Family:
    """A benchmark search space.

    Subclasses set ``name``, ``summary``, ``arch_help`` and ``input_shape``,
    implement the methods; the module registers one instance with :func:`register_family`.
    Specs are immutable, hashable objects with a ``to_arch()`` returning the
    user-facing ARCH string of ``gennape export``.
    """

    name: str = ""
    #: A short display name for tables ("NB-201 (CIFAR-10)").
    title: str = ""
    #: One line for ``gennape export --help`` and the family table.
    summary: str = ""
    #: What ARCH looks like (an example), for ``gennape export --help``.
    arch_help: str = ""
    #: (C, H, W) of the benchmark's training input.
    input_shape: tuple[int, int, int] = (3, 32, 32)
    #: Keyword arguments of :meth:`load_labelled` choosing another label set, with
    #: their valid values (first = default): ``{"task": ("class_object", ...)}``.
    label_options: dict[str, tuple[str, ...]] = {}
    #: Number of distinct specs of the space when small enough to matter to
    #: :meth:`random_specs` (which then stops there), else None.
    space_size: int | None = None

    def parse(self, arch: str) -> Any:
        """Parse and validate the user-facing ARCH string; ``ValueError`` says what is wrong."""
        raise NotImplementedError

    def to_cg(self, spec: Any) -> CG:
        """The fast spec -> CG path (no torch, no ONNX)."""
        raise NotImplementedError

    def trainable_params(self, spec: Any) -> int:
        """The benchmark network's trainable-parameter count.

        Equals ``to_cg(spec).params`` unless the exported graph drops layers
        whose output nothing uses or turns dead layers into constants (NB-201 and
        TNB-101 micro cells with zero edges), which a family then overrides.
        """
        return self.to_cg(spec).params

    def benchmark_flops(self, spec: Any) -> int | None:
        """The benchmark's own FLOPs count of ``spec``'s network, where the family
        reproduces its counter (TransNAS-Bench-101); None elsewhere."""
        return None

    def to_module(self, spec: Any):
        """The benchmark's training network as a ``torch.nn.Module``."""
        raise NotImplementedError

    def example_input_shape(self, spec: Any) -> tuple[int, int, int]:
        """Input shape for exporting ``spec`` (OFA specs carry their resolution)."""
        return self.input_shape

    def load_labelled(self, data_dir: Path | None = None, **options) -> list[LabelledArch]:
        """The labelled architectures of the shared data file(s); ``options``: one
        value per keyword of :attr:`label_options`."""
        raise NotImplementedError

    def iter_specs(self, data_dir: Path | None = None) -> Iterator[Any]:
        """Every spec of the family's data (for NB-101, the whole unlabelled space)."""
        for rec in self.load_labelled(data_dir):
            yield rec.spec

    # -------------------------------------------------------------- sampling
    def sample(self, rng: random.Random) -> Any:
        """One random spec drawn with ``rng`` (the space's own sampler where it has one)."""
        raise NotImplementedError(f"family {self.name!r} has no random sampler")

    def random_specs(self, n: int, seed: int = 0) -> list[Any]:
        """``n`` distinct random specs (all of them when the space is smaller),
        deterministic for a seed, in the order first drawn."""
        rng = random.Random(seed)
        want = n if self.space_size is None else min(n, self.space_size)
        seen: dict[Any, None] = {}
        while len(seen) < want:
            seen[self.sample(rng)] = None
        return list(seen)

    # ----------------------------------------------------------- equivalence
    def output_depends_on_input(self, spec: Any) -> bool:
        """False for specs whose network output is a constant (NB-201 cells with a
        dead output node): their export has no input, which the importer refuses."""
        return True

    def reference_module(self, spec: Any):
        """The network as the benchmark's own code writes it, a second exporter
        next to :meth:`to_module` (NB-201, NB-301); None where there is none."""
        return None

    def onnx_cg(self, spec: Any, reference: bool = False) -> CG:
        """The CG the ONNX importer builds from ``to_module(spec)`` (with
        ``reference``: from :meth:`reference_module`) exported as ``gennape
        export`` does (legacy exporter, constant folding off)."""
        from gennape.cg.families.export import export_bytes
        from gennape.cg.onnx_import import from_onnx
        from gennape.cg.torch_import import export_module

        if reference:
            module = self.reference_module(spec)
            if module is None:
                raise ValueError(f"family {self.name!r} has no reference network")
            return from_onnx(export_module(module, self.example_input_shape(spec), output_name="logits"))
        return from_onnx(export_bytes(self, spec))

    def equivalence_check(self, n: int = 50, seed: int = 0, specs=None, reference: bool = False) -> dict:
        """Compare :meth:`to_cg` with :meth:`onnx_cg` on ``specs`` (default:
        ``n`` random specs); returns counts and the first mismatches.

        Specs whose output does not depend on the input are counted apart
        (``constant_output_skipped``): :meth:`to_module` computes such outputs
        from constants, so the export has no input. A reference network still
        reads its input (NB-201's ``x.mul(0.)``), so with ``reference`` they are
        checked too. ``identical_except_params`` counts graphs equal in
        everything but ``params`` (node order, attributes, edges).
        """
        specs = list(specs) if specs is not None else self.random_specs(n, seed)
        constant = [] if reference else [s for s in specs if not self.output_depends_on_input(s)]
        checked = [s for s in specs if reference or self.output_depends_on_input(s)]
        bad, structural = [], 0
        for s in checked:
            fast, imported = self.to_cg(s), self.onnx_cg(s, reference)
            if fast != imported:
                bad.append(_mismatch(s, fast, imported))
            structural += _structure(fast) == _structure(imported)
        return {"checked": len(checked), "identical": len(checked) - len(bad),
                "identical_except_params": structural,
                "constant_output_skipped": len(constant), "mismatches": bad[:5]}


def _structure(cg: CG) -> tuple:
    """Nodes without ``params``, and edges."""
    return tuple(n.order_key() for n in cg.nodes), cg.edges


def _mismatch(spec: Any, fast: CG, imported: CG) -> dict:
    diff = next((i for i, (a, b) in enumerate(zip(fast.nodes, imported.nodes)) if a != b), None)
    return {"arch": spec.to_arch(), "fast_nodes": fast.num_nodes, "imported_nodes": imported.num_nodes,
            "fast_params": fast.params, "imported_params": imported.params,
            "first_differing_node": diff,
            "fast": None if diff is None else str(fast.nodes[diff]),
            "imported": None if diff is None else str(imported.nodes[diff])}
