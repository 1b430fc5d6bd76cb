"""AnomalyDiffusion-style baseline (`anomalydiffusion`): the shared base model (the backbone trained
WITHOUT FARM: mask-weighted epsilon loss with the anomaly-type condition, fast.methods.base_model)
sampled by masked inpainting with DDIM (eta = 1, 50 steps) and the background fused from the
forward-diffused x_bg at every step. On the pixel backbone the mask and masked-background input
channels stand in for AnomalyDiffusion's spatial anomaly embedding, and the eps loss is masked as
in its code; its mask generator is not reproduced (every method draws from the same mask pool)."""

from __future__ import annotations

from fast import catalog
from fast.diffusion.losses import eps_loss
from fast.methods.diffusion_family import DiffusionMethod


class AnomalyDiffusionMethod(DiffusionMethod):
    name = "anomalydiffusion"
    SAMPLING = catalog.sampling_plans(catalog.BASE)   # DDIM eta=1, no FARM (its catalog record)

    def loss(self, model, batch, generator):
        return eps_loss(model, batch, generator, self.outside_weight())


def build(cfg: dict, name: str) -> AnomalyDiffusionMethod:
    return AnomalyDiffusionMethod(cfg, name)
