"""FAST (`fast`) and its sampling ablations: one generator (backbone + FARM, Algorithm 1) sampled
with AIAS (S = aias.steps; `fast-aias50`: S = 50; `fast-nofarm`: no FARM injection) or with
diffusers' samplers (`fast-ddpm1000`, `fast-ddim50` (eta 0), `fast-plms50`, `fast-dpmpp20`), all with
the same foreground fusion and image-space composite. See docs/methods.md, FAST.

Training regime: Algorithm 1 with a FROZEN epsilon model, as in the paper (its LDM UNet is frozen).
The generator starts from the shared base model (fast.methods.base_model); on the pixel backbone
its UNet stays frozen and only FARM (+ the optional adaptor) trains, because with a trainable UNet
the eps term inside M has a defect-ignorant minimum (FARM -> constant makes eps readable from
zhat). The UNet has learnt the defects in the base model, on raw z_t, so `fast-nofarm` samples a
model trained on exactly the inputs it gets. On the ldm backbone FARM and the textual-inversion
vectors train together (the UNet is frozen anyway)."""

from __future__ import annotations

from fast import catalog
from fast.diffusion.losses import fast_loss
from fast.methods import SWEEP
from fast.methods.diffusion_family import DiffusionMethod


class FastMethod(DiffusionMethod):
    name = "fast"
    # every method that samples this generator: (sampler, steps, options), from its catalog record;
    # fast-<sampler>-nfe<N>: AIAS's steps are set from N in sampling_plan
    SAMPLING = catalog.sampling_plans(name)

    @property
    def trains_backbone(self) -> bool:
        # pixel: the UNet is frozen (see the module docstring); ldm: only the token vectors train
        return self.cfg["diffusion"]["backbone"] != "pixel"

    def farm_widths(self):
        return list(self.cfg["diffusion"]["farm"]["widths"])

    def sampling_plan(self):
        sampler, steps, options = super().sampling_plan()
        if self.name in SWEEP and sampler == "aias" and "steps" not in self.options:
            # matched NFE: N evaluations = (N - t_fine) segments + t_fine single steps
            steps = SWEEP[self.name][1] - int(options["t_fine"])
        return sampler, steps, options

    def loss(self, model, batch, generator):
        return fast_loss(model, batch, generator, float(self.cfg["diffusion"]["farm"]["lambda"]),
                         self.outside_weight())


def build(cfg: dict, name: str) -> FastMethod:
    m = FastMethod(cfg, name)
    if name not in m.SAMPLING:  # a record registered after this module was imported
        m.SAMPLING = catalog.sampling_plans(m.generator)
    return m
