"""AIAS: Anomaly-Informed Accelerated Sampling (docs/methods.md, FAST/AIAS).

Segment coefficients: treating x0_hat as constant over the segment [t_start -> t_end], the
composition of the single DDPM posterior steps t_start, t_start-1, ..., t_end+1 is one affine
Gaussian step z_{t_end} = Pi z_{t_start} + Sigma x0_hat + sqrt(V) n.

Indexing (diffusers): timestep t has abar_t = alphas_cumprod[t]; t = -1 is the clean sample
(abar = 1). Segment boundaries b_0 = T-1 > b_1 > ... > b_S = t_fine - 1 are evenly spaced
integers; the fine stage is then t_fine single DDPM steps t = t_fine-1, ..., 0 (the last one to
the clean sample), so NFE = S + t_fine, and S = T, t_fine = 0 is exactly ancestral DDPM.
(docs/methods.md counts t from 1 with abar_0 = 1; its "t_fine .. 1" are our t_fine-1 .. 0.)

The plans (boundaries and every segment's (Pi, Sigma, V)) are computed once per schedule and step
count (``aias_plan``, ``strided_plan``: cached), so a sampling loop only multiplies.

Extending: new coefficient variants go into ``_segment_coefficients`` as another ``mode``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from fast.diffusion.schedule import Schedule, posterior_coefficients
from fast.errors import FastError
from fast.samplers.base import (FusedOptions, FusedSampler, Options, SampleResult, Sampler, Segment, StridedPlan,
                                posterior_step, predict_x0)

MODES = ("exact", "paper")


def segment_coefficients(alphas_cumprod: torch.Tensor, t_start: int, t_end: int,
                         mode: str = "exact") -> tuple[float, float, float]:
    """(Pi, Sigma, V) of the segment t_start -> t_end (t_end = -1: clean), as Python floats.

    ``mode="exact"``: the true composition of the single posterior steps (equals the closed-form
    jump posterior q(z_{t_end} | z_{t_start}, x0)); ``mode="paper"``: the paper's printed formulas
    (inner products prod_{j=i+1}^{t_start} B_j). Cached per (schedule, boundaries, mode)."""
    ac = torch.as_tensor(alphas_cumprod).detach().to("cpu", torch.float64).contiguous()
    if ac.ndim != 1:
        raise ValueError("alphas_cumprod must be a 1-D tensor")
    T = ac.shape[0]
    t_start, t_end = int(t_start), int(t_end)
    if not -1 <= t_end < t_start <= T - 1:
        raise ValueError(f"segment needs -1 <= t_end < t_start <= T-1 = {T - 1}, got t_start={t_start}, "
                         f"t_end={t_end}")
    if mode not in MODES:
        raise ValueError(f"unknown coefficient mode {mode!r}; expected one of {MODES}")
    key = hashlib.sha1(ac.numpy().tobytes()).hexdigest()
    return _segment_coefficients(key, tuple(ac.tolist()), t_start, t_end, mode)


@lru_cache(maxsize=65536)
def _segment_coefficients(key: str, ac: tuple, t_start: int, t_end: int, mode: str):
    ac_t = torch.tensor(ac, dtype=torch.float64)
    steps = list(range(t_end + 1, t_start + 1))  # i = t_end+1 .. t_start (application order reversed)
    coef = {i: posterior_coefficients(ac_t, i) for i in steps}
    B = np.array([coef[i][1] for i in steps])
    Pi = float(np.prod(B))
    Sigma = V = 0.0
    for k, i in enumerate(steps):
        A_i, _, var_i = coef[i]
        # exact: the steps after step i (j = t_end+1 .. i-1) multiply its contribution;
        # paper: prod over j = i+1 .. t_start (the order of the steps reversed).
        inner = float(np.prod(B[:k])) if mode == "exact" else float(np.prod(B[k + 1:]))
        Sigma += A_i * inner
        V += var_i * inner ** 2
    return Pi, Sigma, V


def segment_boundaries(T: int, steps: int, t_fine: int) -> list[int]:
    """S+1 strictly decreasing integer boundaries from T-1 down to t_fine-1, evenly spaced."""
    lo = int(t_fine) - 1
    if t_fine < 0 or t_fine > T - 1:
        raise ValueError(f"t_fine must be between 0 and T-1 = {T - 1} (the number of timesteps minus one); "
                         f"got t_fine={t_fine}")
    if steps < 1 or steps > (T - 1) - lo:
        raise ValueError(f"AIAS needs 1 <= steps <= T - t_fine = {(T - 1) - lo} for T={T}, t_fine={t_fine}; "
                         f"got steps={steps}")
    b = np.round(np.linspace(T - 1, lo, steps + 1)).astype(int).tolist()
    if len(set(b)) != len(b):  # rounding can only collide when steps is close to the maximum
        raise ValueError(f"AIAS boundaries collide for steps={steps}")
    return b


def segments(schedule: Schedule, pairs, mode: str = "exact") -> tuple[Segment, ...]:
    """The (t_start, t_end) updates of ``pairs`` with their coefficients (``segment_coefficients``)."""
    ac = schedule.alphas_cumprod
    return tuple(Segment(ts, te, *segment_coefficients(ac, ts, te, mode)) for ts, te in pairs)


@lru_cache(maxsize=256)
def strided_plan(schedule: Schedule, steps: int) -> StridedPlan:
    """``steps`` evenly spaced exact jumps from T-1 to the clean sample (STAGE's and SARD's plan)."""
    b = segment_boundaries(schedule.T, int(steps), 0)   # T-1 ... -1 (clean)
    return StridedPlan(segments(schedule, zip(b[:-1], b[1:]), "exact"))


@dataclass(frozen=True)
class AIASPlan(StridedPlan):
    """The S segments followed by the t_fine single steps (FARM by the shared rule in t,
    ``FusedSampler.farm_at``: none in the fine steps at the default farm_stop)."""

    n_segments: int = 0


@lru_cache(maxsize=256)
def aias_plan(schedule: Schedule, steps: int, t_fine: int, mode: str) -> AIASPlan:
    try:
        b = segment_boundaries(schedule.T, int(steps), int(t_fine))
    except ValueError as exc:
        raise FastError(f"aias.steps / aias.t_fine: {exc}") from None
    pairs = list(zip(b[:-1], b[1:])) + [(t, t - 1) for t in range(t_fine - 1, -1, -1)]
    return AIASPlan(segments(schedule, pairs, mode), n_segments=int(steps))


@dataclass(frozen=True)
class StridedOptions(Options):
    """x0_hat clipped to the backbone's range."""

    clip_x0: bool = True


class StridedDDPMSampler(Sampler):
    """Base of the strided-DDPM samplers (STAGE, SARD): ``steps`` evenly spaced jumps from T-1 to the
    clean sample, each one exact jump posterior (``segment_coefficients``), one network call each."""

    Options = StridedOptions

    def plan(self, steps: int) -> StridedPlan:
        return strided_plan(self.schedule, int(steps))


@dataclass(frozen=True)
class AIASOptions(FusedOptions):
    """AIAS's own options (config section ``aias``): the fine single steps, the coefficient
    formulas, and whether the segment update starts from z or from the FARM-injected input."""

    t_fine: int = 2
    coefficients: str = "exact"
    update_from: str = "z"
    CHOICES = {**FusedOptions.CHOICES, "coefficients": MODES, "update_from": ("z", "injected")}


class AIASSampler(FusedSampler):
    """Options: :class:`AIASOptions` (t_fine, coefficients, update_from) and the fused samplers'
    farm, clip_x0, start."""

    name = "aias"
    Options = AIASOptions

    def plan(self, steps: int) -> AIASPlan:
        """All updates: the S segments, then the fine single steps."""
        return aias_plan(self.schedule, int(steps), self.options.t_fine, self.options.coefficients)

    def sample(self, model, x_bg, mask, cond, steps, generator) -> SampleResult:
        o, plan = self.options, self.plan(steps)
        z = self.start(x_bg, generator, plan.segments[0].t_start)
        nfe = 0
        for seg in plan.segments:
            x0, zhat = predict_x0(model, z, seg.t_start, mask, cond, generator, self.farm_at(seg.t_start),
                                  o.clip_x0, x_bg)
            nfe += 1
            z = posterior_step(zhat if o.update_from == "injected" else z, x0, seg, generator)
            z = self.fuse(z, x_bg, mask, seg.t_end, generator)
        return SampleResult(z, nfe)
