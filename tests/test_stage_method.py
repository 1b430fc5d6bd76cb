"""STAGE: loss and sampler against independent reference computations; the method end to end
(fit on the synthetic dataset lowers the loss, determinism, outside-mask bit-identical, NFE)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from generators import fit_generator

from fast.config import load_config
from fast.data.manifest import PreparedCategory
from fast.diffusion.schedule import Schedule
from fast.methods import SynthesisRequest, build_method
from fast.methods.stage import AD_AN, AD_IMG, StageSampler, stage_loss
from fast.methods.stage_schedule import uses_anomaly_branch

T = 100
SCHED = Schedule(T, "linear", 1e-4, 0.02)


def ref_abar(T=T, b0=1e-4, b1=0.02):
    return np.cumprod(1.0 - np.linspace(b0, b1, T, dtype=np.float64))


class Stub:
    """A deterministic, non-linear, spatially mixing eps model with two distinct 'adapters'."""

    schedule = SCHED
    x0_clip = None

    def __init__(self):
        self.extra_modules = {AD_IMG: lambda e, m: 1.1 * e + 0.2 * m, AD_AN: lambda e, m: 0.9 * e - 0.1 * m}
        self.calls = []

    def eps(self, z, t, cond, mask=None, bg=None):
        t = torch.as_tensor(t).float().view(-1, 1, 1, 1)
        self.calls.append(int(t.view(-1)[0]))
        # spatial mixing (3x3 box), so content outside the mask influences the masked region
        mix = torch.nn.functional.avg_pool2d(z, 3, stride=1, padding=1)
        return torch.tanh(0.5 * z + 0.5 * mix + t / T) + 0.05 * cond.view(-1, 1, 1, 1).float()

    def encode(self, x):
        return x


def _inputs(seed=0, b=2, c=2, s=8):
    g = torch.Generator().manual_seed(seed)
    x_bg = torch.randn(b, c, s, s, generator=g, dtype=torch.float64)
    mask = torch.zeros(b, 1, s, s, dtype=torch.float64)
    mask[:, :, 2:5, 3:7] = 1
    return x_bg, mask, torch.tensor([1, 2][:b])


def reference_stage(model, x_bg, mask, cond, steps, seed):
    """STAGE sampling written out from docs/methods.md with closed-form jump posteriors (float64)."""
    abar = ref_abar()
    ab = lambda t: 1.0 if t < 0 else float(abar[t])
    bounds = [int(v) for v in np.round(np.linspace(T - 1, -1, steps + 1))]
    g = torch.Generator().manual_seed(seed)
    rn = lambda: torch.randn(x_bg.shape, generator=g, dtype=torch.float64)
    z = rn()
    for ts, te in zip(bounds[:-1], bounds[1:]):
        a_s, a_e = ab(ts), ab(te)
        Pi = np.sqrt(a_s / a_e) * (1 - a_e) / (1 - a_s)
        Sig = np.sqrt(a_e) * (1 - a_s / a_e) / (1 - a_s)
        V = (1 - a_e) * (1 - a_s / a_e) / (1 - a_s)
        tt = torch.full((x_bg.shape[0],), ts)
        if 700 <= ts * 1000 / T <= 800 or 300 <= ts * 1000 / T <= 400:
            z_in = mask * z + (1 - mask) * np.sqrt(1 - a_s) * rn()
            e = model.extra_modules[AD_AN](model.eps(z_in, tt, cond, mask), mask)
            x0 = mask * (z_in - np.sqrt(1 - a_s) * e) / np.sqrt(a_s)
            z_new, keep = Pi * z_in + Sig * x0, mask
        else:
            e = model.extra_modules[AD_IMG](model.eps(z, tt, cond, mask), mask)
            x0 = (z - np.sqrt(1 - a_s) * e) / np.sqrt(a_s)
            a_t = min(max((ts * 1000 / T - 200) / 800, 0.0), 1.0)
            keep = mask + a_t * (1 - mask)
            x0 = keep * x0 + (1 - keep) * x_bg
            z_new = Pi * z + Sig * x0
        if V > 0:
            z_new = z_new + np.sqrt(V) * rn()
        bg = x_bg if te < 0 else np.sqrt(a_e) * x_bg + np.sqrt(1 - a_e) * rn()
        z = keep * z_new + (1 - keep) * bg
    return z


@pytest.mark.parametrize("steps", [20, 7])
def test_stage_sampler_matches_reference(steps):
    x_bg, mask, cond = _inputs()
    sampler = StageSampler(SCHED, clip_x0=False)
    res = sampler.sample(Stub(), x_bg, mask, cond, steps, torch.Generator().manual_seed(5))
    z = res.z0
    ref = reference_stage(Stub(), x_bg, mask, cond, steps, 5)
    torch.testing.assert_close(z, ref, atol=1e-6, rtol=1e-6)
    assert res.nfe == sampler.nfe(steps) == steps
    # the last step pastes the clean background outside M exactly
    assert torch.equal(z[(mask == 0).expand_as(z)], x_bg[(mask == 0).expand_as(x_bg)])


def test_graded_diffusion_uses_the_anomaly_branch_in_its_intervals():
    x_bg, mask, cond = _inputs()
    sampler = StageSampler(Schedule(1000, "linear", 1e-4, 0.02), clip_x0=False)
    stub = Stub()
    stub.schedule = sampler.schedule
    sampler.sample(stub, x_bg, mask, cond, 50, torch.Generator().manual_seed(0))
    plan = sampler.plan(50)
    starts = list(plan.timesteps)
    assert stub.calls == starts and len(starts) == 50
    expected = ["anomaly" if (700 <= t <= 800 or 300 <= t <= 400) else "image" for t in starts]
    assert list(plan.branches) == expected
    assert expected.count("anomaly") == 10  # five strided steps in each interval at 50 steps


def test_stage_loss_matches_reference():
    torch.manual_seed(0)
    from fast.diffusion.farm import Adaptor

    class M(Stub):
        def __init__(self):
            super().__init__()
            self.extra_modules = {AD_IMG: Adaptor(2, 4), AD_AN: Adaptor(2, 4)}
            for ad in self.extra_modules.values():
                torch.nn.init.normal_(ad.net[-1].weight, std=0.2)

    model = M()
    model.schedule = Schedule(1000, "linear", 1e-4, 0.02)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 2, 8, 8, generator=g) * 2 - 1
    mask = torch.zeros(3, 1, 8, 8)
    mask[0, :, 1:4, 1:4] = 1
    mask[1, :, 4:8, 2:6] = 1
    batch = {"x": x, "mask": mask, "cond": torch.tensor([1, 2, 0])}
    out = stage_loss(model, batch, torch.Generator().manual_seed(7))
    # reference: replay the step's draws (t, eps, eps') and evaluate the two terms by hand
    g = torch.Generator().manual_seed(7)
    t = torch.randint(0, 1000, (3,), generator=g)
    eps = torch.randn(x.shape, generator=g)
    eps2 = torch.randn(x.shape, generator=g)
    abar = torch.tensor(ref_abar(1000)[t.numpy()], dtype=torch.float32).view(-1, 1, 1, 1)
    a_t = ((t.double() - 200) / 800).clamp(0, 1).float().view(-1, 1, 1, 1)
    m_t = mask + a_t * (1 - mask)
    z_t = abar.sqrt() * x + (1 - abar).sqrt() * eps
    e1 = model.extra_modules[AD_IMG](model.eps(z_t, t, batch["cond"]), mask)

    def weighted(d):  # mean squared error inside M + 0.1 x outside (every eps loss is mask-weighted)
        m = mask.expand_as(d)
        return (d ** 2 * m).sum() / m.sum() + 0.1 * (d ** 2 * (1 - m)).sum() / (1 - m).sum()

    l1 = weighted(m_t * (eps - e1))
    an = abar.sqrt() * mask * x + (1 - abar).sqrt() * eps2
    l2 = weighted(eps2 - model.extra_modules[AD_AN](model.eps(an, t, batch["cond"]), mask))
    torch.testing.assert_close(out["loss_img"], l1, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out["loss_an"], l2, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out["loss"], l1 + l2, atol=1e-5, rtol=1e-5)


# -- the method end to end on the synthetic dataset (tiny UNet, 32 px) --------------------------

def tiny_cfg(name: str, train_steps: int, sample_steps: int = 8, **extra) -> dict:
    return load_config({
        "experiment": "t", "datasets": {"synthetic": {"categories": ["fabric"]}}, "methods": [name],
        "resolution": 32, "device": "cpu", "seed": 0,
        "diffusion": {"unet": {"block_out_channels": [16, 32], "layers_per_block": 1},
                      "train": {"steps": train_steps, "finetune_steps": train_steps, "batch_size": 4, "lr": 1e-3,
                                "checkpoint_every": 1000}},
        "method_options": {name: {"steps": sample_steps, **extra}},
    })


def requests_for(ds: PreparedCategory, n: int = 3) -> list[SynthesisRequest]:
    normals, anomalous = ds.rows("normal_train"), ds.rows("gen_train")
    return [SynthesisRequest(ds.load_image(normals.iloc[i]), ds.load_mask(anomalous.iloc[i % len(anomalous)]),
                             anomalous.iloc[i % len(anomalous)]["anomaly_type"], normals.iloc[i]["image"], "test")
            for i in range(n)]


def first_last_mean(log: pd.DataFrame, column: str, k: int = 6) -> tuple[float, float]:
    return float(log[column].head(k).mean()), float(log[column].tail(k).mean())


@pytest.fixture(scope="module")
def trained_stage(synthetic_prepared, tmp_path_factory):
    ds = PreparedCategory.load(synthetic_prepared / "synthetic" / "fabric")
    out = tmp_path_factory.mktemp("stage_gen")
    method = fit_generator("stage", tiny_cfg("stage", 40), ds, out)
    return ds, out


def test_stage_training_lowers_the_loss(trained_stage):
    ds, out = trained_stage
    log = pd.read_csv(out / "train_log.csv")
    assert list(log["step"]) == list(range(1, 41))
    assert {"loss", "loss_img", "loss_an"} <= set(log.columns)
    first, last = first_last_mean(log, "loss")
    assert last < first, (first, last)          # the adapters alone learn (0.96 -> 0.92 measured)
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    # the authors freeze the diffusion model: the UNet is the base model's, bit for bit
    from safetensors.torch import load_file

    stage, base = load_file(str(out / "model.safetensors")), load_file(str(out.with_name(out.name + "-base") /
                                                                               "model.safetensors"))
    unet = [k for k in base if k.startswith("backbone.")]
    assert unet and all(torch.equal(stage[k], base[k]) for k in unet)
    assert any(k.startswith("extra_modules.") for k in stage)


def test_stage_synthesis_is_deterministic_exact_and_outside_mask_identical(trained_stage):
    ds, out = trained_stage
    method = build_method("stage", tiny_cfg("stage", 40))
    method.load(out)
    reqs = requests_for(ds)
    a, b = list(method.synthesize(reqs, seed=3)), list(method.synthesize(reqs, seed=3))
    c = list(method.synthesize(reqs, seed=4))
    assert len(a) == len(reqs)
    for (img, m, meta), (img2, m2, _), (img3, _, _), r in zip(a, b, c, reqs):
        assert img.dtype == np.uint8 and img.shape == r.background.shape
        assert np.array_equal(img, img2) and np.array_equal(m, m2)
        assert np.array_equal(m, (r.mask > 0).astype(np.uint8))
        out_of_mask = m == 0
        assert np.array_equal(img[out_of_mask], r.background[out_of_mask])
        assert not np.array_equal(img[m > 0], r.background[m > 0])   # something was synthesised
        assert meta["nfe"] == 8 and meta["sampler"] == "stage"
    assert any(not np.array_equal(x[0], y[0]) for x, y in zip(a, c))  # another seed, another image
