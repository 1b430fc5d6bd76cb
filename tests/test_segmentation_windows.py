"""Segmenter training windows (segmentation.patch) and whole-image inference."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fast.cli import main
from fast.segmentation.data import MixedBatches, Pool
from fast.segmentation.evaluate import predict
from fast.segmentation.models import build_segmenter
from test_segmentation_train import make_prepared, make_synthetic

SIZE, PATCH = 96, 32


def _anomalous_pool(n=5, size=SIZE, seed=0) -> Pool:
    """Textured images with one or two 3x3 defects each; the images carry a texture so that a
    window position is recognisable."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, size, size), np.float32)
    for m in masks:
        for _ in range(int(rng.integers(1, 3))):
            y, x = rng.integers(0, size - 3, 2)
            m[y:y + 3, x:x + 3] = 1
    return Pool(rng.random((n, 1, size, size)).astype(np.float32), masks)


def _normal_pool(n=6, size=SIZE, seed=1) -> Pool:
    rng = np.random.default_rng(seed)
    return Pool(rng.random((n, 1, size, size)).astype(np.float32), np.zeros((n, size, size), np.float32))


def _contains(big: np.ndarray, window: np.ndarray) -> bool:
    """Whether ``window`` (p, p) is one of the 8 dihedral transforms of a sub-block of ``big``."""
    p = window.shape[0]
    variants = [np.rot90(t, k) for t in (window, window[:, ::-1]) for k in range(4)]
    for y in range(big.shape[0] - p + 1):
        for x in range(big.shape[1] - p + 1):
            block = big[y:y + p, x:x + p]
            if any(np.array_equal(block, v) for v in variants):
                return True
    return False


def test_anomalous_windows_hold_a_defect_and_normal_windows_are_empty():
    batches = MixedBatches(_anomalous_pool(), _normal_pool(), 8, seed=0, patch=PATCH)
    for _ in range(6):
        x, y = batches.next()
        assert x.shape == (8, 1, PATCH, PATCH) and y.shape == (8, 1, PATCH, PATCH)
        assert (y[:4].flatten(1).sum(1) > 0).all()  # every anomalous window shows a defect
        assert y[4:].sum() == 0  # normal windows keep their empty masks


def test_normal_windows_are_random_crops_of_their_images():
    normal = _normal_pool(n=2)
    batches = MixedBatches(Pool(normal.images[:0], normal.masks[:0]), normal, 4, seed=3, patch=PATCH)
    corners = set()
    for _ in range(3):
        x, _ = batches.next()
        for w in x[:, 0].numpy():
            assert any(_contains(img[0], w) for img in normal.images)  # an uncut sub-block
            corners.add(w.tobytes())
    assert len(corners) > 6  # positions vary from sample to sample


def _border_share(rule: str, draws: int = 60) -> float:
    """Share of normal training windows that contain the image's first column (left border),
    found by matching each (augmented) window against the image's dihedral sub-blocks."""
    normal = _normal_pool(n=1)
    img = normal.images[0, 0]
    batches = MixedBatches(Pool(normal.images[:0], normal.masks[:0]), normal, 4, seed=1, patch=PATCH,
                           normal_windows=rule)
    hits = total = 0
    for _ in range(draws // 4):
        x, _ = batches.next()
        for w in x[:, 0].numpy():
            variants = [np.rot90(t, k) for t in (w, w[:, ::-1]) for k in range(4)]
            x0 = next(x0 for y0 in range(SIZE - PATCH + 1) for x0 in range(SIZE - PATCH + 1)
                      if any(np.array_equal(img[y0:y0 + PATCH, x0:x0 + PATCH], v) for v in variants))
            hits += x0 == 0
            total += 1
    return hits / total


def test_covering_normal_windows_show_the_image_border_uniform_ones_rarely_do():
    """The segmenter judges whole images, borders included; `covering` windows contain the left
    border with probability PATCH/(SIZE+PATCH-1) = 25 %, `uniform` ones with 1/(SIZE-PATCH+1) = 1.5 %."""
    covering, uniform = _border_share("covering"), _border_share("uniform")
    assert covering > 0.12 and uniform < 0.07


def test_an_unknown_normal_window_rule_is_refused():
    from fast.errors import FastError

    with pytest.raises(FastError, match="normal_windows.*covering, uniform"):
        MixedBatches(_anomalous_pool(), _normal_pool(), 4, seed=0, patch=PATCH, normal_windows="grid")


def test_image_and_mask_stay_aligned_through_window_and_augmentation():
    anom = _anomalous_pool(n=6)
    anom.images[:, 0] = anom.masks  # image == mask: any misalignment breaks the equality
    batches = MixedBatches(anom, _normal_pool(), 8, seed=5, patch=PATCH)
    for _ in range(5):
        x, y = batches.next()
        assert torch.equal(x[:4], y[:4])


def test_a_defect_larger_than_the_window_is_resized_down_whole():
    mask = np.zeros((1, SIZE, SIZE), np.float32)
    mask[0, 10:60, 20:70] = 1  # 50 x 50 > PATCH
    anom = Pool(mask[:, None].copy(), mask)
    x, y = MixedBatches(anom, _normal_pool(), 2, seed=0, patch=PATCH).next()
    assert y.shape[-2:] == (PATCH, PATCH)
    m = y[0, 0].numpy()
    assert m.any() and not m.all()  # the whole defect with background margin around it
    rows, cols = np.nonzero(m.any(axis=1))[0], np.nonzero(m.any(axis=0))[0]
    assert rows.min() > 0 and cols.min() > 0 and rows.max() < PATCH - 1 and cols.max() < PATCH - 1


def test_windows_are_seeded():
    def draws(seed):
        b = MixedBatches(_anomalous_pool(), _normal_pool(), 6, seed=seed, patch=PATCH)
        return [b.next() for _ in range(3)]

    a, b, c = draws(2), draws(2), draws(3)
    assert all(torch.equal(p[0], q[0]) and torch.equal(p[1], q[1]) for p, q in zip(a, b))
    assert not all(torch.equal(p[0], q[0]) for p, q in zip(a, c))


@pytest.mark.parametrize("patch", [None, SIZE, 2 * SIZE])
def test_no_patch_or_a_patch_covering_the_image_keeps_whole_image_batches(patch):
    anom, normal = _anomalous_pool(), _normal_pool()
    whole = MixedBatches(anom, normal, 6, seed=4)  # today's call, no patch argument
    other = MixedBatches(anom, normal, 6, seed=4, patch=patch)
    for _ in range(3):
        (xa, ya), (xb, yb) = whole.next(), other.next()
        assert xa.shape == (6, 1, SIZE, SIZE)
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_predict_returns_whole_image_maps_for_odd_sizes():
    model = build_segmenter("unet", 1, None, seed=0).eval()
    images = np.random.default_rng(0).random((3, 1, 72, 100)).astype(np.float32)  # not multiples of 32
    probs = predict(model, images, torch.device("cpu"), batch_size=2)
    assert probs.shape == (3, 72, 100)
    assert np.isfinite(probs).all() and ((probs >= 0) & (probs <= 1)).all()


def _config(patch):
    return json.dumps({"experiment": "t", "datasets": {"synthetic": {"categories": ["tile"]}},
                       "methods": ["fast"], "resolution": 64, "device": "cpu",
                       "segmentation": {"steps": 2, "batch_size": 4, "patch": patch, "encoder_weights": None}})


def test_train_on_windows_records_them_and_evaluates_whole_images(tmp_path):
    make_prepared(tmp_path / "prep", size=64)
    syn = make_synthetic(tmp_path / "syn", size=64)
    out = tmp_path / "m"
    common = ["--dataset", "toy", "--category", "tile", "--prepared", str(tmp_path / "prep")]
    assert main(["train-segmenter", "--config", _config(32), *common, "--method", "fast",
                 "--synthetic", str(syn), "--segmenter", "unet", "--seed", "0", "--out", str(out)]) == 0
    tc = json.loads((out / "train_config.json").read_text())
    assert (tc["patch"], tc["train_window"], tc["resolution"]) == (32, 32, 64)
    assert "defect component" in tc["window_sampling"] and "overlapping the image" in tc["window_sampling"]
    assert tc["normal_windows"] == "covering"                   # the schema default
    assert 0 < tc["recalibration_seconds"] < tc["wall_seconds"]  # the whole-image BatchNorm pass, timed
    assert main(["evaluate", "--config", _config(32), *common, "--model", str(out), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["resolution"] == 64 and metrics["n_images"] == 7


def test_train_without_patch_records_whole_images(tmp_path):
    make_prepared(tmp_path / "prep", size=64)
    out = tmp_path / "m"
    assert main(["train-segmenter", "--config", _config(None), "--dataset", "toy", "--category", "tile",
                 "--prepared", str(tmp_path / "prep"), "--method", "real-fewshot", "--segmenter", "unet",
                 "--seed", "0", "--out", str(out)]) == 0
    tc = json.loads((out / "train_config.json").read_text())
    assert (tc["patch"], tc["train_window"]) == (None, 64) and tc["window_sampling"].startswith("whole")
    assert tc["recalibration_seconds"] < 0.01                  # no windows: no recalibration


def test_batchnorm_statistics_are_re_estimated_on_whole_images():
    """After window training the BatchNorm running statistics are the plain averages over the
    whole training images (what inference sees), not the windows' moving averages."""
    import torch

    from fast.segmentation.train import recalibrate_batchnorm

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(1, 3, 3, padding=1)
    model = torch.nn.Sequential(conv, torch.nn.BatchNorm2d(3))
    model[1].running_mean.fill_(5.0)                          # stale window statistics
    a = np.random.default_rng(0).random((4, 1, 16, 16)).astype(np.float32)
    b = np.random.default_rng(1).random((4, 1, 16, 16)).astype(np.float32) + 2
    recalibrate_batchnorm(model, [a, b], torch.device("cpu"), batch_size=4)
    with torch.no_grad():
        feats = [conv(torch.from_numpy(x)) for x in (a, b)]
    means = torch.stack([f.mean(dim=(0, 2, 3)) for f in feats]).mean(0)
    unbiased = torch.stack([f.transpose(0, 1).reshape(3, -1).var(dim=1, unbiased=True) for f in feats]).mean(0)
    torch.testing.assert_close(model[1].running_mean, means, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model[1].running_var, unbiased, atol=1e-5, rtol=1e-5)
    assert not model.training and model[1].momentum == 0.1
