"""What `fast methods` prints of each method: its description and its departures from its paper, read from the
``name``/``description``/``departures`` class attributes in the method modules' source (ast), so
listing does not import torch-heavy modules; a method whose class does not spell its name there
is built once to ask it; a module not written yet is listed as such."""

from __future__ import annotations

import ast
import importlib.util
from functools import lru_cache

from fast import methods as registry


@lru_cache(maxsize=None)
def _class_attributes(module: str) -> dict[str, dict[str, str]]:
    """``{name: {attribute: value}}`` (string literals) for classes of ``module`` that set both
    ``name`` and ``description``."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin:
        return {}
    tree = ast.parse(open(spec.origin, encoding="utf-8").read())
    found = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        attrs = {}
        for stmt in node.body:
            if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
                    and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)):
                attrs[stmt.targets[0].id] = stmt.value.value
        if "name" in attrs and "description" in attrs:
            found[attrs["name"]] = attrs
    return found


def describe_parts(name: str) -> tuple[str, str]:
    """(description, departures from its paper) of method ``name``."""
    module = registry.REGISTRY[name].split(":")[0]
    if importlib.util.find_spec(module) is None:
        return "(not implemented yet: module %s missing)" % module, ""
    attrs = _class_attributes(module).get(name)
    if attrs and attrs["description"]:
        return attrs["description"], attrs.get("departures", "")
    try:
        from fast.config import load_config

        cfg = load_config({"experiment": "list", "datasets": {"synthetic": {"categories": ["x"]}},
                           "methods": [name]})
        method = registry.build_method(name, cfg)
        return method.description or "(no description)", method.departures
    except Exception as exc:  # listing must not fail because one method is broken
        return f"(unavailable: {type(exc).__name__}: {exc})", ""


def group_of(name: str) -> str:
    """The listing group: the papers' methods and baselines, ablations of FAST, or the frontier."""
    if name in registry.SWEEP:
        return "frontier"
    if name.startswith("fast-"):
        return "ablations"
    return "methods"
