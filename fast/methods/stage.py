"""STAGE (`stage`, arXiv 2509.06693): graded diffusion with explicit mask alignment (docs/methods.md, STAGE).

Generator: the shared backbone (pixel UNet or LDM) plus two zero-initialised conv adapters on its
epsilon output (FAST's optional ``Adaptor`` module): ``stage_ad_img`` for the image branch and
``stage_ad_an`` for the anomaly-only branch, trained with
  || M_t (eps - Ad_img(eps_theta(z_t, t, c))) ||^2 + || eps' - Ad_an(eps_theta(q(M z0, t, eps'), t, c)) ||^2
(mean squared errors), M_t = M + a_t (1 - M) the explicit-mask-alignment (EMA) mask.

Sampling (:class:`StageSampler`): strided ancestral DDPM over ``steps`` evenly spaced timesteps
(the paper runs all 1000; each stride is the exact jump posterior, shared with AIAS), with
- the anomaly-informed prior: x0_hat <- M_t x0_hat + (1 - M_t) z_bg before each posterior step and
  z <- M_t z + (1 - M_t) q(z_bg at t_prev) after it;
- graded diffusion: at timesteps in [0.7 T, 0.8 T] and [0.3 T, 0.4 T] the anomaly-only branch
  does the update on the anomaly-only image (inside M the current z, outside M the forward-diffused
  empty anomaly image, i.e. pure noise of that level, as in training) and its result is pasted
  into M; outside M that step sets the forward-diffused background (our reading: no second network
  call per step, and the final composite keeps only M anyway).
The final composite in image space keeps every pixel outside the mask bit-identical to the
background (fast.samplers.base.synthesize_batch).

Options (``method_options.stage``): ``steps`` (default 50; NFE = steps), ``clip_x0`` (default
true), ``adapter_hidden`` (32), ``batch_size`` (synthesis batch, 16).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch

from fast.diffusion.extras import AD_AN, AD_IMG
from fast.diffusion.losses import masked_mse, noised_batch
from fast.diffusion.model import DiffusionModel
from fast.diffusion.schedule import q_sample, randn
from fast.methods.base import BOOLEAN, INTEGER
from fast.methods.diffusion_family import DiffusionMethod
from fast.methods.stage_schedule import ema_mask, uses_anomaly_branch
from fast.samplers.aias import StridedDDPMSampler
from fast.samplers.base import SampleResult, StridedPlan, fuse_background, posterior_step, predict_x0


def branch_eps(model: DiffusionModel, adapter: str, z_t, t, cond, mask, bg):
    """Ad(eps_theta(z_t, t, c, M, bg), M) for one of the two branches (the anomaly-only branch's
    background is the empty image: bg = 0)."""
    return model.extra_modules[adapter](model.eps(z_t, t, cond, mask, bg), mask)


def stage_loss(model: DiffusionModel, batch: dict, generator: torch.Generator,
               outside_weight: float = 0.1) -> dict[str, torch.Tensor]:
    """STAGE's two terms, each mask-weighted like every eps loss here (fast.diffusion.losses)."""
    z0, mask, t, eps, abar, z_t = noised_batch(model, batch, generator)
    m_t = ema_mask(mask, t, model.schedule.T)
    e_img = branch_eps(model, AD_IMG, z_t, t, batch["cond"], mask, z0)
    l_img, in_img, out_img = masked_mse(m_t * e_img, m_t * eps, mask, outside_weight)
    eps_an = randn(z0.shape, generator, z0.device, z0.dtype)
    a_t = q_sample(mask * z0, eps_an, abar)
    l_an, in_an, out_an = masked_mse(branch_eps(model, AD_AN, a_t, t, batch["cond"], mask, torch.zeros_like(z0)),
                                     eps_an, mask, outside_weight)
    return {"loss": l_img + l_an, "loss_img": l_img.detach(), "loss_an": l_an.detach(),
            "loss_eps_in": in_img.detach(), "loss_eps_out": out_img.detach(), "loss_an_in": in_an.detach()}


@dataclass(frozen=True)
class StagePlan(StridedPlan):
    """The strided plan and, per step, the branch that runs it ("image" or "anomaly")."""

    branches: tuple[str, ...] = ()


class StageSampler(StridedDDPMSampler):
    """Strided DDPM with STAGE's anomaly-informed prior, EMA mask and graded diffusion."""

    name = "stage"

    def plan(self, steps: int) -> StagePlan:
        base, T = super().plan(steps), self.schedule.T
        return StagePlan(base.segments, tuple("anomaly" if uses_anomaly_branch(ts, T) else "image"
                                              for ts in base.timesteps))

    def sample(self, model, x_bg, mask, cond, steps, generator) -> SampleResult:
        T, clip, plan = self.schedule.T, self.options.clip_x0, self.plan(steps)
        z = randn(x_bg.shape, generator, x_bg.device, x_bg.dtype)  # M_{T-1} ~ 1: all editable
        nfe = 0
        for seg, branch in zip(plan.segments, plan.branches):
            ts = seg.t_start
            if branch == "anomaly":
                # anomaly-only image: z inside M, forward-diffused empty image outside (as in training)
                empty = torch.zeros_like(z)
                src = fuse_background(z, empty, mask, ts, self.schedule, generator)
                x0, _ = predict_x0(model, src, ts, mask, cond, generator, False, clip, empty,
                                   eps=partial(branch_eps, model, AD_AN))
                x0, m_keep = mask * x0, mask
            else:
                src = z
                x0, _ = predict_x0(model, z, ts, mask, cond, generator, False, clip, x_bg,
                                   eps=partial(branch_eps, model, AD_IMG))
                m_keep = ema_mask(mask, ts, T)
                x0 = m_keep * x0 + (1 - m_keep) * x_bg           # anomaly-informed prior
            nfe += 1
            z = fuse_background(posterior_step(src, x0, seg, generator), x_bg, m_keep, seg.t_end, self.schedule,
                                generator)
        return SampleResult(z, nfe)


class StageMethod(DiffusionMethod):
    name = "stage"
    # the authors' code freezes the diffusion model (unfreeze_model False): only the adapters train
    trains_backbone = False
    OPTIONS = {**DiffusionMethod.OPTIONS, "clip_x0": BOOLEAN, "adapter_hidden": INTEGER}

    def extra_modules(self):
        hidden = int(self.options.get("adapter_hidden", 32))
        return {AD_IMG: {"hidden": hidden}, AD_AN: {"hidden": hidden}}

    def loss(self, model, batch, generator):
        return stage_loss(model, batch, generator, self.outside_weight())

    def make_sampler(self):
        return self.strided_sampler(StageSampler)


def build(cfg: dict, name: str) -> StageMethod:
    return StageMethod(cfg, name)
