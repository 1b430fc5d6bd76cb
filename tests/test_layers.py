"""The package's layers import only downward (docs/architecture.md "Layers"), checked on the source.

Every ``import fast.x`` / ``from fast.x import y`` / ``from fast import x`` of every module
(function-level imports included: a lazy import is still a dependency) is resolved to its top-level
package under ``fast`` and must sit in the importer's own layer or one below it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fast"

# bottom to top; a package may import from its own layer and every layer below
LAYERS = [
    {"errors"},
    {"io", "config", "metrics", "precision"},
    {"data"},
    {"diffusion"},
    {"samplers"},
    {"methods"},
    {"segmentation", "report", "fidelity"},
    {"stages"},
    {"cli", "__main__"},
]
LAYER_OF = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def top_level(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    return rel.parts[0]


def imported_packages(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, top-level package under fast) of every fast import in ``tree``."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name.split(".")[1]) for a in node.names
                    if a.name.startswith("fast.")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            parts = node.module.split(".")
            if parts[0] != "fast":
                continue
            if len(parts) > 1:
                out.append((node.lineno, parts[1]))
            else:  # from fast import methods
                out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"line {node.lineno}: relative import (use absolute fast.* imports)")
    return out


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if top_level(p) != "__init__")


def violations(path: Path, source: str) -> list[str]:
    own = top_level(path)
    bad = []
    for line, pkg in imported_packages(ast.parse(source)):
        if pkg not in LAYER_OF:
            bad.append(f"{path.name}:{line} imports fast.{pkg}, which has no layer in tests/test_layers.py")
        elif LAYER_OF[pkg] > LAYER_OF[own]:
            bad.append(f"{path.relative_to(PACKAGE)}:{line}: fast.{own} (layer {LAYER_OF[own]}) imports "
                       f"fast.{pkg} (layer {LAYER_OF[pkg]}) from above")
    return bad


def test_every_package_has_a_layer():
    missing = sorted({top_level(p) for p in modules()} - set(LAYER_OF))
    assert not missing, f"packages without a layer: {missing}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_down(path):
    assert violations(path, path.read_text()) == []


def test_an_upward_import_is_caught():
    # fast.diffusion importing a synthesis method (the layering this project once had), lazily
    src = "def load():\n    from fast.methods.diffusion import DiffusionMethod\n    import fast.stages.train\n"
    bad = violations(PACKAGE / "diffusion" / "model.py", src)
    assert len(bad) == 2 and "fast.diffusion (layer 3) imports fast.methods (layer 5)" in bad[0]
    assert violations(PACKAGE / "data" / "prepare.py", "from fast import cli\n")
    assert violations(PACKAGE / "methods" / "fast.py", "from fast.diffusion.model import DiffusionModel\n") == []
