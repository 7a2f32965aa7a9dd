"""The bundled weightless examples give exactly their family's fast CG."""

import sys
from pathlib import Path

import pytest

from gennape import cg
from gennape.cg.families import get_family

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))
from make_examples import EXAMPLES  # noqa: E402


@pytest.mark.parametrize("stem", sorted(EXAMPLES))
def test_weightless_example_equals_fast_cg(stem):
    family_name, arch = EXAMPLES[stem]
    family = get_family(family_name)
    imported = cg.from_onnx(ROOT / "examples" / "onnx" / f"{stem}.onnx")
    spec = family.parse(arch)
    assert imported == family.to_cg(spec)
    assert imported.params == family.trainable_params(spec)
