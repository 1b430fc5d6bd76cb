"""Registry of synthesis methods: the method catalog's (fast.catalog) views, and building a method.

Adding a method = one module + one catalog record (docs/methods.md). Each REGISTRY entry is
``name -> "module:factory"``; the factory takes ``(cfg, name)`` and returns a
:class:`~fast.methods.base.SynthesisMethod`. Imports are lazy so that listing is cheap.
"""

from __future__ import annotations

import importlib

from fast import catalog
from fast.config import register_check
from fast.errors import FastError
from fast.methods.base import SynthesisMethod, SynthesisRequest

# Views of the method catalog (fast.catalog: one record per method, every fact about it), kept for
# the modules, the workflow and the scripts that import them; refreshed when a method is registered.
SWEEP_SAMPLERS = catalog.SWEEP_SAMPLERS
SWEEP_NFE = catalog.SWEEP_NFE
BASE_GENERATOR = catalog.BASE
REFERENCE_ROWS = catalog.REFERENCE_ROWS

# name -> "module:factory"; the factory takes ``(cfg, name)`` and returns a SynthesisMethod
REGISTRY: dict[str, str] = {}
# the frontier, fast-<sampler>-nfe<N>: (sampler family, NFE)
SWEEP: dict[str, tuple[str, int]] = {}
# trainable generators that are not synthesis methods themselves (the shared base model)
GENERATORS: dict[str, str] = {}
# the trained generator each method samples from (None: training-free)
GENERATOR_OF: dict[str, str | None] = {}
# the generator each trainable generator starts from (None: from scratch), the shared base first
BASE_OF: dict[str, str | None] = {}
# the sampler family of each method that samples FAST's model (the curves of the frontier figure)
SAMPLER_OF: dict[str, str] = {}


def _refresh() -> None:
    records = catalog.methods()
    views = {
        "REGISTRY": {m.name: m.factory for m in records},
        "SWEEP": {m.name: (m.family, m.nfe) for m in records if m.group == "frontier"},
        "GENERATORS": {g.name: g.factory for g in catalog.generators()},
        "GENERATOR_OF": {m.name: m.generator for m in records},
        "BASE_OF": {**{g.name: g.base for g in catalog.generators()},
                    **{m.name: m.base for m in records if m.trains}},
        "SAMPLER_OF": {m.name: m.family for m in records if m.family},
    }
    for name, view in views.items():  # in place: `from fast.methods import REGISTRY` stays current
        globals()[name].clear()
        globals()[name].update(view)


_refresh()
catalog.on_change(_refresh)


def build_method(name: str, cfg: dict) -> SynthesisMethod:
    if name not in REGISTRY and name not in GENERATORS:
        raise FastError(f"unknown method {name!r}; known methods: {', '.join(REGISTRY)}")
    module, attr = (REGISTRY.get(name) or GENERATORS[name]).split(":")
    return getattr(importlib.import_module(module), attr)(cfg, name)


def method_options_problem(cfg: dict) -> str | None:
    """Why the config's ``method_options`` do not fit the registry (an unknown method, or an
    option its method does not read or of another kind), or None. Each method knows its options
    (``SynthesisMethod.OPTIONS``); only the modules of the methods named are imported."""
    import difflib

    for name in cfg.get("method_options") or {}:
        if name not in REGISTRY:
            hint = difflib.get_close_matches(name, list(REGISTRY), n=1)
            did = f"did you mean '{hint[0]}'? " if hint else ""
            return (f"method_options.{name}: unknown method {name!r}; {did}its keys are method names "
                    f"(`fast methods` lists them)")
        problem = build_method(name, cfg).options_problem()
        if problem:
            return problem
    return None


def trainable_generators() -> list[str]:
    """Every generator `fast train` can train (the shared base first)."""
    return list(BASE_OF)


# every config loaded from now on has its method_options checked against the methods' own options
register_check(method_options_problem)

__all__ = ["BASE_GENERATOR", "BASE_OF", "GENERATORS", "GENERATOR_OF", "REGISTRY", "REFERENCE_ROWS",
           "SAMPLER_OF", "SWEEP", "SWEEP_NFE", "SWEEP_SAMPLERS",
           "SynthesisMethod", "SynthesisRequest", "build_method", "method_options_problem", "trainable_generators"]
