"""Schedule math and AIAS segment coefficients against independent computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler
from hypothesis import given, settings
from hypothesis import strategies as st

from fast.diffusion.schedule import Schedule, posterior_coefficients, q_sample, x0_from_eps
from fast.samplers.aias import segment_boundaries, segment_coefficients

LINEAR = Schedule(1000, "linear", 1e-4, 0.02)
SCALED = Schedule(1000, "scaled_linear", 0.00085, 0.012)


def jump_posterior(ac: torch.Tensor, ts: int, te: int):
    """Closed-form q(z_te | z_ts, x0) (docs/methods.md), written independently of the composition."""
    a_s = float(ac[ts])
    a_e = 1.0 if te < 0 else float(ac[te])
    Pi = math.sqrt(a_s / a_e) * (1 - a_e) / (1 - a_s)
    Sigma = math.sqrt(a_e) * (1 - a_s / a_e) / (1 - a_s)
    V = (1 - a_e) * (1 - a_s / a_e) / (1 - a_s)
    return Pi, Sigma, V


def test_schedule_matches_diffusers_and_manual_betas():
    ac = LINEAR.alphas_cumprod
    assert ac.dtype == torch.float64 and ac.shape == (1000,)
    ref = DDPMScheduler(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02).alphas_cumprod
    assert torch.equal(ac.float(), ref)
    manual = np.cumprod(1 - np.linspace(1e-4, 0.02, 1000))
    np.testing.assert_allclose(ac.numpy(), manual, rtol=1e-5)
    scaled = np.cumprod(1 - np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000) ** 2)
    np.testing.assert_allclose(SCALED.alphas_cumprod.numpy(), scaled, rtol=1e-5)
    assert LINEAR.abar(-1) == 1.0 and LINEAR.abar(0) == pytest.approx(1 - 1e-4)
    assert torch.equal(LINEAR.abar_tensor(torch.tensor([-1, 0, 999])),
                       torch.tensor([1.0, float(ac[0]), float(ac[999])], dtype=torch.float64))


def test_posterior_coefficients_match_the_formulas_and_diffusers_step():
    ac = LINEAR.alphas_cumprod
    betas = 1 - ac / torch.cat([torch.ones(1, dtype=torch.float64), ac[:-1]])
    for t in (0, 1, 17, 500, 999):
        A, B, var = posterior_coefficients(ac, t)
        ap = 1.0 if t == 0 else float(ac[t - 1])
        bt = float(betas[t])
        assert A == pytest.approx(math.sqrt(ap) * bt / (1 - float(ac[t])), rel=1e-12)
        assert B == pytest.approx(math.sqrt(1 - bt) * (1 - ap) / (1 - float(ac[t])), rel=1e-12)
        assert var == pytest.approx((1 - ap) * bt / (1 - float(ac[t])), rel=1e-12, abs=1e-300)
    # diffusers' DDPM step (fixed_small variance, no clipping) with the same noise
    sched = DDPMScheduler(num_train_timesteps=1000, clip_sample=False, variance_type="fixed_small")
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(2, 3, 4, 4, generator=gen, dtype=torch.float64)
    eps = torch.randn(2, 3, 4, 4, generator=gen, dtype=torch.float64)
    for t in (0, 5, 300, 999):
        out = sched.step(eps, t, z, generator=torch.Generator().manual_seed(7)).prev_sample
        A, B, var = posterior_coefficients(ac, t)
        x0 = x0_from_eps(z, eps, float(ac[t]))
        noise = torch.randn(z.shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
        ours = A * x0 + B * z + (math.sqrt(var) * noise if t > 0 else 0)
        torch.testing.assert_close(out, ours, rtol=1e-4, atol=1e-4)  # diffusers runs in float32


def test_q_sample_and_x0_from_eps_invert_each_other():
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(3, 1, 5, 5, generator=g), torch.randn(3, 1, 5, 5, generator=g)
    abar = torch.tensor([0.9, 0.5, 0.01], dtype=torch.float64)
    zt = q_sample(x0, eps, abar)
    torch.testing.assert_close(zt[1], math.sqrt(0.5) * x0[1] + math.sqrt(0.5) * eps[1])
    torch.testing.assert_close(x0_from_eps(zt, eps, abar), x0, atol=1e-4, rtol=1e-4)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([LINEAR, SCALED]), st.integers(0, 999), st.integers(-1, 998))
def test_exact_segments_equal_the_closed_form_jump_posterior(sched, a, b):
    ts, te = max(a, b + 1), min(a - 1, b)
    if not -1 <= te < ts:
        ts, te = a, a - 1
    got = segment_coefficients(sched.alphas_cumprod, ts, te, "exact")
    want = jump_posterior(sched.alphas_cumprod, ts, te)
    assert all(isinstance(v, float) for v in got)
    for g_, w_ in zip(got, want):
        assert g_ == pytest.approx(w_, rel=1e-10, abs=1e-12)


def test_one_step_segments_are_the_single_posterior_in_both_modes():
    ac = SCALED.alphas_cumprod
    for t in (0, 1, 250, 999):
        A, B, var = posterior_coefficients(ac, t)
        want = (B, A, var)  # z_{t-1} = B z_t + A x0 + sigma n  <->  Pi, Sigma, V
        for mode in ("exact", "paper"):
            got = segment_coefficients(ac, t, t - 1, mode)
            for g_, w_ in zip(got, want):
                assert g_ == pytest.approx(w_, rel=1e-12, abs=1e-300)


def test_paper_mode_differs_for_multi_step_segments():
    ac = LINEAR.alphas_cumprod
    ex = segment_coefficients(ac, 300, 200, "exact")
    pa = segment_coefficients(ac, 300, 200, "paper")
    assert ex[0] == pytest.approx(pa[0], rel=1e-14)  # Pi is the same product either way
    assert abs(ex[1] - pa[1]) > 1e-3 and pa[2] / ex[2] - 1 > 0.1
    # the last segment to the clean sample: exact gives x0 itself, the paper's does not
    assert segment_coefficients(ac, 999, -1) == pytest.approx((0.0, 1.0, 0.0), abs=1e-12)
    assert segment_coefficients(ac, 999, -1, "paper")[2] > 0.9
    # the paper's version written out independently
    steps = range(201, 301)
    co = {i: posterior_coefficients(ac, i) for i in steps}
    sig = sum(co[i][0] * math.prod(co[j][1] for j in range(i + 1, 301)) for i in steps)
    var = sum(co[i][2] * math.prod(co[j][1] for j in range(i + 1, 301)) ** 2 for i in steps)
    assert pa[1] == pytest.approx(sig, rel=1e-10) and pa[2] == pytest.approx(var, rel=1e-10)


def test_segment_coefficients_errors_and_cache():
    ac = LINEAR.alphas_cumprod
    for ts, te in [(5, 5), (4, 7), (1000, 3), (3, -2)]:
        with pytest.raises(ValueError, match="t_end < t_start"):
            segment_coefficients(ac, ts, te)
    with pytest.raises(ValueError, match="mode"):
        segment_coefficients(ac, 5, 2, "fancy")
    from fast.samplers.aias import _segment_coefficients

    segment_coefficients(ac, 700, 300)
    hits = _segment_coefficients.cache_info().hits
    segment_coefficients(ac.clone(), 700, 300)
    assert _segment_coefficients.cache_info().hits == hits + 1


def test_monte_carlo_sequential_steps_match_the_segment():
    """Apply the single steps t_s..t_e+1 with fixed x0 to many samples: mean and variance of
    z_te match Pi z_ts + Sigma x0 and V."""
    ac = LINEAR.alphas_cumprod
    ts, te = 200, 100
    g = torch.Generator().manual_seed(0)
    n = 200_000
    z_s, x0 = 0.7, -0.4
    z = torch.full((n,), z_s, dtype=torch.float64)
    for i in range(ts, te, -1):
        A, B, var = posterior_coefficients(ac, i)
        z = A * x0 + B * z + math.sqrt(var) * torch.randn(n, generator=g, dtype=torch.float64)
    Pi, Sigma, V = segment_coefficients(ac, ts, te)
    se = math.sqrt(V / n)
    assert abs(z.mean().item() - (Pi * z_s + Sigma * x0)) < 5 * se
    assert z.var().item() == pytest.approx(V, rel=0.02)
    # and the paper's coefficients are measurably wrong on this segment
    _, _, Vp = segment_coefficients(ac, ts, te, "paper")
    assert Vp / V - 1 > 0.5  # the paper's V is 68 % too large here


def test_segment_boundaries():
    b = segment_boundaries(1000, 10, 2)
    assert len(b) == 11 and b[0] == 999 and b[-1] == 1
    assert all(x > y for x, y in zip(b, b[1:]))
    assert segment_boundaries(50, 50, 0) == list(range(49, -2, -1))
    with pytest.raises(ValueError):
        segment_boundaries(50, 60, 0)
