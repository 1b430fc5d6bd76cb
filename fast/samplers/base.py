"""The sampler interface, foreground fusion and the image-space composite (one place each).

A sampler: ``Sampler(schedule, options).sample(model, x_bg, mask, cond, steps, generator) -> z0``
where ``model`` is a :class:`~fast.diffusion.model.DiffusionModel`, ``x_bg`` the background in
model space (``model.encode(image)``), ``mask`` the (B, 1, h, w) {0,1} mask on the z grid,
``cond`` class indices (B,), ``generator`` a CPU ``torch.Generator`` (all noise is drawn on the CPU
so outputs are the same on every device). ``nfe(steps)`` is the number of network evaluations;
``last_nfe`` counts the ones the last ``sample`` call made.

Extending: subclass :class:`Sampler`, implement ``sample`` and ``nfe``, register the name in
``fast/samplers/__init__.py``. Use :func:`predict_x0` for the network call (FARM injection,
x0 clipping) and :func:`fuse_background` after every update so that all samplers share them.
"""

from __future__ import annotations

import numpy as np
import torch

from fast.diffusion.masks import feather_weights, resize_mask
from fast.diffusion.schedule import Schedule, q_sample, randn, x0_from_eps


class Sampler:
    name = ""

    def __init__(self, schedule: Schedule, options: dict | None = None):
        self.schedule = schedule
        self.options = dict(options or {})
        self.last_nfe = 0

    def nfe(self, steps: int) -> int:
        raise NotImplementedError

    def sample(self, model, x_bg: torch.Tensor, mask: torch.Tensor, cond: torch.Tensor, steps: int,
               generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def start(self, x_bg: torch.Tensor, generator: torch.Generator, t_start: int) -> torch.Tensor:
        """z at ``t_start``: pure noise (``start: noise``) or the forward-diffused background."""
        noise = randn(x_bg.shape, generator, x_bg.device, x_bg.dtype)
        if self.options.get("start", "noise") == "background":
            return q_sample(x_bg, noise, self.schedule.abar(t_start))
        return noise


def predict_x0(model, z: torch.Tensor, t: int, mask: torch.Tensor, cond: torch.Tensor,
               generator: torch.Generator, farm: bool, clip: bool,
               bg: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One network evaluation at timestep ``t``: optional FARM injection, eps (given the mask and
    the clean background ``bg``, the spatial condition), x0_hat (clipped to the backbone's range
    when ``clip``). Returns (x0_hat, zhat), zhat being the injected input."""
    abar = model.schedule.abar(t)
    tt = torch.full((z.shape[0],), int(t), dtype=torch.long, device=z.device)
    zhat = z
    if farm and model.farm is not None:
        zhat = model.inject(z, mask, tt, randn(z.shape, generator, z.device, z.dtype), abar)
    eps = model.eps(zhat, tt, cond, mask, bg)
    x0 = x0_from_eps(zhat, eps, abar)
    if clip and model.x0_clip is not None:
        x0 = x0.clamp(*model.x0_clip)
    return x0, zhat


def fuse_background(z: torch.Tensor, x_bg: torch.Tensor, mask: torch.Tensor, t: int, schedule: Schedule,
                    generator: torch.Generator) -> torch.Tensor:
    """z = M z + (1 - M) q(x_bg at t) with fresh noise; ``t = -1`` pastes the clean background."""
    if t < 0:
        bg = x_bg
    else:
        bg = q_sample(x_bg, randn(x_bg.shape, generator, x_bg.device, x_bg.dtype), schedule.abar(t))
    return mask * z + (1 - mask) * bg


def to_model_space(images: np.ndarray, device) -> torch.Tensor:
    """uint8 (B, H, W, C) -> float (B, C, H, W) in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    return (x / 127.5 - 1.0).to(device)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """float (B, C, H, W) in [-1, 1] -> uint8 (B, H, W, C)."""
    x = ((x.detach().float().cpu().clamp(-1, 1) + 1.0) * 127.5).round()
    return x.to(torch.uint8).permute(0, 2, 3, 1).numpy()


def composite(generated: np.ndarray, background: np.ndarray, mask: np.ndarray, feather: int = 0) -> np.ndarray:
    """out = M * generated + (1 - M) * background in uint8; outside the mask bit-identical to the
    background (feathering only ramps weights inside the mask)."""
    w = feather_weights(mask, feather)[..., None]
    out = np.where(w > 0, np.round(w * generated + (1 - w) * background), background)
    return out.astype(np.uint8)


@torch.no_grad()
def sample_images(model, sampler: Sampler, backgrounds: np.ndarray, masks: np.ndarray, cond: torch.Tensor,
                  steps: int, generator: torch.Generator, device="cpu") -> np.ndarray:
    """Generated uint8 images (B, H, W, C) at the backgrounds' size (before compositing): encodes at
    the model resolution (resizing if needed), resizes the mask to the z grid, samples, decodes."""
    b, h, w, c = backgrounds.shape
    _, zh, zw = model.latent_shape()
    x = to_model_space(backgrounds, device)
    res = model.backbone.resolution
    if (h, w) != (res, res):
        x = torch.nn.functional.interpolate(x, size=(res, res), mode="bilinear", align_corners=False,
                                            antialias=True)
    z_bg = model.encode(x)
    m_full = torch.from_numpy(np.ascontiguousarray(masks)).float()[:, None].to(device)
    m_z = resize_mask(m_full, (zh, zw))
    z0 = sampler.sample(model, z_bg, m_z, cond.to(device), steps, generator)
    img = model.decode(z0)
    if tuple(img.shape[-2:]) != (h, w):
        img = torch.nn.functional.interpolate(img, size=(h, w), mode="bilinear", align_corners=False)
    return to_uint8(img)


def synthesize_batch(model, sampler: Sampler, backgrounds: np.ndarray, masks: np.ndarray,
                     cond: torch.Tensor, steps: int, generator: torch.Generator, feather: int = 0,
                     device="cpu") -> list[np.ndarray]:
    """Backgrounds uint8 (B, H, W, C) + masks uint8 (B, H, W) -> composited uint8 images.

    A model trained on windows (``model.patch``) generates the window around each mask
    (fast.data.windows.mask_window: centred on the mask's bounding box; a mask larger than a window
    gets a larger window resized to the patch and back), which is pasted back; otherwise the whole
    image is generated at the model resolution. Either way the composite keeps every pixel outside
    the mask bit-identical to the background."""
    if model.patch:
        from fast.data.windows import crop, crop_mask, mask_window, paste

        wins = [mask_window(m, model.patch) for m in masks]
        win_bg = np.stack([crop(bg, wn, model.patch) for bg, wn in zip(backgrounds, wins)])
        win_m = np.stack([crop_mask(m, wn, model.patch) for m, wn in zip(masks, wins)])
        gen = sample_images(model, sampler, win_bg.reshape(*win_bg.shape[:3], -1), win_m, cond, steps,
                            generator, device)
        gen = [paste(g, wn, bg) for g, wn, bg in zip(gen, wins, backgrounds)]
    else:
        gen = sample_images(model, sampler, backgrounds, masks, cond, steps, generator, device)
    return [composite(gen[i], backgrounds[i], masks[i], feather) for i in range(len(backgrounds))]
