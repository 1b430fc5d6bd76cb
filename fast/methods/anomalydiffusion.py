"""AnomalyDiffusion-style baseline (`anomalydiffusion`): the shared base model (the backbone trained
WITHOUT FARM: mask-weighted epsilon loss with the anomaly-type condition, fast.methods.base_model)
sampled by masked inpainting with DDIM (eta = 1, 50 steps) and the background fused from the
forward-diffused x_bg at every step. On the pixel backbone the mask and masked-background input
channels stand in for AnomalyDiffusion's spatial anomaly embedding, and the eps loss is masked as
in its code; its mask generator is not reproduced (every method draws from the same mask pool)."""

from __future__ import annotations

from fast.diffusion.losses import eps_loss
from fast.methods.diffusion import DiffusionMethod


class AnomalyDiffusionMethod(DiffusionMethod):
    name = "anomalydiffusion"
    generator = "base"
    description = "AnomalyDiffusion-style masked inpainting (no FARM, DDIM eta=1)"
    departures = ("samples the shared base model (its objective); mask + background input channels "
                  "instead of the spatial embedding; its adaptive attention re-weighting (cross-attention "
                  "maps weighted towards the mask) not reproduced: the pixel UNet has no cross-attention; "
                  "DDIM-50 instead of ~200 steps; no mask generator")
    SAMPLING = {"anomalydiffusion": ("ddim", 50, {"eta": 1.0, "farm": False})}

    def loss(self, model, batch, generator):
        return eps_loss(model, batch, generator, self.outside_weight())


def build(cfg: dict, name: str) -> AnomalyDiffusionMethod:
    return AnomalyDiffusionMethod(cfg, name)
