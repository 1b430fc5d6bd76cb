"""Generators that can learn defects: windows at native resolution, mask-aware inputs, the
mask-weighted loss and FAST's training regime without the shortcut (docs/methods.md, FAST)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from generators import fit_generator
from safetensors.torch import load_file

from fast.config import load_config
from fast.data.manifest import PreparedCategory, manifest_path
from fast.data.windows import covering_window, crop, crop_mask, defect_window, mask_window, paste, random_window
from fast.diffusion.backbones import PixelBackbone
from fast.diffusion.losses import eps_loss, fast_loss, masked_mse
from fast.diffusion.model import DiffusionModel
from fast.diffusion.schedule import Schedule
from fast.diffusion.train import TrainData
from fast.methods import SynthesisRequest, build_method

CFG = {
    "experiment": "t", "datasets": {"synthetic": {"categories": ["fabric"]}}, "methods": ["fast"],
    "resolution": 32, "device": "cpu",
    "diffusion": {"num_train_timesteps": 50, "patch": 16, "unet": {"block_out_channels": [8, 16]},
                  "farm": {"widths": [8, 8, 16]},
                  "train": {"steps": 2, "finetune_steps": 2, "batch_size": 4, "checkpoint_every": 10}},
    "aias": {"steps": 3, "t_fine": 1},
}


# -- windows ----------------------------------------------------------------------------------

def _disk(size=128, centre=(90, 30), r=4):
    yy, xx = np.mgrid[:size, :size]
    return (((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) <= r * r).astype(np.uint8)


def test_crop_paste_round_trip_is_exact_when_the_window_is_a_patch():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    mask = _disk()
    win = mask_window(mask, 32)
    assert win.side == 32
    assert np.array_equal(paste(crop(img, win, 32), win, img), img)
    # the window holds the whole defect, centred
    assert crop_mask(mask, win, 32).sum() == mask.sum()
    assert abs((win.y0 + 16) - 90) <= 1 and abs((win.x0 + 16) - 30) <= 1


def test_a_defect_larger_than_the_window_gets_a_larger_window_resized():
    mask = np.zeros((128, 128), np.uint8)
    mask[10:70, 20:60] = 1                           # 60 px tall
    win = mask_window(mask, 32)
    assert win.side == 75                            # 1.25 x the larger side
    m = crop_mask(mask, win, 32)
    assert m.shape == (32, 32) and 0.3 < m.mean() < 0.7
    img = np.full((128, 128, 1), 40, np.uint8)
    out = paste(np.full((32, 32, 1), 200, np.uint8), win, img)
    assert (out[mask == 1] == 200).all() and (out[:, 100:] == 40).all()


def test_training_windows_put_the_defect_in_view():
    rng = np.random.default_rng(1)
    mask = _disk(r=3)                                # 0.2 % of the image
    shares = []
    for _ in range(50):
        win = defect_window(mask, 32, rng)
        m = crop_mask(mask, win, 32)
        assert m.sum() == mask.sum()                 # jitter never cuts the component
        shares.append(m.mean())
    assert min(shares) > 10 * mask.mean()
    starts = {(w.y0, w.x0) for w in (defect_window(mask, 32, rng) for _ in range(20))}
    assert len(starts) > 5                           # seeded jitter, not one fixed window
    w = random_window((128, 128), 32, rng)
    assert w.side == 32 and 0 <= w.y0 <= 96


@pytest.mark.parametrize("size,side", [(192, 64), (96, 32), (40, 40), (50, 17)])
def test_covering_window_coverage_matches_its_exact_distribution(size, side):
    """Per-pixel coverage of covering_window along one axis, sampled, against the exact one
    enumerated over every unclamped start 1-side..size-1; the border is covered at least
    side/(size+side-1), and at most about twice that anywhere."""
    starts = np.clip(np.arange(1 - side, size), 0, size - side)
    exact = np.zeros(size)
    for s in starts:
        exact[s:s + side] += 1 / len(starts)
    rng = np.random.default_rng(0)
    n = 20000
    drawn = np.zeros(size)
    for _ in range(n):
        w = covering_window((size, size), side, rng)
        assert w.side == side and 0 <= w.x0 <= size - side and 0 <= w.y0 <= size - side
        drawn[w.x0:w.x0 + side] += 1 / n
    assert np.abs(drawn - exact).max() < 4 * np.sqrt(0.25 / n)   # 4 sigma of a binomial share
    floor = side / (size + side - 1)
    assert exact.min() >= floor - 1e-12 and exact.max() <= 2 * floor + 1e-12
    assert exact[0] == pytest.approx(floor if side < size else 1.0)   # a window as large as the image covers it


def test_train_data_cuts_defect_windows_and_normal_windows(synthetic_prepared):
    prepared = PreparedCategory.load(manifest_path(synthetic_prepared, "synthetic", "fabric"))
    whole = TrainData.from_prepared(prepared, 32, anomalous_fraction=1.0)
    data = TrainData.from_prepared(prepared, 32, anomalous_fraction=1.0, patch=16)
    batch = data.sample(np.random.default_rng(0), 16)
    assert batch["x"].shape[-2:] == (16, 16) and batch["mask"].shape == (16, 1, 16, 16)
    assert (batch["mask"].flatten(1).amax(1) > 0).all()
    share_window = float(batch["mask"].mean())
    share_whole = float(whole.sample(np.random.default_rng(0), 16)["mask"].mean())
    assert share_window > 1.5 * share_whole
    normal = TrainData.from_prepared(prepared, 32, anomalous_fraction=0.0, patch=16).sample(
        np.random.default_rng(0), 8)
    assert float(normal["mask"].sum()) == 0 and (normal["cond"] == 0).all()


# -- the mask-aware backbone and the loss -------------------------------------------------------

def test_mask_and_background_channels_reach_the_unet():
    torch.manual_seed(0)
    bb = PixelBackbone(channels=1, resolution=16, num_classes=2, block_out_channels=(8, 16), mask_channels=True)
    assert bb.unet.config.in_channels == 3
    z = torch.randn(1, 1, 16, 16)
    t, c = torch.tensor([10]), torch.tensor([1])
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 4:8, 4:8] = 1
    bg = torch.randn(1, 1, 16, 16)
    e = bb.eps(z, t, c, mask, bg)
    assert not torch.allclose(e, bb.eps(z, t, c, torch.zeros_like(mask), bg))   # the mask matters
    other = bg.clone()
    other[..., 12:, 12:] += 1.0                                                # outside M
    assert not torch.allclose(e, bb.eps(z, t, c, mask, other))                 # the background matters
    inside = bg.clone()
    inside[..., 4:8, 4:8] += 5.0                                               # under M: masked out
    torch.testing.assert_close(e, bb.eps(z, t, c, mask, inside))
    with pytest.raises(ValueError, match="mask-aware"):
        bb.eps(z, t, c)


def test_masked_mse_against_a_hand_computation():
    pred = torch.zeros(2, 2, 4, 4)
    target = torch.zeros(2, 2, 4, 4)
    mask = torch.zeros(2, 1, 4, 4)
    mask[0, :, :2, :2] = 1                        # 4 px x 2 channels inside
    target[0, :, :2, :2] = 3.0                    # error 9 inside
    target[1] = 1.0                               # error 1 on the second sample, all outside
    loss, mean_in, mean_out = masked_mse(pred, target, mask, outside_weight=0.25)
    n_out = 2 * 16 * 2 - 8
    assert float(mean_in) == pytest.approx(9.0)
    assert float(mean_out) == pytest.approx(32 / n_out)
    assert float(loss) == pytest.approx(9.0 + 0.25 * 32 / n_out)
    # with no mask pixels the inside term is 0, not NaN
    _, none_in, _ = masked_mse(pred, target, torch.zeros_like(mask), 0.1)
    assert float(none_in) == 0.0


# -- FAST without the shortcut ------------------------------------------------------------------

class _Zero(torch.nn.Module):
    def forward(self, z, mask, t):
        return torch.zeros_like(z)


def _toy_model(mask_channels=False) -> DiffusionModel:
    bb = PixelBackbone(channels=1, resolution=8, num_classes=2, block_out_channels=(4, 4),
                       mask_channels=mask_channels)
    return DiffusionModel(bb, Schedule(100, "linear", 1e-4, 0.02), ["good", "x"], "fast", farm_widths=[4, 4, 4])


def _defect_batch():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(8, 1, 8, 8, generator=g) * 2 - 1
    mask = torch.zeros(8, 1, 8, 8)
    mask[:, :, 2:6, 2:6] = 1
    x = torch.where(mask > 0, torch.full_like(x, 0.8), x)    # a bright defect inside M
    return {"x": x, "mask": mask, "cond": torch.ones(8, dtype=torch.long)}


def _defect_ignorant(model: DiffusionModel) -> None:
    """FARM -> 0 and an epsilon model that reads eps from its input: knows nothing of defects."""
    model.farm = _Zero()

    def eps(z, t, cond, mask=None, bg=None):
        abar = model.schedule.abar_tensor(t).view(-1, 1, 1, 1).to(z.dtype)
        return z / (1 - abar).sqrt()

    model.backbone.eps = eps


def _oracle(model: DiffusionModel, x0: torch.Tensor) -> None:
    def eps(z, t, cond, mask=None, bg=None):
        abar = model.schedule.abar_tensor(t).view(-1, 1, 1, 1).to(z.dtype)
        return (z - abar.sqrt() * x0) / (1 - abar).sqrt()

    model.backbone.eps = eps


def test_the_defect_ignorant_solution_does_not_reach_the_minimum_of_what_trains_the_unet():
    """Algorithm 1 with a trainable UNet has a defect-ignorant minimum inside M; the objective that
    trains the pixel UNet here (the base model's eps loss on raw z_t) does not."""
    batch = _defect_batch()
    cheat = _toy_model()
    _defect_ignorant(cheat)
    shortcut = fast_loss(cheat, batch, torch.Generator().manual_seed(0))
    assert float(shortcut["loss_eps_in"]) < 1e-10          # the shortcut: zero loss, no defect knowledge
    ignorant = eps_loss(cheat, batch, torch.Generator().manual_seed(0))
    oracle = _toy_model()
    _oracle(oracle, batch["x"])
    informed = eps_loss(oracle, batch, torch.Generator().manual_seed(0))
    assert float(informed["loss_eps_in"]) < 1e-8
    assert float(ignorant["loss_eps_in"]) > 0.05            # bounded away from the minimum


def test_fast_trains_farm_only_on_the_frozen_base_unet(synthetic_prepared, tmp_path):
    cfg = load_config(json.loads(json.dumps(CFG)))
    prepared = PreparedCategory.load(manifest_path(synthetic_prepared, "synthetic", "fabric"))
    method = build_method("fast", cfg)
    model = method.build_model(["good", "hole"], 3)
    trainable = {id(p) for p in method.trainable_parameters(model)}
    assert not any(id(p) in trainable for p in model.backbone.parameters())
    assert all(id(p) in trainable for p in model.farm.parameters())
    fit_generator("fast", cfg, prepared, tmp_path / "fast")
    base = load_file(str(tmp_path / "fast-base" / "model.safetensors"))
    fast = load_file(str(tmp_path / "fast" / "model.safetensors"))
    unet = [k for k in base if k.startswith("backbone.unet.")]
    assert unet and all(torch.equal(base[k], fast[k]) for k in unet)
    assert any(k.startswith("farm.") for k in fast)
    spec = json.loads((tmp_path / "fast" / "config.json").read_text())
    assert spec["started_from"]["frozen_backbone"] and spec["patch"] == 16
    assert spec["backbone"]["mask_channels"] and spec["backbone"]["resolution"] == 16
    # the UNet updates follow each method's authors: STAGE freezes it (adapters only), SARD fine-tunes it
    for name, updates_unet in (("stage", False), ("sard", True)):
        m = build_method(name, cfg)
        mm = m.build_model(["good", "hole"], 3)
        trainable = {id(q) for q in m.trainable_parameters(mm)}
        assert any(id(p) in trainable for p in mm.backbone.parameters()) is updates_unet, name
        assert trainable, name


def test_windowed_synthesis_keeps_every_pixel_outside_the_mask(synthetic_prepared, tmp_path):
    cfg = load_config(json.loads(json.dumps(CFG)))
    prepared = PreparedCategory.load(manifest_path(synthetic_prepared, "synthetic", "fabric"))
    fit_generator("fast", cfg, prepared, tmp_path / "fast")
    bg_row = prepared.rows("normal_train").iloc[0]
    background = prepared.load_image(bg_row)
    small = np.zeros(background.shape[:2], np.uint8)
    small[20:24, 5:9] = 1
    large = np.zeros_like(small)
    large[2:30, 3:29] = 1                                    # larger than the 16 px window
    reqs = [SynthesisRequest(background, m, "hole", bg_row["image"], "t") for m in (small, large)]
    for name in ("fast", "fast-nofarm", "anomalydiffusion"):
        m = build_method(name, cfg)
        m.load(tmp_path / ("fast-base" if name == "anomalydiffusion" else "fast"))
        for (img, mask, meta), r in zip(m.synthesize(reqs, seed=0), reqs):
            assert np.array_equal(img[r.mask == 0], background[r.mask == 0]), name
            assert not np.array_equal(img[r.mask == 1], background[r.mask == 1]), name
            assert np.array_equal(mask, r.mask)
