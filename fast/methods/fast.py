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

from fast.diffusion.losses import fast_loss
from fast.methods import SWEEP
from fast.methods.diffusion import DiffusionMethod

# fast-<sampler>-nfe<N>: (sampler, options); AIAS's steps are set from N in sampling_plan
_SWEEP_SAMPLING = {"aias": ("aias", {"coefficients": "exact"}), "aiaspaper": ("aias", {"coefficients": "paper"}),
                   "ddim": ("ddim", {"eta": 0.0}), "dpmpp": ("dpmpp", {}), "unipc": ("unipc", {}),
                   "deis": ("deis", {})}


class FastMethod(DiffusionMethod):
    name = "fast"
    generator = "fast"
    description = "FAST: diffusion + FARM + AIAS (arXiv 2509.20295)"
    SAMPLING = {
        "fast": ("aias", None, {}),
        "fast-aias50": ("aias", 50, {}),
        "fast-nofarm": ("aias", None, {"farm": False}),
        "fast-fusionwindow": ("aias", None, {"fusion": "window"}),
        "fast-ddpm1000": ("ddpm", "T", {}),
        "fast-ddim50": ("ddim", 50, {"eta": 0.0}),
        "fast-plms50": ("plms", 50, {}),
        "fast-dpmpp20": ("dpmpp", 20, {}),
        **{name: (_SWEEP_SAMPLING[s][0], n, dict(_SWEEP_SAMPLING[s][1])) for name, (s, n) in SWEEP.items()},
    }

    departures = ("pixel backbone: starts from the shared base model (UNet trained with mask + background "
                  "input channels, mask-weighted eps loss, frozen here, as the authors freeze their LDM) and "
                  "trains FARM + the adaptor; windows; both loss terms mask-weighted alike (the authors: both "
                  "plain means), so lambda keeps their relative weight; adaptor residual and zero-initialised "
                  "(the authors' FineTune replaces eps by a 6-conv net of [eps, M]); FARM at t >= 0.1 T in every "
                  "sampler (the authors: on AIAS's segments only, none in DDPM); background fused after every "
                  "update (the authors: inside (T/4, 3T/4) only: the ablation fast-fusionwindow)")

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
    if name in SWEEP:
        sampler, _, extra = m.SAMPLING[name]
        kind = f"AIAS ({extra['coefficients']} coefficients)" if sampler == "aias" else sampler
        m.description = f"frontier: the `fast` model sampled by {kind} at NFE {SWEEP[name][1]}, with FARM injection"
    elif name != "fast":
        sampler, steps, extra = m.SAMPLING[name]
        steps = {None: "aias.steps", "T": "all T"}.get(steps, steps)
        farm = "without FARM injection" if extra.get("farm") is False else "with FARM injection"
        fusion = ", background fused only inside the authors' (T/4, 3T/4) window" if extra.get("fusion") else ""
        m.description = f"ablation: the `fast` model sampled by {sampler} ({steps} steps), {farm}{fusion}"
    return m
