"""ddpm, ddim, plms, dpmpp (DPM-Solver++ 2M), unipc (UniPC, bh2, order 2), deis (DEIS, order 2):
diffusers' schedulers with our foreground fusion and FARM injection (FARM by the one rule in t that
AIAS follows too: ``FusedSampler.farm_at``).

The plan (``diffusers_plan``, cached per sampler, schedule and step count) holds the scheduler
after ``set_timesteps``; each ``sample`` call steps a copy of it (no state across samples). The
network's x0_hat (from the FARM-injected input, clipped like AIAS) is handed to the scheduler as
the epsilon that reproduces it from the un-injected z, so that every sampler uses the same
prediction as AIAS. After every step the output's noise level is that of the next timestep of the
scheduler (or the clean sample after the last step) and the background is fused at that level.

Extending: add a subclass with ``make_scheduler(schedule)`` and, if needed, ``step_kwargs``
(and an ``Options`` dataclass for options of its own); register it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import lru_cache

from fast.diffusion.schedule import Schedule
from fast.errors import FastError
from fast.samplers.base import FusedOptions, FusedSampler, SampleResult, predict_x0


@dataclass(frozen=True)
class DiffusersPlan:
    """The scheduler's timesteps, each with the timestep the step lands on (-1: the clean sample),
    and a scheduler right after ``set_timesteps`` (never stepped: each run steps a copy)."""

    timesteps: tuple[int, ...]
    targets: tuple[int, ...]
    init_noise_sigma: float
    template: object

    @property
    def nfe(self) -> int:
        return len(self.timesteps)

    def scheduler(self):
        """A fresh stepper for one run (the multistep solvers keep their history in it)."""
        return copy.deepcopy(self.template)


@lru_cache(maxsize=128)
def diffusers_plan(sampler_cls: type, schedule: Schedule, steps: int) -> DiffusersPlan:
    sched = sampler_cls.make_scheduler(schedule)
    try:
        sched.set_timesteps(int(steps))
    except ValueError as exc:
        raise FastError(f"sampler {sampler_cls.name!r} with {steps} steps: {exc}") from None
    ts = tuple(int(t) for t in sched.timesteps)
    return DiffusersPlan(ts, ts[1:] + (-1,), float(sched.init_noise_sigma), sched)


class DiffusersSampler(FusedSampler):
    @staticmethod
    def make_scheduler(schedule: Schedule):
        raise NotImplementedError

    def step_kwargs(self, generator) -> dict:
        return {}

    def plan(self, steps: int) -> DiffusersPlan:
        return diffusers_plan(type(self), self.schedule, int(steps))

    def sample(self, model, x_bg, mask, cond, steps, generator) -> SampleResult:
        o, plan = self.options, self.plan(steps)
        sched = plan.scheduler()
        z = self.start(x_bg, generator, plan.timesteps[0]) * plan.init_noise_sigma
        nfe = 0
        for t, t_next in zip(plan.timesteps, plan.targets):
            x0, _ = predict_x0(model, z, t, mask, cond, generator, self.farm_at(t), o.clip_x0, x_bg)
            nfe += 1
            a = self.schedule.abar(t)
            eps = (z - a ** 0.5 * x0) / (1.0 - a) ** 0.5  # the eps that gives x0 from z
            z = sched.step(eps, t, z, **self.step_kwargs(generator)).prev_sample
            z = self.fuse(z, x_bg, mask, t_next, generator)
        return SampleResult(z, nfe)


class DDPMSampler(DiffusersSampler):
    name = "ddpm"

    @staticmethod
    def make_scheduler(schedule):
        from diffusers import DDPMScheduler

        return DDPMScheduler(**schedule.scheduler_config(), clip_sample=False,
                             variance_type="fixed_small")

    def step_kwargs(self, generator):
        return {"generator": generator}


@dataclass(frozen=True)
class DDIMOptions(FusedOptions):
    """``eta``: 0 deterministic DDIM, 1 = DDPM-like (the anomalydiffusion baseline uses 1)."""

    eta: float = 0.0


class DDIMSampler(DiffusersSampler):
    name = "ddim"
    Options = DDIMOptions

    @staticmethod
    def make_scheduler(schedule):
        from diffusers import DDIMScheduler

        return DDIMScheduler(**schedule.scheduler_config(), clip_sample=False, set_alpha_to_one=True)

    def step_kwargs(self, generator):
        return {"eta": self.options.eta, "generator": generator}


class PLMSSampler(DiffusersSampler):
    name = "plms"

    @staticmethod
    def make_scheduler(schedule):
        from diffusers import PNDMScheduler

        return PNDMScheduler(**schedule.scheduler_config(), skip_prk_steps=True, set_alpha_to_one=True)


class DPMPPSampler(DiffusersSampler):
    name = "dpmpp"

    @staticmethod
    def make_scheduler(schedule):
        from diffusers import DPMSolverMultistepScheduler

        return DPMSolverMultistepScheduler(**schedule.scheduler_config(), algorithm_type="dpmsolver++",
                                           solver_order=2, final_sigmas_type="zero")


class UniPCSampler(DiffusersSampler):
    """UniPC (Zhao et al. 2023), order 2, bh2: the corrector reuses the next step's model output, so
    one network evaluation per step (NFE = steps)."""

    name = "unipc"

    @staticmethod
    def make_scheduler(schedule):
        from diffusers import UniPCMultistepScheduler

        return UniPCMultistepScheduler(**schedule.scheduler_config(), solver_order=2,
                                       final_sigmas_type="zero")


class DEISSampler(DiffusersSampler):
    """DEIS (Zhang & Chen 2023), multistep, order 2, log-rho: one network evaluation per step."""

    name = "deis"

    @staticmethod
    def make_scheduler(schedule):
        from diffusers import DEISMultistepScheduler

        return DEISMultistepScheduler(**schedule.scheduler_config(), solver_order=2)
