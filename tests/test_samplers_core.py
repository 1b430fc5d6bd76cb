"""Samplers: AIAS == ancestral DDPM with one-step segments, NFE, fusion, composite, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fast.diffusion.backbones import PixelBackbone
from fast.diffusion.masks import resize_mask
from fast.diffusion.model import DiffusionModel
from fast.diffusion.schedule import Schedule
from fast.samplers import SAMPLERS, build_sampler
from fast.samplers.base import composite, synthesize_batch

T = 40
SCHED = Schedule(T, "linear", 1e-4, 0.02)


class ToyModel:
    """A deterministic, non-linear stand-in for eps_theta (no FARM)."""

    farm = None
    x0_clip = None
    schedule = SCHED

    def __init__(self):
        self.calls = 0

    def eps(self, z, t, cond, mask=None, bg=None):
        self.calls += 1
        t = torch.as_tensor(t).float().view(-1, 1, 1, 1)
        return torch.tanh(0.5 * z + t / T) + 0.1 * cond.view(-1, 1, 1, 1).float()


def _inputs(b=3, c=2, s=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    x_bg = torch.randn(b, c, s, s, generator=g)
    mask = torch.zeros(b, 1, s, s)
    mask[:, :, 2:6, 3:7] = 1
    return x_bg, mask, torch.tensor([0, 1, 2][:b])


def _reference_ddpm(model, x_bg, mask, cond, g):
    """Ancestral DDPM with background fusion, float64, straight from docs/methods.md's formulas
    (noise drawn in the samplers' order: start, then per step posterior noise, fusion noise)."""
    betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float32).double()
    abar = torch.cumprod(1 - betas, 0)
    z = torch.randn(x_bg.shape, generator=g, dtype=x_bg.dtype)
    for t in range(T - 1, -1, -1):
        ab, ab_prev = abar[t].item(), (abar[t - 1].item() if t > 0 else 1.0)
        beta = 1 - ab / ab_prev
        x0 = (z - (1 - ab) ** 0.5 * model.eps(z, t, cond)) / ab ** 0.5
        mean = ab_prev ** 0.5 * beta / (1 - ab) * x0 + (1 - beta) ** 0.5 * (1 - ab_prev) / (1 - ab) * z
        if t > 0:
            z = mean + ((1 - ab_prev) * beta / (1 - ab)) ** 0.5 * torch.randn(z.shape, generator=g, dtype=z.dtype)
            bg = ab_prev ** 0.5 * x_bg + (1 - ab_prev) ** 0.5 * torch.randn(z.shape, generator=g, dtype=z.dtype)
        else:
            z, bg = mean, x_bg
        z = mask * z + (1 - mask) * bg
    return z


def test_aias_with_one_step_segments_is_ancestral_ddpm():
    x_bg, mask, cond = _inputs()
    x_bg, mask = x_bg.double(), mask.double()  # float64 so that the comparison measures the math
    aias = build_sampler("aias", SCHED, {"t_fine": 0, "farm": False, "clip_x0": False})
    ddpm = build_sampler("ddpm", SCHED, {"farm": False, "clip_x0": False})
    ra = aias.sample(ToyModel(), x_bg, mask, cond, T, torch.Generator().manual_seed(3))
    zr = _reference_ddpm(ToyModel(), x_bg, mask, cond, torch.Generator().manual_seed(3))
    torch.testing.assert_close(ra.z0, zr, atol=1e-5, rtol=1e-5)
    # diffusers' DDPMScheduler does the same in float32 (1 - abar_t loses digits near t = 0)
    rd = ddpm.sample(ToyModel(), x_bg, mask, cond, T, torch.Generator().manual_seed(3))
    assert ra.nfe == rd.nfe == T
    torch.testing.assert_close(ra.z0, rd.z0, atol=2e-4, rtol=2e-4)
    # the same with a fine tail: S segments of one step + t_fine single steps is still DDPM
    aias2 = build_sampler("aias", SCHED, {"t_fine": 5, "farm": False, "clip_x0": False})
    z2 = aias2.sample(ToyModel(), x_bg, mask, cond, T - 5, torch.Generator().manual_seed(3)).z0
    torch.testing.assert_close(z2, zr, atol=1e-5, rtol=1e-5)


def test_aias_paper_coefficients_change_the_result_and_update_from_matters():
    x_bg, mask, cond = _inputs()
    run = lambda **o: build_sampler("aias", SCHED, {"farm": False, **o}).sample(
        ToyModel(), x_bg, mask, cond, 5, torch.Generator().manual_seed(0)).z0
    exact, paper = run(coefficients="exact"), run(coefficients="paper")
    assert (exact - paper).abs().max() > 1e-3
    outside = (mask == 0).expand_as(exact)
    for variant in (run(start="background"), run(coefficients="paper", start="background")):
        assert (variant - exact).abs().max() > 1e-3
        assert torch.equal(variant[outside], x_bg[outside])


def test_update_from_injected_uses_the_farm_input():
    torch.manual_seed(0)
    model = DiffusionModel(PixelBackbone(2, 8, 3, (8, 16), 1), SCHED, ["good", "a", "b"], "fast",
                           farm_widths=(8, 8, 16)).eval()
    x_bg, mask, cond = _inputs()
    run = lambda **o: build_sampler("aias", SCHED, o).sample(model, x_bg, mask, cond, 5,
                                                              torch.Generator().manual_seed(0)).z0
    with torch.no_grad():
        z, inj, nofarm = run(), run(update_from="injected"), run(farm=False)
    assert (z - inj).abs().max() > 1e-4 and (z - nofarm).abs().max() > 1e-4


@pytest.mark.parametrize("name,steps,nfe", [("aias", 10, 12), ("ddpm", T, T), ("ddim", 10, 10),
                                            ("plms", 10, 11), ("dpmpp", 10, 10)])
def test_nfe_and_background_outside_mask(name, steps, nfe):
    x_bg, mask, cond = _inputs()
    model = ToyModel()
    s = build_sampler(name, SCHED, {"eta": 1.0} if name == "ddim" else {})
    res = s.sample(model, x_bg, mask, cond, steps, torch.Generator().manual_seed(0))
    z = res.z0
    assert res.nfe == model.calls == s.nfe(steps) == s.plan(steps).nfe == len(s.plan(steps).timesteps) == nfe
    outside = (mask == 0).expand_as(z)
    assert torch.equal(z[outside], x_bg[outside])  # the last fusion pastes the clean background
    assert (z[~outside] - x_bg[~outside]).abs().max() > 1e-2
    res2 = s.sample(model, x_bg, mask, cond, steps, torch.Generator().manual_seed(0))
    assert torch.equal(z, res2.z0) and res2.nfe == nfe   # no state carried between calls


def test_fusion_puts_the_background_at_the_current_noise_level():
    from fast.samplers.base import fuse_background

    n = 20000
    x_bg = torch.full((n, 1, 2, 2), 0.8)
    mask = torch.zeros(n, 1, 2, 2)
    mask[:, :, 0, 0] = 1
    z = torch.full_like(x_bg, 5.0)
    t = 25
    out = fuse_background(z, x_bg, mask, t, SCHED, torch.Generator().manual_seed(0))
    abar = SCHED.abar(t)
    assert torch.equal(out[:, :, 0, 0], z[:, :, 0, 0])
    bg = out[:, :, 1, 1]
    assert bg.mean().item() == pytest.approx(abar ** 0.5 * 0.8, abs=0.03)
    assert bg.var().item() == pytest.approx(1 - abar, rel=0.05)
    assert torch.equal(fuse_background(z, x_bg, mask, -1, SCHED, torch.Generator())[:, :, 1, 1], x_bg[:, :, 1, 1])


def test_composite_is_bit_identical_outside_the_mask():
    rng = np.random.default_rng(0)
    bg = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    gen = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    m = np.zeros((16, 16), np.uint8)
    m[2:14, 3:13] = 1
    for feather in (0, 3):
        out = composite(gen, bg, m, feather)
        assert out.dtype == np.uint8 and np.array_equal(out[m == 0], bg[m == 0])
    assert np.array_equal(composite(gen, bg, m, 0)[m == 1], gen[m == 1])
    inner = composite(gen, bg, m, 3)
    assert np.array_equal(inner[6:10, 6:10], gen[6:10, 6:10])  # 3 px inside the edge: fully generated
    assert not np.array_equal(inner[m == 1], gen[m == 1])  # the rim is blended


def test_mask_resize_never_loses_a_small_defect():
    m = torch.zeros(2, 1, 64, 64)
    m[0, 0, 10, 10] = 1  # one pixel: area resize to 8x8 would vanish
    m[1, 0, 8:40, 8:40] = 1
    r = resize_mask(m, (8, 8))
    assert r[0].sum() == 1 and r[0, 0, 1, 1] == 1
    assert r[1].sum() == 16 and set(r.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(resize_mask(r, (16, 16)).sum((1, 2, 3)), r.sum((1, 2, 3)) * 4)


def test_synthesize_batch_with_a_real_tiny_model_is_deterministic():
    torch.manual_seed(0)
    bb = PixelBackbone(3, 16, 3, (8, 16), 1)
    model = DiffusionModel(bb, SCHED, ["good", "a", "b"], "fast", farm_widths=(8, 8, 16)).eval()
    rng = np.random.default_rng(0)
    bgs = rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    masks = np.zeros((2, 16, 16), np.uint8)
    masks[:, 3:9, 4:12] = 1
    cond = torch.tensor([1, 2])
    for name in SAMPLERS:
        s = build_sampler(name, SCHED, {})
        steps = T if name == "ddpm" else 5
        a = synthesize_batch(model, s, bgs, masks, cond, steps, torch.Generator().manual_seed(1))
        b = synthesize_batch(model, s, bgs, masks, cond, steps, torch.Generator().manual_seed(1))
        c = synthesize_batch(model, s, bgs, masks, cond, steps, torch.Generator().manual_seed(2))
        assert a.nfe == b.nfe == s.nfe(steps)
        for x, y, w, bg, m in zip(a.images, b.images, c.images, bgs, masks):
            assert x.shape == bg.shape and x.dtype == np.uint8
            assert np.array_equal(x, y) and not np.array_equal(x, w)
            assert np.array_equal(x[m == 0], bg[m == 0])


def test_too_many_steps_is_a_clear_error():
    from fast.errors import FastError

    x_bg, mask, cond = _inputs()
    with pytest.raises(FastError, match="aias.steps"):
        build_sampler("aias", SCHED, {}).sample(ToyModel(), x_bg, mask, cond, T, torch.Generator())
    with pytest.raises(FastError, match="ddim"):
        build_sampler("ddim", SCHED, {}).sample(ToyModel(), x_bg, mask, cond, T + 1, torch.Generator())


# -- independent references: AIAS (jumps, fine tail, FARM, options) and DDIM written out --------

class ToyFarmModel(ToyModel):
    """ToyModel with a stand-in FARM injection (non-linear) and the pixel backbone's x0 clip."""

    farm = True
    x0_clip = (-1.0, 1.0)

    def inject(self, z, mask, t, noise, abar):
        return (1 - mask) * z + mask * (abar ** 0.5 * torch.tanh(z) + (1 - abar) ** 0.5 * noise)


def _abar():
    """The schedule's own abar (checked against the formula in test_diffusion_schedule), so that
    the references below measure the samplers' math alone."""
    return SCHED.alphas_cumprod


def _reference_aias(model, x_bg, mask, cond, steps, g, t_fine=2, farm=True, clip=True, update_from="z",
                    start="noise"):
    """AIAS from docs/methods.md: S evenly spaced segments T-1 -> t_fine-1, each the closed-form jump
    posterior q(z_te | z_ts, x0_hat) (FARM-injected network input at t >= 0.1 T), then t_fine single
    DDPM steps (below 0.1 T here: without FARM); background fused at the landing level after every update (float64)."""
    abar = _abar()
    ab = lambda t: 1.0 if t < 0 else abar[t].item()
    rn = lambda: torch.randn(x_bg.shape, generator=g, dtype=x_bg.dtype)
    bounds = [int(v) for v in np.round(np.linspace(T - 1, t_fine - 1, steps + 1))]
    pairs = list(zip(bounds[:-1], bounds[1:])) + [(t, t - 1) for t in range(t_fine - 1, -1, -1)]
    z = rn()
    if start == "background":
        z = ab(T - 1) ** 0.5 * x_bg + (1 - ab(T - 1)) ** 0.5 * z
    for k, (ts, te) in enumerate(pairs):
        a_s, a_e = ab(ts), ab(te)
        zin = model.inject(z, mask, ts, rn(), a_s) if farm and ts >= 0.1 * T else z  # FARM at t >= 0.1 T
        x0 = (zin - (1 - a_s) ** 0.5 * model.eps(zin, torch.full((z.shape[0],), ts), cond)) / a_s ** 0.5
        if clip:
            x0 = x0.clamp(-1, 1)
        Pi = (a_s / a_e) ** 0.5 * (1 - a_e) / (1 - a_s)
        Sig = a_e ** 0.5 * (1 - a_s / a_e) / (1 - a_s)
        V = (1 - a_e) * (1 - a_s / a_e) / (1 - a_s)
        z = Pi * (zin if update_from == "injected" else z) + Sig * x0
        if V > 0:
            z = z + V ** 0.5 * rn()
        bg = x_bg if te < 0 else a_e ** 0.5 * x_bg + (1 - a_e) ** 0.5 * rn()
        z = mask * z + (1 - mask) * bg
    return z, len(pairs)


@pytest.mark.parametrize("options,steps", [({}, 10), ({"t_fine": 4, "update_from": "injected"}, 7),
                                           ({"farm": False, "clip_x0": False, "start": "background"}, 12),
                                           ({"t_fine": 0}, 5)])
def test_aias_matches_an_independent_reference(options, steps):
    x_bg, mask, cond = _inputs()
    x_bg, mask = x_bg.double(), mask.double()
    model = ToyFarmModel()
    res = build_sampler("aias", SCHED, options).sample(model, x_bg, mask, cond, steps,
                                                       torch.Generator().manual_seed(4))
    names = {"t_fine": "t_fine", "farm": "farm", "clip_x0": "clip", "update_from": "update_from", "start": "start"}
    ref, nfe = _reference_aias(ToyFarmModel(), x_bg, mask, cond, steps, torch.Generator().manual_seed(4),
                               **{names[k]: v for k, v in options.items()})
    torch.testing.assert_close(res.z0, ref, atol=1e-9, rtol=1e-9)
    assert res.nfe == nfe == model.calls == steps + options.get("t_fine", 2)


@pytest.mark.parametrize("steps", [10, 7])
def test_ddim_eta0_matches_an_independent_reference(steps):
    """DDIM (eta 0) written out: diffusers' "leading" timesteps t_i = i * (T // steps), each step
    z <- sqrt(a_prev) x0 + sqrt(1 - a_prev) eps (a_prev = 1 on the last step), then fusion."""
    x_bg, mask, cond = _inputs()
    x_bg, mask = x_bg.double(), mask.double()
    res = build_sampler("ddim", SCHED, {"farm": False, "clip_x0": False}).sample(
        ToyModel(), x_bg, mask, cond, steps, torch.Generator().manual_seed(2))
    abar, g, model = _abar(), torch.Generator().manual_seed(2), ToyModel()
    rn = lambda: torch.randn(x_bg.shape, generator=g, dtype=x_bg.dtype)
    ts = [i * (T // steps) for i in range(steps)][::-1]
    z = rn()
    for i, t in enumerate(ts):
        a = abar[t].item()
        t_prev = t - T // steps
        a_prev = abar[t_prev].item() if t_prev >= 0 else 1.0
        eps = model.eps(z, t, cond)
        x0 = (z - (1 - a) ** 0.5 * eps) / a ** 0.5
        z = a_prev ** 0.5 * x0 + (1 - a_prev) ** 0.5 * eps
        t_next = ts[i + 1] if i + 1 < len(ts) else -1
        bg = x_bg if t_next < 0 else abar[t_next].item() ** 0.5 * x_bg + (1 - abar[t_next].item()) ** 0.5 * rn()
        z = mask * z + (1 - mask) * bg
    # DDIM's x0 -> eps round trip and diffusers' float32 alphas_cumprod: a few float32 ulps
    torch.testing.assert_close(res.z0, z, atol=1e-5, rtol=1e-5)
    assert res.nfe == steps


# -- the plan, the options, the mask rule --------------------------------------------------------

def test_plans_are_computed_once_per_schedule_and_step_count():
    a, b = build_sampler("aias", SCHED, {}), build_sampler("aias", Schedule(T, "linear", 1e-4, 0.02), {})
    p = a.plan(10)
    assert p is a.plan(10) is b.plan(10)           # cached: coefficients computed once
    assert p.nfe == 12 and p.n_segments == 10 and p.timesteps[0] == T - 1 and p.segments[-1].t_end == -1
    assert build_sampler("aias", SCHED, {"coefficients": "paper"}).plan(10) is not p
    d = build_sampler("dpmpp", SCHED, {})
    assert d.plan(10) is d.plan(10) and d.plan(10).nfe == 10 and d.plan(10).targets[-1] == -1


def test_options_have_one_default_and_unknown_ones_are_errors():
    from fast.errors import FastError
    from fast.samplers import sampler_options

    fused = {"farm": True, "farm_stop": 0.1, "clip_x0": True, "start": "noise", "fusion": "every"}
    assert sampler_options("aias") == {**fused, "t_fine": 2, "coefficients": "exact", "update_from": "z"}
    assert sampler_options("ddim") == {**fused, "eta": 0.0}
    assert sampler_options("dpmpp") == fused
    s = build_sampler("aias", SCHED, {"t_fine": "3"})
    assert s.options.t_fine == 3 and s.nfe(5) == 8
    with pytest.raises(FastError, match=r"'ddpm' has no option 'eta'; its options: farm, farm_stop, clip_x0, start, fusion"):
        build_sampler("ddpm", SCHED, {"eta": 1.0})
    with pytest.raises(FastError, match="coefficients 'fancy'"):
        build_sampler("aias", SCHED, {"coefficients": "fancy"})
    with pytest.raises(FastError, match="unknown sampler"):
        build_sampler("euler", SCHED, {})


def test_method_options_are_checked_against_the_sampler():
    from fast.config import load_config
    from fast.errors import FastError
    from fast.methods import build_method

    cfg = load_config({"experiment": "t", "datasets": {"synthetic": {"categories": ["fabric"]}},
                       "methods": ["fast-ddim50"], "aias": {"start": "background", "clip_x0": False},
                       "method_options": {"fast-ddim50": {"eta": 0.5, "batch_size": 2}}})
    # the aias section sets the options the sampler shares (start, clip_x0), not AIAS's own
    assert build_method("fast-ddim50", cfg).sampling_plan() == (
        "ddim", 50, {"start": "background", "clip_x0": False, "farm_stop": 0.1, "fusion": "every", "eta": 0.5})
    cfg["method_options"] = {"fast-ddim50": {"t_fine": 3}}
    with pytest.raises(FastError, match=r"method_options.fast-ddim50.t_fine: sampler 'ddim' has no option"):
        build_method("fast-ddim50", cfg).sampling_plan()


def test_torch_and_numpy_mask_resize_agree_on_random_masks():
    """One rule in two array types (fast.data.prepare.resize_mask on numpy, this one on tensors)."""
    from fast.data.prepare import resize_mask as resize_mask_np

    rng = np.random.default_rng(0)
    for (H, W), (h, w) in [((64, 64), (8, 8)), ((48, 48), (8, 8)), ((10, 10), (4, 4)), ((17, 23), (5, 7)),
                           ((100, 60), (32, 32)), ((8, 8), (24, 24)), ((5, 7), (16, 16)), ((16, 9), (8, 20)),
                           ((16, 16), (16, 16))]:
        masks = []
        for k in range(40):
            if k % 2:
                m = (rng.random((H, W)) < rng.uniform(0.05, 0.9)).astype(np.uint8)
            else:  # a tiny defect, which the area resize alone would lose
                m = np.zeros((H, W), np.uint8)
                y, x = rng.integers(0, H), rng.integers(0, W)
                m[y:y + rng.integers(1, 4), x:x + rng.integers(1, 4)] = 1
            masks.append(m)
        got = resize_mask(torch.from_numpy(np.stack(masks)).float()[:, None], (h, w))[:, 0].numpy()
        want = np.stack([resize_mask_np(m, (h, w)) for m in masks])
        assert got.dtype == np.float32 and np.array_equal(got, want), ((H, W), (h, w))
