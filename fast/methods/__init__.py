"""Registry of synthesis methods (names from docs/methods.md). Adding a method = one module + one line.

Each entry is ``name -> "module:factory"``; the factory takes ``(cfg, name)`` and returns a
:class:`~fast.methods.base.SynthesisMethod`. Imports are lazy so that listing is cheap.
"""

from __future__ import annotations

import importlib

from fast.config import register_check
from fast.errors import FastError
from fast.methods.base import SynthesisMethod, SynthesisRequest

# The quality-versus-cost frontier: FAST's one trained model under each few-step sampler at matched
# numbers of network evaluations, `fast-<sampler>-nfe<N>` (AIAS: N - aias.t_fine segments + the
# t_fine single steps; aiaspaper: AIAS with the paper's coefficients; the diffusers multistep
# solvers: N steps, one evaluation each, warm-up included). FARM injection (one rule in t:
# aias.farm_stop) and foreground fusion are the same in every one (fast.samplers.base.FusedSampler).
SWEEP_SAMPLERS = ("aias", "aiaspaper", "ddim", "dpmpp", "unipc", "deis")
SWEEP_NFE = (4, 6, 8, 12, 20, 50)
SWEEP: dict[str, tuple[str, int]] = {f"fast-{s}-nfe{n}": (s, n) for s in SWEEP_SAMPLERS for n in SWEEP_NFE}

REGISTRY: dict[str, str] = {
    "fast": "fast.methods.fast:build",
    "fast-aias50": "fast.methods.fast:build",
    "fast-nofarm": "fast.methods.fast:build",
    "fast-fusionwindow": "fast.methods.fast:build",
    "fast-ddpm1000": "fast.methods.fast:build",
    "fast-ddim50": "fast.methods.fast:build",
    "fast-plms50": "fast.methods.fast:build",
    "fast-dpmpp20": "fast.methods.fast:build",
    "anomalydiffusion": "fast.methods.anomalydiffusion:build",
    "stage": "fast.methods.stage:build",
    "sard": "fast.methods.sard:build",
    "cutpaste": "fast.methods.cutpaste:build",
    "cutpaste-scar": "fast.methods.cutpaste:build",
    "draem": "fast.methods.draem:build",
    "nsa": "fast.methods.nsa:build",
    "defect-paste": "fast.methods.defect_paste:build",
    **{name: "fast.methods.fast:build" for name in SWEEP},
}

# Trainable generators that are not synthesis methods themselves: ``base`` is the mask-aware
# diffusion model of a category, trained once and shared by every diffusion method, which then
# trains only its own part on top of it (as the papers all start from one pretrained LDM).
BASE_GENERATOR = "base"
GENERATORS: dict[str, str] = {BASE_GENERATOR: "fast.methods.base_model:build"}

# The trained generator each method samples from (None: training-free). The `fast-*` ablations
# share the model trained for `fast`; `anomalydiffusion` samples the shared base model itself
# (plain masked eps loss, no FARM: exactly its training objective); the workflow trains each
# generator once per category.
GENERATOR_OF: dict[str, str | None] = {
    **{n: "fast" for n in REGISTRY if n == "fast" or n.startswith("fast-")},
    "anomalydiffusion": BASE_GENERATOR,
    "stage": "stage",
    "sard": "sard",
    "cutpaste": None,
    "cutpaste-scar": None,
    "draem": None,
    "nsa": None,
    "defect-paste": None,
}

# The generator each trainable generator starts from (None: from scratch).
BASE_OF: dict[str, str | None] = {BASE_GENERATOR: None, "fast": BASE_GENERATOR, "stage": BASE_GENERATOR,
                                   "sard": BASE_GENERATOR}

# The sampler family of each method that samples FAST's model (the curves of the frontier figure).
SAMPLER_OF: dict[str, str] = {
    "fast": "aias", "fast-aias50": "aias", "fast-nofarm": "aias (no FARM)",
    "fast-fusionwindow": "aias (fusion window)", "fast-ddpm1000": "ddpm",
    "fast-ddim50": "ddim", "fast-plms50": "plms", "fast-dpmpp20": "dpmpp",
    **{name: s for name, (s, _) in SWEEP.items()},
}

# Rows of every table that are not synthesis methods (docs/protocol.md, downstream segmentation).
REFERENCE_ROWS = ("real-fewshot", "no-anomalies")


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
