"""The NFE sweep of the sampler frontier (fast.methods.SWEEP): each entry's NFE is its plan, and
every solver samples the right distribution.

Distribution test: an analytic model whose eps is the EXACT posterior mean E[eps | z_t] of Gaussian
data x0 ~ N(mu, s^2) per pixel (z_t = sqrt(a) x0 + sqrt(1 - a) eps gives
E[eps | z_t] = sqrt(1 - a) (z_t - sqrt(a) mu) / (a s^2 + 1 - a)). With the exact score, DDPM-1000
(the reverse SDE) and every probability-flow ODE solver sample N(mu, s^2) up to their
discretisation error, so their outputs' mean and std must agree with DDPM-1000's and with (mu, s).
Tolerance 0.02 on both, with s = 0.5 and n = 16384 pixel samples: ~5 standard errors of the
difference of two sample stds (sqrt(2) s / sqrt(2n) = 0.004) and more of two means, plus the
discretisation error at "large NFE", measured <= 0.01 here: 50 steps for the second-order multistep
solvers (DPM-Solver++ 2M, UniPC, DEIS), 250 for the first-order / ancestral ones (DDIM, AIAS),
which at 50 are off by 0.03-0.06 (AIAS, like strided DDPM, under-disperses at few segments). A
sampler on the wrong schedule misses by more than 0.05 (tested).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fast.diffusion.schedule import Schedule
from fast.methods import SWEEP, SWEEP_NFE, SWEEP_SAMPLERS, build_method
from fast.samplers import build_sampler

MU, S = 0.3, 0.5
N_IMAGES, SIZE = 64, 16            # 16384 pixel samples per sampler
TOL = 0.02


class GaussianModel:
    """The exact eps of N(MU, S^2) data: what a perfectly trained network would predict."""

    farm = None
    x0_clip = None

    def __init__(self, schedule: Schedule):
        self.schedule = schedule

    def eps(self, z, t, cond, mask, bg):
        a = self.schedule.abar_tensor(t).view(-1, 1, 1, 1).to(z.dtype)
        return (1 - a).sqrt() * (z - a.sqrt() * MU) / (a * S ** 2 + 1 - a)


@pytest.fixture(scope="module")
def schedule():
    return Schedule.from_config({"num_train_timesteps": 1000, "beta_schedule": "linear",
                                 "beta_start": 0.0001, "beta_end": 0.02})


def _sample(schedule, sampler_name, steps, options=None, seed=0):
    model = GaussianModel(schedule)
    x_bg = torch.zeros(N_IMAGES, 1, SIZE, SIZE)
    mask = torch.ones(N_IMAGES, 1, SIZE, SIZE)   # the whole image is generated
    sampler = build_sampler(sampler_name, schedule, {"clip_x0": False, "farm": False, **(options or {})})
    gen = torch.Generator().manual_seed(seed)
    res = sampler.sample(model, x_bg, mask, torch.zeros(N_IMAGES, dtype=torch.long), steps, gen)
    return res.z0.numpy().ravel(), res.nfe


@pytest.fixture(scope="module")
def ddpm1000(schedule):
    z, nfe = _sample(schedule, "ddpm", 1000, seed=1)
    assert nfe == 1000
    return float(z.mean()), float(z.std())


def test_ddpm1000_samples_the_data_distribution(ddpm1000):
    mean, std = ddpm1000
    assert mean == pytest.approx(MU, abs=TOL) and std == pytest.approx(S, abs=TOL)


@pytest.mark.parametrize("sampler,options,nfe", [
    ("dpmpp", {}, 50), ("unipc", {}, 50), ("deis", {}, 50), ("ddim", {"eta": 0.0}, 250),
    ("aias", {"t_fine": 2, "coefficients": "exact"}, 250), ("aias", {"t_fine": 2, "coefficients": "paper"}, 250)])
def test_solvers_at_large_nfe_match_ddpm1000(schedule, ddpm1000, sampler, options, nfe):
    steps = nfe - 2 if sampler == "aias" else nfe     # AIAS: segments + 2 fine steps
    z, made = _sample(schedule, sampler, steps, options)
    assert made == nfe
    assert float(z.mean()) == pytest.approx(ddpm1000[0], abs=TOL)
    assert float(z.std()) == pytest.approx(ddpm1000[1], abs=TOL)


def test_a_wrong_step_size_is_caught(schedule, ddpm1000):
    """The tolerance has teeth: DDIM told the schedule has half its real noise misses it."""
    half = Schedule.from_config({"num_train_timesteps": 1000, "beta_schedule": "linear",
                                 "beta_start": 0.00005, "beta_end": 0.01})
    model = GaussianModel(schedule)     # the data's true eps under the real schedule
    sampler = build_sampler("ddim", half, {"clip_x0": False, "farm": False, "eta": 0.0})
    z = sampler.sample(model, torch.zeros(N_IMAGES, 1, SIZE, SIZE), torch.ones(N_IMAGES, 1, SIZE, SIZE),
                       torch.zeros(N_IMAGES, dtype=torch.long), 50, torch.Generator().manual_seed(0)).z0.numpy()
    assert abs(float(z.std()) - ddpm1000[1]) > 0.05 or abs(float(z.mean()) - ddpm1000[0]) > 0.05


def test_every_sweep_entry_plans_exactly_its_nfe():
    cfg = {"experiment": "t", "datasets": {"synthetic": {"categories": ["fabric"]}}, "methods": ["fast"],
           "aias": {"steps": 10, "t_fine": 2}}
    from fast.config import load_config

    cfg = load_config(cfg)
    schedule = Schedule.from_config(cfg["diffusion"])
    assert len(SWEEP) == len(SWEEP_SAMPLERS) * len(SWEEP_NFE)
    for name, (_, nfe) in SWEEP.items():
        sampler_name, steps, options = build_method(name, cfg).sampling_plan()
        assert build_sampler(sampler_name, schedule, options).nfe(steps) == nfe, name
