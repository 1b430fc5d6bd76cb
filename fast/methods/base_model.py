"""The shared base model (`base` generator) of a category: what every diffusion method starts from.

A mask-aware backbone (mask and masked background as input channels on the pixel backbone) trained
from scratch on windows around the category's gen_train defects (normal windows as class ``good``)
with the mask-weighted epsilon loss (fast.diffusion.losses.eps_loss). It plays the part of the
papers' shared pretrained LDM (all of FAST, STAGE, SARD and AnomalyDiffusion start from one):
trained once per category and cached by the workflow, then each method trains only its own part
(FARM for fast, adapters for stage, the discriminator fine-tune for sard); `anomalydiffusion`
samples it as it is, since its objective is exactly the base's. Not a synthesis method itself.
"""

from __future__ import annotations

from fast.diffusion.losses import eps_loss
from fast.methods.diffusion_family import DiffusionMethod


class BaseModel(DiffusionMethod):
    name = "base"

    def loss(self, model, batch, generator):
        return eps_loss(model, batch, generator, self.outside_weight())


def build(cfg: dict, name: str) -> BaseModel:
    return BaseModel(cfg, name)
