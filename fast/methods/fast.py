"""FAST (`fast`) and its sampling ablations: one generator (backbone + FARM, Algorithm 1) sampled
with AIAS (S = aias.steps; `fast-aias50`: S = 50; `fast-nofarm`: no FARM injection) or with
diffusers' samplers (`fast-ddpm1000`, `fast-ddim50` (eta 0), `fast-plms50`, `fast-dpmpp20`), all with
the same foreground fusion and image-space composite. See METHODS.md, FAST.

Training regime: Algorithm 1 with a FROZEN epsilon model, as in the paper (its LDM UNet is frozen).
The generator starts from the shared base model (fast.methods.base_model); on the pixel backbone
its UNet stays frozen and only FARM (+ the optional adaptor) trains, because with a trainable UNet
the eps term inside M has a defect-ignorant minimum (FARM -> constant makes eps readable from
zhat). The UNet has learnt the defects in the base model, on raw z_t, so `fast-nofarm` samples a
model trained on exactly the inputs it gets. On the ldm backbone FARM and the textual-inversion
vectors train together (the UNet is frozen anyway)."""

from __future__ import annotations

from fast.diffusion.losses import fast_loss
from fast.diffusion.method import DiffusionMethod


class FastMethod(DiffusionMethod):
    name = "fast"
    generator = "fast"
    description = "FAST: diffusion + FARM + AIAS (arXiv 2509.20295)"
    SAMPLING = {
        "fast": ("aias", None, {}),
        "fast-aias50": ("aias", 50, {}),
        "fast-nofarm": ("aias", None, {"farm": False}),
        "fast-ddpm1000": ("ddpm", "T", {}),
        "fast-ddim50": ("ddim", 50, {"eta": 0.0}),
        "fast-plms50": ("plms", 50, {}),
        "fast-dpmpp20": ("dpmpp", 20, {}),
    }

    departures = ("pixel backbone: starts from the shared base model (UNet trained with mask + background "
                  "input channels, mask-weighted eps loss, frozen here) and trains FARM only; windows")

    @property
    def trains_backbone(self) -> bool:
        # pixel: the UNet is frozen (see the module docstring); ldm: only the token vectors train
        return self.cfg["diffusion"]["backbone"] != "pixel"

    def farm_widths(self):
        return list(self.cfg["diffusion"]["farm"]["widths"])

    def loss(self, model, batch, generator):
        return fast_loss(model, batch, generator, float(self.cfg["diffusion"]["farm"]["lambda"]),
                         self.outside_weight())


def build(cfg: dict, name: str) -> FastMethod:
    m = FastMethod(cfg, name)
    if name != "fast":
        sampler, steps, extra = m.SAMPLING[name]
        steps = {None: "aias.steps", "T": "all T"}.get(steps, steps)
        farm = "without FARM injection" if extra.get("farm") is False else "with FARM injection"
        m.description = f"ablation: the `fast` model sampled by {sampler} ({steps} steps), {farm}"
    return m
