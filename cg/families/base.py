"""What every benchmark family provides."""

from __future__ import annotations

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


class Family:
    """A benchmark search space.

    Subclasses set ``name`` and ``input_shape`` and implement the methods.
    Specs are immutable, hashable objects with a ``to_arch()`` returning the
    user-facing ARCH string of ``gennape export``.
    """

    name: str = ""
    #: (C, H, W) of the benchmark's training input.
    input_shape: tuple[int, int, int] = (3, 32, 32)

    def parse(self, arch: str) -> Any:
        """Parse and validate the user-facing ARCH string; ``ValueError`` says what is wrong."""
        raise NotImplementedError

    def to_cg(self, spec: Any) -> CG:
        """The fast spec -> CG path (no torch, no ONNX)."""
        raise NotImplementedError

    def trainable_params(self, spec: Any) -> int:
        """The benchmark network's trainable-parameter count.

        Equals ``to_cg(spec).params`` unless the exported graph drops layers
        whose output nothing uses (NB-201 cells with ``none`` edges), which a
        family then overrides.
        """
        return self.to_cg(spec).params

    def to_module(self, spec: Any):
        """The benchmark's training network as a ``torch.nn.Module``."""
        raise NotImplementedError

    def example_input_shape(self, spec: Any) -> tuple[int, int, int]:
        """Input shape for exporting ``spec`` (OFA specs carry their resolution)."""
        return self.input_shape

    def load_labelled(self, data_dir: Path | None = None) -> list[LabelledArch]:
        """The labelled architectures of the shared data file(s)."""
        raise NotImplementedError

    def iter_specs(self, data_dir: Path | None = None) -> Iterator[Any]:
        """Every spec of the family's data (for NB-101, the whole unlabelled space)."""
        for rec in self.load_labelled(data_dir):
            yield rec.spec
