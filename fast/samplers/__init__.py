"""Samplers sharing one interface: ddpm, ddim, plms, dpmpp, unipc, deis (diffusers schedulers) and aias.

``build_sampler(name, schedule, options)`` (the config's option dict, unpacked here into the
constructor's keyword arguments), then ``.plan(steps)``, ``.nfe(steps)`` and
``.sample(model, x_bg, mask, cond, steps, generator) -> SampleResult(z0, nfe)`` (see
fast/samplers/base.py). ``sampler_options(name)``: the options a sampler takes, with their defaults.
Adding a sampler = one class + one line in SAMPLERS.
"""

from __future__ import annotations

import importlib

from fast.errors import FastError

SAMPLERS = {
    "aias": "fast.samplers.aias:AIASSampler",
    "ddpm": "fast.samplers.schedulers:DDPMSampler",
    "ddim": "fast.samplers.schedulers:DDIMSampler",
    "plms": "fast.samplers.schedulers:PLMSSampler",
    "dpmpp": "fast.samplers.schedulers:DPMPPSampler",
    "unipc": "fast.samplers.schedulers:UniPCSampler",
    "deis": "fast.samplers.schedulers:DEISSampler",
}


def sampler_class(name: str) -> type:
    if name not in SAMPLERS:
        raise FastError(f"unknown sampler {name!r}; known: {', '.join(SAMPLERS)}")
    module, attr = SAMPLERS[name].split(":")
    return getattr(importlib.import_module(module), attr)


def sampler_options(name: str) -> dict:
    """{option: default} of sampler ``name``."""
    return sampler_class(name).option_defaults()


def build_sampler(name: str, schedule, options: dict | None = None):
    """The sampler ``name`` on ``schedule`` with ``options`` (unknown keys: FastError)."""
    return sampler_class(name)(schedule, **(options or {}))
