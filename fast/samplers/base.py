"""The sampler interface, its shared steps (the jump posterior step, foreground fusion, the x0
prediction) and the image-space composite (one place each).

A sampler has the shape of a diffusers scheduler: the constructor takes the schedule and the
options as keyword arguments (their defaults: the family's ``Options`` dataclass, the one place
they are written; an unknown option is a FastError naming the known ones), ``plan(steps)``
precomputes everything a run of ``steps`` steps needs (timesteps, segment coefficients; cached per
schedule and step count) and ``nfe(steps)`` is that plan's number of network evaluations.

``sample(model, x_bg, mask, cond, steps, generator) -> SampleResult(z0, nfe)``: ``model`` a
:class:`~fast.diffusion.model.DiffusionModel`, ``x_bg`` the background in model space
(``model.encode(image)``), ``mask`` the (B, 1, h, w) {0,1} mask on the z grid, ``cond`` class
indices (B,), ``generator`` a CPU ``torch.Generator`` (all noise is drawn on the CPU so outputs
are the same on every device); the result carries the network evaluations the call made. A sampler
holds no state between calls.

Extending: subclass a family (:class:`FusedSampler`: FARM, x0 clipping, start, background fused
after every update; or ``fast.samplers.aias.StridedDDPMSampler``), give it an ``Options``
dataclass if it has options of its own, implement ``plan`` and ``sample`` with :func:`predict_x0`
(the network call), :func:`posterior_step` and :func:`fuse_background`, and register the name in
``fast/samplers/__init__.py``.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from typing import Callable, ClassVar, Sequence

import numpy as np
import torch

from fast.diffusion.masks import feather_weights, resize_mask
from fast.diffusion.schedule import Schedule, q_sample, randn, x0_from_eps
from fast.errors import FastError
from fast.precision import FP32, Precision
from fast.samplers.noise import GroupedNoise, network_call


@dataclass(frozen=True)
class SampleResult:
    """What ``Sampler.sample`` returns: the clean sample, the network evaluations made, and (only
    for a sampler asked to record it) its trajectory."""

    z0: torch.Tensor
    nfe: int
    trace: dict | None = None


@dataclass(frozen=True)
class Options:
    """Base of the option dataclasses: each field is an option, its default THE default. Values are
    cast to the default's type (bool, int, float); ``CHOICES`` lists a string option's values."""

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {}

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in self.CHOICES and value not in self.CHOICES[f.name]:
                raise FastError(f"sampler option {f.name} {value!r}: expected one of {list(self.CHOICES[f.name])}")
            if type(f.default) in (bool, int, float):
                object.__setattr__(self, f.name, type(f.default)(value))

    @classmethod
    def defaults(cls) -> dict:
        return {f.name: f.default for f in fields(cls) if f.default is not MISSING}


@dataclass(frozen=True)
class Segment:
    """One update t_start -> t_end (t_end = -1: the clean sample) with the coefficients of its
    jump posterior z_{t_end} = Pi z_{t_start} + Sigma x0_hat + sqrt(V) n."""

    t_start: int
    t_end: int
    Pi: float
    Sigma: float
    V: float


@dataclass(frozen=True)
class StridedPlan:
    """A plan of jump-posterior updates, one network evaluation each."""

    segments: tuple[Segment, ...]

    @property
    def nfe(self) -> int:
        return len(self.segments)

    @property
    def timesteps(self) -> tuple[int, ...]:
        return tuple(s.t_start for s in self.segments)


class Sampler:
    """``Sampler(schedule, **options)``; subclasses implement ``plan`` and ``sample``."""

    name = ""
    Options: type[Options] = Options

    def __init__(self, schedule: Schedule, **options):
        unknown = [k for k in options if k not in self.Options.defaults()]
        if unknown:
            raise FastError(f"sampler {self.name!r} has no option {unknown[0]!r}; its options: "
                            f"{', '.join(self.Options.defaults()) or 'none'}")
        self.schedule = schedule
        try:
            self.options = self.Options(**options)
        except FastError as exc:
            raise FastError(f"sampler {self.name!r}: {exc}") from None

    @classmethod
    def option_defaults(cls) -> dict:
        """The sampler's options and their defaults."""
        return cls.Options.defaults()

    def plan(self, steps: int):
        """The precomputed plan of a run of ``steps`` steps (it has ``nfe`` and ``timesteps``)."""
        raise NotImplementedError

    def nfe(self, steps: int) -> int:
        return self.plan(steps).nfe

    def sample(self, model, x_bg: torch.Tensor, mask: torch.Tensor, cond: torch.Tensor, steps: int,
               generator: torch.Generator) -> SampleResult:
        raise NotImplementedError


# FARM's policy, one rule in t for every sampler of FAST's model: FARM injects at the network
# evaluations of timesteps t >= farm_stop x T and at none below. The authors' AIAS runs FARM on its
# coarse segments only (AIAS-10, T = 1000: the last FARM call at t = 101, then the fine single
# steps without it) and their DDPM baseline not at all; below t ~ 0.1 T the injected input is
# FARM's own reconstruction almost unchanged (sqrt((1 - abar) / abar) < 0.21), so a sampler that
# kept FARM on to t = 0 would output FARM's reconstruction rather than the diffusion model's.
FARM_STOP = 0.1
# The authors' AIAS fuses the forward-diffused background only after segments that end inside
# (T/4, 3T/4) and never in the fine steps (`fusion: window`); `every` fuses after every update.
FUSION_WINDOW = (0.25, 0.75)


@dataclass(frozen=True)
class FusedOptions(Options):
    """Options of the fused samplers (AIAS, diffusers' solvers): FARM injection on the network's
    input at t >= farm_stop x T, x0_hat clipped to the backbone's range, start from pure noise or
    the forward-diffused background, and when the background is fused (after every update, or only
    inside the authors' window of timesteps)."""

    farm: bool = True
    farm_stop: float = FARM_STOP
    clip_x0: bool = True
    start: str = "noise"
    fusion: str = "every"
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"start": ("noise", "background"),
                                                     "fusion": ("every", "window")}


class FusedSampler(Sampler):
    """Base of AIAS and diffusers' solvers: FARM by :meth:`farm_at`, the background fused by
    :meth:`fuses_at`."""

    Options = FusedOptions

    def farm_at(self, t: int) -> bool:
        """Whether FARM injects at the network evaluation of timestep ``t`` (the same rule in every
        sampler: t >= farm_stop x T)."""
        return self.options.farm and t >= self.options.farm_stop * self.schedule.T

    def fuses_at(self, t_end: int) -> bool:
        """Whether the background is fused after an update that lands on ``t_end`` (-1: clean)."""
        if self.options.fusion == "every":
            return True
        lo, hi = (f * self.schedule.T for f in FUSION_WINDOW)
        return lo < t_end < hi

    def fuse(self, z, x_bg, mask, t_end: int, generator):
        """z with the background fused at ``t_end`` where :meth:`fuses_at` says so."""
        return fuse_background(z, x_bg, mask, t_end, self.schedule, generator) if self.fuses_at(t_end) else z

    def start(self, x_bg: torch.Tensor, generator: torch.Generator, t_start: int) -> torch.Tensor:
        """z at ``t_start``: pure noise (``start: noise``) or the forward-diffused background."""
        noise = randn(x_bg.shape, generator, x_bg.device, x_bg.dtype)
        if self.options.start == "background":
            return q_sample(x_bg, noise, self.schedule.abar(t_start))
        return noise


def predict_x0(model, z: torch.Tensor, t: int, mask: torch.Tensor, cond: torch.Tensor,
               generator: torch.Generator, farm: bool, clip: bool, bg: torch.Tensor | None = None,
               eps: Callable | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One network evaluation at timestep ``t``: optional FARM injection, eps (given the mask and
    the clean background ``bg``, the spatial condition; ``eps(z, t, cond, mask, bg)`` replaces
    ``model.eps``, e.g. STAGE's adapted branches), x0_hat (clipped to the backbone's range when
    ``clip``). Returns (x0_hat, zhat), zhat being the injected input. The networks' outputs are
    brought to float32 (they are bfloat16 under bf16 autocast, fast.precision)."""
    abar = model.schedule.abar(t)
    tt = torch.full((z.shape[0],), int(t), dtype=torch.long, device=z.device)
    zhat = z
    if farm and model.farm is not None:
        noise = randn(z.shape, generator, z.device, z.dtype)
        with network_call():
            zhat = Precision.cast(model.inject(z, mask, tt, noise, abar))
    with network_call():
        e = Precision.cast((eps or model.eps)(zhat, tt, cond, mask, bg))
    x0 = x0_from_eps(zhat, e, abar)
    if clip and model.x0_clip is not None:
        x0 = x0.clamp(*model.x0_clip)
    return x0, zhat


def posterior_step(z: torch.Tensor, x0: torch.Tensor, seg: Segment, generator: torch.Generator) -> torch.Tensor:
    """The (jump) posterior step of ``seg`` from ``z`` given x0_hat: Pi z + Sigma x0 + sqrt(V) n, the
    noise n drawn fresh (none when V = 0, the step to the clean sample)."""
    out = seg.Pi * z + seg.Sigma * x0
    if seg.V > 0:
        out = out + seg.V ** 0.5 * randn(z.shape, generator, z.device, z.dtype)
    return out


def fuse_background(z: torch.Tensor, x_bg: torch.Tensor, mask: torch.Tensor, t: int, schedule: Schedule,
                    generator: torch.Generator, noise: torch.Tensor | None = None) -> torch.Tensor:
    """z = M z + (1 - M) q(x_bg at t); the forward noise is drawn fresh, or ``noise`` (SARD's one
    frozen background path); ``t = -1`` pastes the clean background."""
    if t < 0:
        bg = x_bg
    else:
        if noise is None:
            noise = randn(x_bg.shape, generator, x_bg.device, x_bg.dtype)
        bg = q_sample(x_bg, noise, schedule.abar(t))
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


@dataclass(frozen=True)
class SampledImages:
    """uint8 (H, W, C) images and the network evaluations the sampler made for them."""

    images: Sequence[np.ndarray]
    nfe: int


@torch.no_grad()
def sample_images(model, sampler: Sampler, backgrounds: np.ndarray, masks: np.ndarray, cond: torch.Tensor,
                  steps: int, generator: torch.Generator | GroupedNoise, device="cpu",
                  precision: Precision = FP32) -> SampledImages:
    """Generated uint8 images (B, H, W, C) at the backgrounds' size (before compositing): encodes at
    the model resolution (resizing if needed), resizes the mask to the z grid, samples, decodes.
    ``generator``: one torch.Generator for the batch, or a :class:`~fast.samplers.noise.GroupedNoise`
    (each row's noise that of its own noise group). Encoding, sampling and decoding run in
    ``precision.context()``; the sampler's state (z, the background, the noise) stays float32."""
    x = to_model_space(backgrounds, device)
    m_full = torch.from_numpy(np.ascontiguousarray(masks)).float()[:, None].to(device)
    img, nfe = generate(model, sampler, x, m_full, cond, steps, generator, precision)
    return SampledImages(to_uint8(img), nfe)


def generate(model, sampler: Sampler, x: torch.Tensor, mask: torch.Tensor, cond: torch.Tensor, steps: int,
             generator: torch.Generator | GroupedNoise, precision: Precision = FP32) -> tuple[torch.Tensor, int]:
    """The tensor work of :func:`sample_images` (what `fast bench memory` traces): backgrounds
    ``x`` (B, C, H, W) in [-1, 1] and {0,1} masks (B, 1, H, W) on their device -> (generated images
    at the backgrounds' size in [-1, 1], NFE)."""
    h, w = x.shape[-2:]
    _, zh, zw = model.latent_shape()
    res = model.backbone.resolution
    if (h, w) != (res, res):
        x = torch.nn.functional.interpolate(x, size=(res, res), mode="bilinear", align_corners=False,
                                            antialias=True)
    with precision.context():
        z_bg = Precision.cast(model.encode(x))
        m_z = resize_mask(mask, (zh, zw))
        if isinstance(generator, GroupedNoise):
            with generator as g:
                result = sampler.sample(model, z_bg, m_z, cond.to(x.device), steps, g)
        else:
            result = sampler.sample(model, z_bg, m_z, cond.to(x.device), steps, generator)
        img = Precision.cast(model.decode(result.z0))
    if tuple(img.shape[-2:]) != (h, w):
        img = torch.nn.functional.interpolate(img, size=(h, w), mode="bilinear", align_corners=False)
    return img, result.nfe


def synthesize_batch(model, sampler: Sampler, backgrounds: np.ndarray, masks: np.ndarray,
                     cond: torch.Tensor, steps: int, generator: torch.Generator | GroupedNoise, feather: int = 0,
                     device="cpu", precision: Precision = FP32) -> SampledImages:
    """Backgrounds uint8 (B, H, W, C) + masks uint8 (B, H, W) -> the composited uint8 images and NFE.

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
        out = sample_images(model, sampler, win_bg.reshape(*win_bg.shape[:3], -1), win_m, cond, steps,
                            generator, device, precision)
        gen = [paste(g, wn, bg) for g, wn, bg in zip(out.images, wins, backgrounds)]
    else:
        out = sample_images(model, sampler, backgrounds, masks, cond, steps, generator, device, precision)
        gen = out.images
    return SampledImages([composite(gen[i], backgrounds[i], masks[i], feather) for i in range(len(backgrounds))],
                         out.nfe)
