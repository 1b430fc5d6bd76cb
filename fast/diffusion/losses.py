"""Training losses (one place): the mask-weighted epsilon loss and FAST's Algorithm 1.

A loss is ``loss_fn(model, batch, generator) -> {"loss": total, ...scalars}`` with batch keys
``x`` (images in [-1, 1]), ``mask`` (B, 1, H, W) and ``cond`` (class indices); ``generator`` is the
step's CPU generator. New methods add their loss here (or in their own module) with this signature.

Every epsilon loss is weighted toward the mask (AnomalyDiffusion's own code masks its loss): a
defect covers a few % of a window, so an unweighted mean would be ~all background. The weighted
loss is mean_in + outside_weight * mean_out (squared error averaged over the pixels inside / outside
M of the batch); both means are logged (``*_in``, ``*_out``) so train_log.csv shows whether the
model learns the defect, not just the background.
"""

from __future__ import annotations

import torch

from fast.diffusion.masks import resize_mask
from fast.diffusion.schedule import q_sample, randn


def noised_batch(model, batch: dict, generator: torch.Generator):
    """(z0, z-grid mask, t, eps, abar_t, z_t) for one batch: t ~ U{0..T-1}, eps ~ N(0, I)."""
    x = batch["x"]
    with torch.no_grad():
        z0 = model.encode(x)
    mask = resize_mask(batch["mask"], tuple(z0.shape[-2:]))
    t = torch.randint(0, model.schedule.T, (z0.shape[0],), generator=generator).to(z0.device)
    eps = randn(z0.shape, generator, z0.device, z0.dtype)
    abar = model.schedule.abar_tensor(t)
    return z0, mask, t, eps, abar, q_sample(z0, eps, abar)


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
               outside_weight: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean_in + outside_weight * mean_out, mean_in, mean_out) of the squared error; ``mask``
    (B, 1, h, w) broadcasts over channels; a mean over no pixels is 0."""
    sq = (pred - target) ** 2
    m = mask.expand_as(sq)
    n_in, n_out = m.sum(), (1 - m).sum()
    mean_in = (sq * m).sum() / n_in.clamp_min(1)
    mean_out = (sq * (1 - m)).sum() / n_out.clamp_min(1)
    return mean_in + float(outside_weight) * mean_out, mean_in, mean_out


def _logged(prefix: str, mean_in: torch.Tensor, mean_out: torch.Tensor) -> dict[str, torch.Tensor]:
    return {f"{prefix}_in": mean_in.detach(), f"{prefix}_out": mean_out.detach()}


def eps_loss(model, batch: dict, generator: torch.Generator, outside_weight: float = 0.1) -> dict[str, torch.Tensor]:
    """Mask-weighted || eps - eps_theta(z_t, t, c, M, (1-M) z0) ||^2: the shared base model's
    objective (and so the anomalydiffusion baseline's)."""
    z0, mask, t, eps, abar, z_t = noised_batch(model, batch, generator)
    loss, l_in, l_out = masked_mse(model.eps(z_t, t, batch["cond"], mask, z0), eps, mask, outside_weight)
    return {"loss": loss, **_logged("loss_eps", l_in, l_out)}


def fast_loss(model, batch: dict, generator: torch.Generator, lam: float = 5.0,
              outside_weight: float = 0.1) -> dict[str, torch.Tensor]:
    """Algorithm 1: zhat_t = (1-M) z_t + M (sqrt(abar) F(z_t, M, t) + sqrt(1-abar) eps) (same eps);
    loss = || eps - eps_theta(zhat_t, t, c) ||^2 + lambda || F(z_t, M, t) - M z0 ||^2, BOTH terms
    mask-weighted the same way (mean inside M + outside_weight x mean outside M).

    The authors' code reduces both terms alike (a plain mean over every latent pixel), so lambda is
    the weight of FARM's term relative to the eps term. Here the eps term is mask-weighted (a defect
    covers a few % of a window); a FARM term left as a plain mean would weigh its in-mask error by
    the mask's share of the window (lambda = 5 acting like ~0.3 inside a 6 % mask), so it gets the
    same normalisation and lambda keeps the paper's relative weight.

    Only valid with a frozen epsilon model (the paper's frozen LDM; on the pixel backbone the
    frozen shared base): with a trainable one the eps term inside M has a defect-ignorant minimum
    (x0_hat inside M is exactly F, so F -> constant makes eps readable from zhat)."""
    z0, mask, t, eps, abar, z_t = noised_batch(model, batch, generator)
    f = model.farm(z_t, mask, t)
    zhat = (1 - mask) * z_t + mask * q_sample(f, eps, abar)
    l_eps, l_in, l_out = masked_mse(model.eps(zhat, t, batch["cond"], mask, z0), eps, mask, outside_weight)
    l_farm, f_in, f_out = masked_mse(f, mask * z0, mask, outside_weight)
    return {"loss": l_eps + lam * l_farm, "loss_eps": l_eps.detach(), **_logged("loss_eps", l_in, l_out),
            "loss_farm": l_farm.detach(), **_logged("loss_farm", f_in, f_out)}
