"""The one DDPM schedule shared by every diffusion method, and its single-step math.

Indexing follows diffusers: timestep ``t`` in 0..T-1 has ``abar_t = alphas_cumprod[t]``; the
posterior step from ``t`` to ``t-1`` uses ``abar_{t-1}`` (1.0 for ``t = 0``: ``t = -1`` is the
clean sample). ``alphas_cumprod`` is taken from a diffusers ``DDPMScheduler`` built from the
config, so our schedule and diffusers' schedulers agree exactly; all math here is float64.

Extending: add a ``beta_schedule`` by adding it to the schema enum (diffusers must know it);
every other module gets its coefficients from :class:`Schedule` (never recompute abar elsewhere).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch


@dataclass(frozen=True)
class Schedule:
    """Frozen DDPM schedule: the diffusers scheduler config and float64 ``alphas_cumprod``."""

    num_train_timesteps: int
    beta_schedule: str
    beta_start: float
    beta_end: float

    @classmethod
    def from_config(cls, diffusion_cfg: dict) -> "Schedule":
        return cls(int(diffusion_cfg["num_train_timesteps"]), str(diffusion_cfg["beta_schedule"]),
                   float(diffusion_cfg["beta_start"]), float(diffusion_cfg["beta_end"]))

    def as_dict(self) -> dict:
        return {"num_train_timesteps": self.num_train_timesteps, "beta_schedule": self.beta_schedule,
                "beta_start": self.beta_start, "beta_end": self.beta_end}

    def scheduler_config(self) -> dict:
        """Keyword arguments for any diffusers scheduler sharing this schedule."""
        return {"num_train_timesteps": self.num_train_timesteps, "beta_schedule": self.beta_schedule,
                "beta_start": self.beta_start, "beta_end": self.beta_end}

    @cached_property
    def alphas_cumprod(self) -> torch.Tensor:
        from diffusers import DDPMScheduler

        sched = DDPMScheduler(**self.scheduler_config())
        return sched.alphas_cumprod.to(torch.float64).clone()

    @property
    def T(self) -> int:
        return self.num_train_timesteps

    @cached_property
    def abar_table(self):
        """``alphas_cumprod`` as a float64 numpy array (read per sampling step without a tensor op)."""
        return self.alphas_cumprod.numpy().copy()

    def abar(self, t: int) -> float:
        """abar_t as a float; ``t = -1`` is the clean sample (1.0)."""
        return 1.0 if t < 0 else float(self.abar_table[t])

    def abar_tensor(self, t: torch.Tensor) -> torch.Tensor:
        """abar for a batch of integer timesteps (float64; -1 -> 1.0)."""
        ac = torch.cat([torch.ones(1, dtype=torch.float64), self.alphas_cumprod])
        return ac[t.long().cpu() + 1]


def posterior_coefficients(alphas_cumprod: torch.Tensor, t: int) -> tuple[float, float, float]:
    """(A_t, B_t, sigma_t^2) of q(z_{t-1} | z_t, x0) = N(A_t x0 + B_t z_t, sigma_t^2 I), float64."""
    ac = alphas_cumprod.to(torch.float64)
    if not 0 <= t < len(ac):
        raise ValueError(f"posterior step needs 0 <= t < {len(ac)}, got {t}")
    abar_t = float(ac[t])
    abar_prev = 1.0 if t == 0 else float(ac[t - 1])
    alpha_t = abar_t / abar_prev
    beta_t = 1.0 - alpha_t
    A = abar_prev ** 0.5 * beta_t / (1.0 - abar_t)
    B = alpha_t ** 0.5 * (1.0 - abar_prev) / (1.0 - abar_t)
    var = (1.0 - abar_prev) * beta_t / (1.0 - abar_t)
    return A, B, var


def x0_from_eps(z_t: torch.Tensor, eps: torch.Tensor, abar_t) -> torch.Tensor:
    """x0_hat = (z_t - sqrt(1 - abar_t) eps) / sqrt(abar_t); abar_t a float or (B,) tensor."""
    a = _bcast(abar_t, z_t)
    return (z_t - (1.0 - a).sqrt() * eps) / a.sqrt()


def q_sample(z0: torch.Tensor, noise: torch.Tensor, abar_t) -> torch.Tensor:
    """Forward diffusion q(z_t | z0) = sqrt(abar_t) z0 + sqrt(1 - abar_t) noise."""
    a = _bcast(abar_t, z0)
    return a.sqrt() * z0 + (1.0 - a).sqrt() * noise


def _bcast(abar, like: torch.Tensor) -> torch.Tensor:
    a = torch.as_tensor(abar, dtype=torch.float64)
    if a.ndim == 1:
        a = a.view(-1, *([1] * (like.ndim - 1)))
    return a.to(device=like.device, dtype=like.dtype)


def randn(shape, generator: torch.Generator, device, dtype=torch.float32) -> torch.Tensor:
    """Gaussian noise drawn on the CPU generator (same numbers on every device), then moved."""
    return torch.randn(tuple(shape), generator=generator, dtype=dtype).to(device)
