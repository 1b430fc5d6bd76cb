"""SARD: the frozen background path of region-constrained sampling, the alternating GAN step
with its checkpointed discriminator, and the method end to end on the synthetic dataset."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from generators import fit_generator

from fast.data.manifest import PreparedCategory
from fast.diffusion.model import DiffusionModel
from fast.diffusion.schedule import Schedule
from fast.errors import FastError
from fast.methods import build_method
from fast.methods.sard import DESCRIPTION, DISC, DISC_OPT, SardSampler
from test_stage_method import first_last_mean, ref_abar, requests_for, tiny_cfg

T = 100
SCHED = Schedule(T, "linear", 1e-4, 0.02)


class Stub:
    schedule = SCHED
    x0_clip = (-1.0, 1.0)
    farm = None

    def eps(self, z, t, cond, mask=None, bg=None):
        t = torch.as_tensor(t).float().view(-1, 1, 1, 1)
        return torch.tanh(0.5 * z + t / T) + 0.05 * cond.view(-1, 1, 1, 1).float()


@pytest.mark.parametrize("steps", [T, 13])
def test_background_rides_one_frozen_forward_path(steps):
    g = torch.Generator().manual_seed(0)
    x_bg = torch.rand(2, 3, 8, 8, generator=g, dtype=torch.float64) * 2 - 1
    mask = torch.zeros(2, 1, 8, 8, dtype=torch.float64)
    mask[0, :, 1:4, 2:6] = 1
    mask[1, :, 5:8, 0:3] = 1
    sampler = SardSampler(SCHED, record=True)
    res = sampler.sample(Stub(), x_bg, mask, torch.tensor([0, 1]), steps, torch.Generator().manual_seed(1))
    z0, trace = res.z0, res.trace
    assert len(trace["z"]) == steps + 1 and trace["t"][0] == T - 1 and trace["t"][-1] == -1
    out = (mask == 0).expand_as(x_bg)
    # one eps_bg, recovered from the first state, explains every later background state
    abar = SCHED.alphas_cumprod.numpy()   # the schedule's own values (tested in test_diffusion_schedule)
    assert np.allclose(abar, ref_abar(T), rtol=1e-6)
    a0 = abar[trace["t"][0]]
    eps_bg = (trace["z"][0] - np.sqrt(a0) * x_bg) / np.sqrt(1 - a0)
    torch.testing.assert_close(eps_bg[out], trace["eps_bg"][out], atol=1e-9, rtol=0)
    for t, z in zip(trace["t"], trace["z"]):
        a = 1.0 if t < 0 else abar[t]
        expected = np.sqrt(a) * x_bg + np.sqrt(1 - a) * trace["eps_bg"]
        assert torch.allclose(z[out], expected[out], atol=1e-12, rtol=0), t
    assert torch.equal(z0[out], x_bg[out])
    # the masked region was really sampled (it is not on the background path)
    a = abar[trace["t"][steps // 2]]
    on_path = np.sqrt(a) * x_bg + np.sqrt(1 - a) * trace["eps_bg"]
    assert not torch.allclose(trace["z"][steps // 2][~out], on_path[~out], atol=1e-2)
    assert res.nfe == steps


@pytest.mark.parametrize("steps", [9, 20])
def test_sard_sampler_matches_an_independent_reference(steps):
    """Region-constrained strided DDPM written out: closed-form jump posteriors inside M, outside M
    the one forward path sqrt(a) x_bg + sqrt(1 - a) eps_bg (eps_bg drawn first, then the start)."""
    g = torch.Generator().manual_seed(0)
    x_bg = torch.rand(2, 3, 8, 8, generator=g, dtype=torch.float64) * 2 - 1
    mask = torch.zeros(2, 1, 8, 8, dtype=torch.float64)
    mask[:, :, 2:6, 1:5] = 1
    cond = torch.tensor([0, 1])
    res = SardSampler(SCHED).sample(Stub(), x_bg, mask, cond, steps, torch.Generator().manual_seed(3))
    abar = SCHED.alphas_cumprod
    ab = lambda t: 1.0 if t < 0 else float(abar[t])
    g = torch.Generator().manual_seed(3)
    rn = lambda: torch.randn(x_bg.shape, generator=g, dtype=torch.float64)
    eps_bg, noise = rn(), rn()
    path = lambda t: np.sqrt(ab(t)) * x_bg + np.sqrt(1 - ab(t)) * eps_bg
    bounds = [int(v) for v in np.round(np.linspace(T - 1, -1, steps + 1))]
    z = mask * noise + (1 - mask) * path(bounds[0])
    for ts, te in zip(bounds[:-1], bounds[1:]):
        a_s, a_e = ab(ts), ab(te)
        x0 = ((z - np.sqrt(1 - a_s) * Stub().eps(z, torch.full((2,), ts), cond)) / np.sqrt(a_s)).clamp(-1, 1)
        z_new = (np.sqrt(a_s / a_e) * (1 - a_e) * z + np.sqrt(a_e) * (1 - a_s / a_e) * x0) / (1 - a_s)
        if te >= 0:
            z_new = z_new + np.sqrt((1 - a_e) * (1 - a_s / a_e) / (1 - a_s)) * rn()
        z = mask * z_new + (1 - mask) * (x_bg if te < 0 else path(te))
    torch.testing.assert_close(res.z0, z, atol=1e-9, rtol=1e-9)
    assert res.nfe == steps and res.trace is None


def test_sampler_is_deterministic_per_generator_seed():
    x_bg = torch.zeros(1, 1, 8, 8)
    mask = torch.ones(1, 1, 8, 8)
    run = lambda s: SardSampler(SCHED).sample(Stub(), x_bg, mask, torch.tensor([0]), 10,
                                              torch.Generator().manual_seed(s)).z0
    assert torch.equal(run(2), run(2)) and not torch.equal(run(2), run(3))


# -- training and the method end to end (tiny UNet, 32 px synthetic data) -----------------------

@pytest.fixture(scope="module")
def trained_sard(synthetic_prepared, tmp_path_factory):
    ds = PreparedCategory.load(synthetic_prepared / "synthetic" / "fabric")
    out = tmp_path_factory.mktemp("sard_gen")
    fit_generator("sard", tiny_cfg("sard", 40), ds, out)
    return ds, out


def test_sard_training_lowers_the_loss_and_trains_the_discriminator(trained_sard):
    ds, out = trained_sard
    log = pd.read_csv(out / "train_log.csv")
    assert list(log["step"]) == list(range(1, 41))
    first, last = first_last_mean(log, "loss_eps")
    assert last < 0.8 * first, (first, last)   # fine-tuning a base model that already learnt
    fired = log[log["loss_disc"] > 0]
    assert len(fired) >= 10  # the alternating D step ran on most steps (anomalous samples, t <= T/2)
    assert np.all(np.isfinite(log["loss_adv"]))
    model = DiffusionModel.load(out)
    d_opt = model.extra_modules[DISC_OPT]
    assert float(d_opt.step_0) == len(fired)            # D's Adam state saved with the model
    assert float(d_opt.exp_avg_sq_0.abs().sum()) > 0


def test_sard_resume_after_a_kill_equals_an_uninterrupted_run(synthetic_prepared, tmp_path):
    ds = PreparedCategory.load(synthetic_prepared / "synthetic" / "fabric")
    cfg = tiny_cfg("sard", 8)
    cfg["diffusion"]["train"]["checkpoint_every"] = 4
    full, base = tmp_path / "full", tmp_path / "base"
    build_method("base", cfg).fit(ds, base)
    build_method("sard", cfg).fit(ds, full, base)

    killed = tmp_path / "killed"
    method = build_method("sard", cfg)
    calls = {"n": 0}
    real_loss = method.loss

    def dying_loss(model, batch, g):
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt  # killed during step 7; the last checkpoint is step 4
        return real_loss(model, batch, g)

    method.loss = dying_loss
    with pytest.raises(KeyboardInterrupt):
        method.fit(ds, killed, base)
    assert (killed / "checkpoints" / "last.json").is_file() and not (killed / "model.safetensors").exists()
    build_method("sard", cfg).fit(ds, killed, base)
    a, b = DiffusionModel.load(full).state_dict(), DiffusionModel.load(killed).state_dict()
    assert a.keys() == b.keys() and any(k.startswith(f"extra_modules.{DISC}.") for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert pd.read_csv(full / "train_log.csv").equals(pd.read_csv(killed / "train_log.csv"))


def test_sard_synthesis_is_deterministic_exact_and_outside_mask_identical(trained_sard):
    ds, out = trained_sard
    method = build_method("sard", tiny_cfg("sard", 40))
    assert "no public code" in method.description and method.description == DESCRIPTION
    with pytest.raises(FastError):
        list(method.synthesize(requests_for(ds), seed=0))   # nothing loaded yet
    method.load(out)
    reqs = requests_for(ds)
    a, b = list(method.synthesize(reqs, seed=3)), list(method.synthesize(reqs, seed=3))
    for (img, m, meta), (img2, _, _), r in zip(a, b, reqs):
        assert img.dtype == np.uint8 and img.shape == r.background.shape
        assert np.array_equal(img, img2)
        assert np.array_equal(m, (r.mask > 0).astype(np.uint8))
        assert np.array_equal(img[m == 0], r.background[m == 0])
        assert not np.array_equal(img[m > 0], r.background[m > 0])
        assert meta["nfe"] == 8 and meta["sampler"] == "sard"
