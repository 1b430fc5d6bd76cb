"""SARD (`sard`, arXiv 2508.03143): region-constrained diffusion + discriminative mask guidance.
Implemented after the paper's description (no public code); docs/methods.md, SARD.

Sampling (:class:`SardSampler`, region-constrained diffusion, RCD): strided ancestral DDPM over
``steps`` evenly spaced timesteps (each stride the exact jump posterior, shared with AIAS); only
the masked region is updated, the background follows ONE frozen forward path of the clean
background, z_bg_t = sqrt(abar_t) z_bg + sqrt(1 - abar_t) eps_bg with a single eps_bg per
trajectory: z_{t_prev} = M posterior_step(z_t) + (1 - M) z_bg_{t_prev}. Final composite in image
space (outside the mask bit-identical to the background).

Training (discriminative mask guidance, DMG): epsilon loss + ``adv_weight`` (0.1) x adversarial
term on the decoded x0_hat of the anomalous samples, composited region-constrained into their
real image (fake = M x0_hat + (1 - M) x), judged by the mask-aware two-head patch discriminator
D(image, mask) (fast.diffusion.discriminator): a global real/fake score and a per-pixel map that
must find real anomaly pixels (target M on real pairs, 0 on generated ones); the generator wants
its pair judged real and its anomaly found exactly in M. Real pairs: the real gen_train anomalous
images with their masks. D is trained alternately (one D step per generator step, inside the loss)
with its own Adam (betas 0.5, 0.999); D's weights and its optimiser state live in the model's
``extra_modules`` so the shared resumable loop checkpoints and resumes them exactly.
The adversarial term is applied only at t <= ``adv_max_t`` x T (default 0.5): above that x0_hat is
a blur whose gradient is amplified by sqrt((1 - abar_t) / abar_t) > 1 and destabilises training.

Options (``method_options.sard``): ``steps`` (50; NFE = steps), ``clip_x0`` (true), ``adv_weight``
(0.1), ``adv_max_t`` (0.5), ``disc_lr`` (2e-4), ``disc_width`` (32), ``batch_size`` (synthesis, 16).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fast import catalog
from fast.diffusion.discriminator import discriminator_loss, generator_adversarial_loss
from fast.diffusion.extras import DISC, DISC_OPT
from fast.diffusion.losses import masked_mse, noised_batch
from fast.diffusion.model import DiffusionModel
from fast.diffusion.schedule import randn, x0_from_eps
from fast.methods.base import BOOLEAN, INTEGER, NUMBER
from fast.methods.diffusion_family import DiffusionMethod
from fast.samplers.aias import StridedDDPMSampler, StridedOptions
from fast.samplers.base import SampleResult, fuse_background, posterior_step, predict_x0

DESCRIPTION = catalog.record("sard").description


def sard_loss(model: DiffusionModel, batch: dict, generator: torch.Generator, disc_opt: torch.optim.Optimizer,
              adv_weight: float = 0.1, adv_max_t: float = 0.5, outside_weight: float = 0.1) -> dict[str, torch.Tensor]:
    """One alternating step: D update on (real, fake.detach()), then eps + adv_weight x adversarial."""
    z0, mask, t, eps, abar, z_t = noised_batch(model, batch, generator)
    e = model.eps(z_t, t, batch["cond"], mask, z0)
    l_eps, l_in, l_out = masked_mse(e, eps, mask, outside_weight)
    logged = {"loss_eps_in": l_in.detach(), "loss_eps_out": l_out.detach()}
    x, m_img = batch["x"], batch["mask"]
    sel = (m_img.flatten(1).amax(1) > 0) & (t <= adv_max_t * model.schedule.T)
    d = model.extra_modules[DISC]
    zero = l_eps.new_zeros(())
    if not sel.any() or adv_weight == 0:
        return {"loss": l_eps, "loss_eps": l_eps.detach(), **logged, "loss_adv": zero, "loss_disc": zero}
    x0_hat = x0_from_eps(z_t[sel], e[sel], abar[sel.cpu()])
    if model.x0_clip is not None:
        x0_hat = x0_hat.clamp(*model.x0_clip)
    img_hat = model.decode(x0_hat)
    m_sel, real = m_img[sel], x[sel]
    fake = m_sel * img_hat + (1 - m_sel) * real           # region-constrained: the background is real
    d.requires_grad_(True)
    l_d = discriminator_loss(d, real, fake.detach(), m_sel)
    disc_opt.zero_grad(set_to_none=True)
    l_d.backward()
    disc_opt.step()
    d.requires_grad_(False)                               # the generator step must not touch D
    l_adv = generator_adversarial_loss(d, fake, m_sel)
    d.requires_grad_(True)
    return {"loss": l_eps + adv_weight * l_adv, "loss_eps": l_eps.detach(), **logged, "loss_adv": l_adv.detach(),
            "loss_disc": l_d.detach()}


@dataclass(frozen=True)
class SardOptions(StridedOptions):
    """``record``: return the trajectory (t, z after every update, and eps_bg) in the result's trace."""

    record: bool = False


class SardSampler(StridedDDPMSampler):
    """Region-constrained strided DDPM: the background rides one frozen forward path."""

    name = "sard"
    Options = SardOptions

    def sample(self, model, x_bg, mask, cond, steps, generator) -> SampleResult:
        o, plan = self.options, self.plan(steps)
        t0 = plan.segments[0].t_start
        eps_bg = randn(x_bg.shape, generator, x_bg.device, x_bg.dtype)   # one draw per trajectory
        noise = randn(x_bg.shape, generator, x_bg.device, x_bg.dtype)
        z = fuse_background(noise, x_bg, mask, t0, self.schedule, generator, noise=eps_bg)
        trace = {"eps_bg": eps_bg, "t": [t0], "z": [z]} if o.record else None
        nfe = 0
        for seg in plan.segments:
            x0, _ = predict_x0(model, z, seg.t_start, mask, cond, generator, False, o.clip_x0, x_bg)
            nfe += 1
            z = fuse_background(posterior_step(z, x0, seg, generator), x_bg, mask, seg.t_end, self.schedule,
                                generator, noise=eps_bg)
            if trace is not None:
                trace["t"].append(seg.t_end)
                trace["z"].append(z)
        return SampleResult(z, nfe, trace)


class SardMethod(DiffusionMethod):
    name = "sard"
    OPTIONS = {**DiffusionMethod.OPTIONS, "clip_x0": BOOLEAN, "adv_weight": NUMBER, "adv_max_t": NUMBER,
               "disc_lr": NUMBER, "disc_width": INTEGER}

    def extra_modules(self):
        return {DISC: {"width": int(self.options.get("disc_width", 32)), "n_down": 3}, DISC_OPT: {}}

    def trainable_parameters(self, model):
        # the generator's optimiser trains the backbone only; D has its own optimiser
        return list(model.backbone.trainable_parameters())

    def _disc_optimizer(self, model) -> torch.optim.Adam:
        if getattr(self, "_disc_opt_model", None) is not model:
            params = list(model.extra_modules[DISC].parameters())
            opt = torch.optim.Adam(params, lr=float(self.options.get("disc_lr", 2e-4)), betas=(0.5, 0.999),
                                   foreach=False)
            model.extra_modules[DISC_OPT].bind(opt, params)
            self._disc_opt, self._disc_opt_model = opt, model
        return self._disc_opt

    def loss(self, model, batch, generator):
        return sard_loss(model, batch, generator, self._disc_optimizer(model),
                         float(self.options.get("adv_weight", 0.1)), float(self.options.get("adv_max_t", 0.5)),
                         self.outside_weight())

    def make_sampler(self):
        return self.strided_sampler(SardSampler)


def build(cfg: dict, name: str) -> SardMethod:
    return SardMethod(cfg, name)
