"""Imports point one way: ``cg`` <- ``encoder``, ``heads`` <- ``pretrain`` <- ``transfer`` <- ``gennape``.

The packages import each other as ``gennape.<package>`` (setuptools maps the
root folders into one namespace), which import-graph tools do not resolve, so
this test reads every import statement itself, function-level ones included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Each package's layer: a package may import its own layer's package and lower layers only.
LAYER = {"cg": 0, "encoder": 1, "heads": 1, "pretrain": 2, "transfer": 3, "gennape": 4}
FORBIDDEN = ("benchmarks", "tests")


def imported_packages(path: Path) -> set[str]:
    """The gennape packages (keys of :data:`LAYER`) and :data:`FORBIDDEN` roots that ``path`` imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "gennape":  # from gennape import cg
                names += [f"gennape.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] in FORBIDDEN:
                found.add(parts[0])
            elif parts[0] == "gennape" and len(parts) > 1:
                found.add(parts[1] if parts[1] in LAYER else "gennape")
    return found


@pytest.mark.parametrize("package", sorted(LAYER))
def test_imports_point_one_way(package):
    wrong = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for used in sorted(imported_packages(path) - {package}):
            if used in FORBIDDEN or LAYER[used] >= LAYER[package]:
                wrong.append(f"{path.relative_to(ROOT)} imports {used}")
    assert not wrong, "imports against the layering " + str(LAYER) + ":\n" + "\n".join(wrong)


def test_the_reader_sees_function_level_and_namespace_imports(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from gennape import transfer\n    import benchmarks.lofo\n"
                      "from gennape.pretrain.model import run_model\n")
    assert imported_packages(source) == {"transfer", "benchmarks", "pretrain"}
