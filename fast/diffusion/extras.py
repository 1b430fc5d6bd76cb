"""The extra modules methods add to a DiffusionModel (``extra_modules``, saved with it): STAGE's two
epsilon adapters, SARD's discriminator and its Adam state. They live in the diffusion layer,
known to fast.diffusion.model by importing this module (BUILDERS), so that loading a checkpoint never depends on
which method module was imported first."""

from __future__ import annotations

import torch
import torch.nn as nn

from fast.diffusion.discriminator import MaskAwarePatchDiscriminator
from fast.diffusion.farm import Adaptor

AD_IMG, AD_AN = "stage_ad_img", "stage_ad_an"      # STAGE: image branch, anomaly-only branch
DISC, DISC_OPT = "sard_disc", "sard_disc_adam"      # SARD: discriminator, its Adam state


def _build_adapter(spec: dict, model) -> Adaptor:
    return Adaptor(model.latent_shape()[0], int(spec.get("hidden", 32)))




class AdamStateBuffers(nn.Module):
    """The discriminator's Adam state (step, exp_avg, exp_avg_sq per parameter) held as buffers,
    so that it is saved in the model checkpoint with D itself. ``bind`` hands these very tensors
    to a torch.optim.Adam, which updates its state in place."""

    def __init__(self, params: list[nn.Parameter]):
        super().__init__()
        for i, p in enumerate(params):
            self.register_buffer(f"step_{i}", torch.zeros((), dtype=torch.float32))
            self.register_buffer(f"exp_avg_{i}", torch.zeros_like(p, memory_format=torch.preserve_format))
            self.register_buffer(f"exp_avg_sq_{i}", torch.zeros_like(p, memory_format=torch.preserve_format))
        self.n = len(params)

    def bind(self, opt: torch.optim.Adam, params: list[nn.Parameter]) -> None:
        if len(params) != self.n:
            raise ValueError("AdamStateBuffers: parameter count changed")
        for i, p in enumerate(params):
            opt.state[p] = {"step": getattr(self, f"step_{i}"), "exp_avg": getattr(self, f"exp_avg_{i}"),
                            "exp_avg_sq": getattr(self, f"exp_avg_sq_{i}")}


def _build_disc(spec: dict, model) -> MaskAwarePatchDiscriminator:
    return MaskAwarePatchDiscriminator(model.backbone.channels, int(spec.get("width", 32)),
                                       int(spec.get("n_down", 3)))


def _build_disc_opt(spec: dict, model) -> AdamStateBuffers:
    return AdamStateBuffers(list(model.extra_modules[DISC].parameters()))


# name -> builder(spec of that module, model) -> nn.Module (fast.diffusion.model rebuilds with it)
BUILDERS = {AD_IMG: _build_adapter, AD_AN: _build_adapter, DISC: _build_disc, DISC_OPT: _build_disc_opt}
