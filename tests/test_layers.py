"""The package's layers import only downward (docs/architecture.md "Layers"), checked on the source.

Every ``import fast.x`` / ``from fast.x import y`` / ``from fast import x`` of every module
(function-level imports included: a lazy import is still a dependency) and every module named in a
string (``"fast.methods.fast:build"``, ``importlib.import_module("fast.commands.train")``: what a
registry imports by name) is resolved to its top-level package under ``fast``. It must sit in a
layer below the importer's, or be the importer's own package: packages of one layer are siblings
and do not import each other, except for the pairs in SIDEWAYS, each with its reason.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fast"

# bottom to top; a package may import from every layer below its own
LAYERS = [
    {"errors"},
    {"catalog"},
    {"io", "config", "metrics", "precision"},
    {"data"},
    {"diffusion"},
    {"samplers"},
    {"methods"},
    {"segmentation", "report", "fidelity"},
    {"commands"},
    {"cli", "__main__"},
]
LAYER_OF = {name: i for i, layer in enumerate(LAYERS) for name in layer}

# (importer, imported) allowed although not downward, and why
SIDEWAYS = {
    ("__main__", "cli"): "`python -m fast` is the command line",
}
# string-named modules a low layer names but does not import: the layer above resolves them
NAMED_NOT_IMPORTED = {
    ("catalog", "methods"): "the catalog's `module:factory` strings are plain data; fast.methods.build_method "
                            "imports them",
}

# a whole string naming a module of the package, optionally with a ``:attribute``
MODULE_STRING = re.compile(r"fast(\.[A-Za-z_]\w*)+(:[A-Za-z_]\w*)?")


def top_level(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    return rel.parts[0]


def imported_packages(tree: ast.AST) -> list[tuple[int, str, str]]:
    """(line, top-level package under fast, "import" or "string") of every fast dependency in ``tree``."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name.split(".")[1], "import") for a in node.names
                    if a.name.startswith("fast.")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            parts = node.module.split(".")
            if parts[0] != "fast":
                continue
            if len(parts) > 1:
                out.append((node.lineno, parts[1], "import"))
            else:  # from fast import methods
                out += [(node.lineno, a.name, "import") for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"line {node.lineno}: relative import (use absolute fast.* imports)")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_STRING.fullmatch(node.value):
            out.append((node.lineno, node.value.split(":")[0].split(".")[1], "string"))
    return out


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if top_level(p) != "__init__")


def violations(path: Path, source: str) -> list[str]:
    own = top_level(path)
    bad = []
    for line, pkg, how in imported_packages(ast.parse(source)):
        if pkg not in LAYER_OF:
            bad.append(f"{path.name}:{line} imports fast.{pkg}, which has no layer in tests/test_layers.py")
            continue
        if pkg == own or LAYER_OF[pkg] < LAYER_OF[own] or (own, pkg) in SIDEWAYS:
            continue
        if how == "string" and (own, pkg) in NAMED_NOT_IMPORTED:
            continue
        where = "from above" if LAYER_OF[pkg] > LAYER_OF[own] else "from its own layer"
        bad.append(f"{path.relative_to(PACKAGE)}:{line}: fast.{own} (layer {LAYER_OF[own]}) imports "
                   f"fast.{pkg} (layer {LAYER_OF[pkg]}) {where}" + (" (named in a string)" if how == "string" else ""))
    return bad


def test_every_package_has_a_layer():
    missing = sorted({top_level(p) for p in modules()} - set(LAYER_OF))
    assert not missing, f"packages without a layer: {missing}"


def test_the_check_sees_the_package():
    """A broken walk (a moved package, a changed parser) would make every test below pass vacuously."""
    found = [(p, dep) for p in modules() for dep in imported_packages(ast.parse(p.read_text()))]
    assert len(modules()) > 30
    assert len(found) > 150, len(found)
    strings = {(top_level(p), dep[1]) for p, dep in found if dep[2] == "string"}
    assert {("catalog", "methods"), ("cli", "commands"), ("data", "data"), ("samplers", "samplers")} <= strings


def test_every_exception_is_used():
    edges = {(top_level(p), dep[1]) for p in modules() for dep in imported_packages(ast.parse(p.read_text()))}
    assert set(SIDEWAYS) | set(NAMED_NOT_IMPORTED) <= edges, "an exception no module needs any more: drop it"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_down(path):
    assert violations(path, path.read_text()) == []


def test_an_upward_import_is_caught():
    # fast.diffusion importing a synthesis method (the layering this project once had), lazily
    src = "def load():\n    from fast.methods.diffusion_family import DiffusionMethod\n    import fast.commands.train\n"
    bad = violations(PACKAGE / "diffusion" / "model.py", src)
    assert len(bad) == 2 and "fast.diffusion (layer 4) imports fast.methods (layer 6)" in bad[0]
    assert violations(PACKAGE / "data" / "prepare.py", "from fast import cli\n")
    assert violations(PACKAGE / "methods" / "fast.py", "from fast.diffusion.model import DiffusionModel\n") == []


def test_a_string_named_or_sideways_import_is_caught():
    named = 'FACTORY = "fast.commands.train:run_train"\nimportlib.import_module("fast.report.build")\n'
    bad = violations(PACKAGE / "methods" / "listing.py", named)
    assert len(bad) == 2 and all("(named in a string)" in b for b in bad)
    assert "imports fast.report (layer 7) from its own layer" in violations(
        PACKAGE / "segmentation" / "data.py", "from fast.report.stats import AVERAGE\n")[0]
    assert violations(PACKAGE / "catalog.py", 'F = "fast.methods.x:build"\n') == []
    assert violations(PACKAGE / "catalog.py", "import fast.methods\n")  # a real import stays one
