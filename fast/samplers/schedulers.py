"""ddpm, ddim, plms, dpmpp (DPM-Solver++ 2M), unipc (UniPC, bh2, order 2), deis (DEIS, order 2):
diffusers' schedulers with our foreground fusion and FARM injection.

Each scheduler is built fresh per ``sample`` call from the shared :class:`Schedule` (no state
across samples). The network's x0_hat (from the FARM-injected input, clipped like AIAS) is handed
to the scheduler as the epsilon that reproduces it from the un-injected z, so that every sampler
uses the same prediction as AIAS. After every step the output's noise level is that of the next
timestep of the scheduler (or the clean sample after the last step) and the background is fused
at that level.

Extending: add a subclass setting ``make_scheduler`` and ``step_kwargs``; register it.
"""

from __future__ import annotations

from fast.errors import FastError
from fast.samplers.base import Sampler, fuse_background, predict_x0


class DiffusersSampler(Sampler):
    def make_scheduler(self):
        raise NotImplementedError

    def step_kwargs(self, generator) -> dict:
        return {}

    def _scheduler(self, steps: int):
        sched = self.make_scheduler()
        try:
            sched.set_timesteps(int(steps))
        except ValueError as exc:
            raise FastError(f"sampler {self.name!r} with {steps} steps: {exc}") from None
        return sched

    def nfe(self, steps: int) -> int:
        return len(self._scheduler(steps).timesteps)

    def sample(self, model, x_bg, mask, cond, steps, generator):
        o = self.options
        farm, clip = bool(o.get("farm", True)), bool(o.get("clip_x0", True))
        sched = self._scheduler(steps)
        ts = [int(t) for t in sched.timesteps]
        z = self.start(x_bg, generator, ts[0]) * float(sched.init_noise_sigma)
        self.last_nfe = 0
        for i, t in enumerate(ts):
            x0, _ = predict_x0(model, z, t, mask, cond, generator, farm, clip, x_bg)
            self.last_nfe += 1
            a = self.schedule.abar(t)
            eps = (z - a ** 0.5 * x0) / (1.0 - a) ** 0.5  # the eps that gives x0 from z
            z = sched.step(eps, t, z, **self.step_kwargs(generator)).prev_sample
            t_next = ts[i + 1] if i + 1 < len(ts) else -1
            z = fuse_background(z, x_bg, mask, t_next, self.schedule, generator)
        return z


class DDPMSampler(DiffusersSampler):
    name = "ddpm"

    def make_scheduler(self):
        from diffusers import DDPMScheduler

        return DDPMScheduler(**self.schedule.scheduler_config(), clip_sample=False,
                             variance_type="fixed_small")

    def step_kwargs(self, generator):
        return {"generator": generator}


class DDIMSampler(DiffusersSampler):
    """Option ``eta`` (0 deterministic DDIM, 1 = DDPM-like; the anomalydiffusion baseline uses 1)."""

    name = "ddim"

    def make_scheduler(self):
        from diffusers import DDIMScheduler

        return DDIMScheduler(**self.schedule.scheduler_config(), clip_sample=False, set_alpha_to_one=True)

    def step_kwargs(self, generator):
        return {"eta": float(self.options.get("eta", 0.0)), "generator": generator}


class PLMSSampler(DiffusersSampler):
    name = "plms"

    def make_scheduler(self):
        from diffusers import PNDMScheduler

        return PNDMScheduler(**self.schedule.scheduler_config(), skip_prk_steps=True, set_alpha_to_one=True)


class DPMPPSampler(DiffusersSampler):
    name = "dpmpp"

    def make_scheduler(self):
        from diffusers import DPMSolverMultistepScheduler

        return DPMSolverMultistepScheduler(**self.schedule.scheduler_config(), algorithm_type="dpmsolver++",
                                           solver_order=2, final_sigmas_type="zero")



class UniPCSampler(DiffusersSampler):
    """UniPC (Zhao et al. 2023), order 2, bh2: the corrector reuses the next step's model output, so
    one network evaluation per step (NFE = steps)."""

    name = "unipc"

    def make_scheduler(self):
        from diffusers import UniPCMultistepScheduler

        return UniPCMultistepScheduler(**self.schedule.scheduler_config(), solver_order=2,
                                       final_sigmas_type="zero")


class DEISSampler(DiffusersSampler):
    """DEIS (Zhang & Chen 2023), multistep, order 2, log-rho: one network evaluation per step."""

    name = "deis"

    def make_scheduler(self):
        from diffusers import DEISMultistepScheduler

        return DEISMultistepScheduler(**self.schedule.scheduler_config(), solver_order=2)
