"""Samplers sharing one interface: ddpm, ddim, plms, dpmpp, unipc, deis (diffusers schedulers) and aias.

``build_sampler(name, schedule, options).sample(model, x_bg, mask, cond, steps, generator) -> z0``
(see fast/samplers/base.py). Adding a sampler = one class + one line in SAMPLERS.
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


def build_sampler(name: str, schedule, options: dict | None = None):
    if name not in SAMPLERS:
        raise FastError(f"unknown sampler {name!r}; known: {', '.join(SAMPLERS)}")
    module, attr = SAMPLERS[name].split(":")
    return getattr(importlib.import_module(module), attr)(schedule, options)
