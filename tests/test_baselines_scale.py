"""The hand-crafted baselines behave the same at every image size (docs/methods.md, "Hand-crafted
baselines"): DRAEM's Perlin scale range, NSA's seamless blend and aspect-kept resize, the
CutPaste scar's footprint. Each test failed (or, for the scar, is a guard) on the code before the
fix; the numbers in the comments were measured."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fast.config import load_config
from fast.methods import build_method
from fast.methods.base import SynthesisRequest
from fast.methods.cutpaste import cutpaste_scar
from fast.methods.nsa import nsa


def _method(name):
    cfg = load_config({"experiment": "t", "datasets": {"synthetic": {"categories": ["a"]}}, "methods": [name]})
    return build_method(name, cfg)


def _flat_requests(size, n):
    bg = np.full((size, size, 3), 128, np.uint8)
    return [SynthesisRequest(bg, np.zeros((size, size), np.uint8), "t", "n.png", "own", {}) for _ in range(n)]


def _component_areas(masks) -> np.ndarray:
    areas = []
    for m in masks:
        _, _, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
        areas.extend(stats[1:, cv2.CC_STAT_AREA])
    return np.asarray(areas)


def _draem_speckle_share(size, n):
    masks = [m for _, m, _ in _method("draem").synthesize(_flat_requests(size, n), seed=0)]
    areas = _component_areas(masks)
    return float((areas <= 2).mean()), float(np.mean([m.mean() for m in masks]))


def test_draem_masks_have_no_speckles_at_small_sizes():
    """DRAEM at 256 px: the finest Perlin cell is 8 px and ~7 % of mask components are <= 2 px.
    A fixed scale range made 57 % of them <= 2 px speckles at 64 px (69 % at 32 px); scaled with
    the image, the share is the same at every size. The covered fraction stays comparable."""
    share256, cover256 = _draem_speckle_share(256, 24)
    share64, cover64 = _draem_speckle_share(64, 60)
    share32, cover32 = _draem_speckle_share(32, 60)
    assert share256 < 0.15
    assert abs(share64 - share256) < 0.1 and abs(share32 - share256) < 0.1, (share32, share64, share256)
    assert 0.5 < cover64 / cover256 < 2.0 and 0.5 < cover32 / cover256 < 2.0


def _smooth_field(size, rng, amplitude=70.0, period=96.0):
    """A smooth grey pattern (sum of 3 plane waves): Poisson blending keeps its gentle gradients,
    so any step in the output is a seam, not content."""
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    f = sum(np.sin((np.cos(a) * xx + np.sin(a) * yy) * 2 * np.pi / period + p)
            for a, p in rng.uniform(0, 2 * np.pi, (3, 2)))
    return np.repeat(np.clip(128 + amplitude / 3 * f, 0, 255)[..., None], 3, axis=2).astype(np.uint8)


def _gradient(image):
    gy, gx = np.gradient(image.astype(np.float64).mean(axis=2))
    return np.hypot(gx, gy)


def test_nsa_leaves_no_seam_on_the_label_boundary():
    """A flat normal image, a smooth source: the blended region's gradient is ~0.5-1 grey level
    per px; resetting unlabelled pixels to the normal image put a ~3.7 step on the label's outer
    ring (measured 3.1-3.9 vs 0.5-1.0 inside). Without a seam the ring is as smooth as the inside."""
    size = 128
    bg = np.full((size, size, 3), 100, np.uint8)
    src = _smooth_field(size, np.random.default_rng(0))
    kernel = np.ones((3, 3), np.uint8)
    ring_means, inner_means = [], []
    for s in range(6):
        out, mask, _ = nsa(bg, [src], np.random.default_rng(s))
        inner = cv2.erode(mask, kernel)
        if not inner.any():
            continue
        g = _gradient(out)
        ring_means.append(g[(cv2.dilate(mask, kernel) - mask) == 1].mean())
        inner_means.append(g[inner == 1].mean())
    assert len(ring_means) >= 4
    assert np.median(ring_means) <= 1.5 * np.median(inner_means) + 0.5, (ring_means, inner_means)


def test_nsa_resize_keeps_the_aspect_ratio(monkeypatch):
    """NSA resizes each patch by one factor clip(N(1, 0.5), 0.7, 1.3) for both axes. Every resize
    of a source patch is recorded: its output aspect ratio equals the input's up to rounding (the
    per-axis factors changed it by up to 1.3 / 0.7 = 1.86x)."""
    import fast.methods.nsa as nsa_module

    calls = []
    real_resize = cv2.resize

    def spy(img, dsize, *args, **kwargs):
        calls.append((img.shape[:2], (dsize[1], dsize[0])))
        return real_resize(img, dsize, *args, **kwargs)

    monkeypatch.setattr(nsa_module.cv2, "resize", spy)
    rng = np.random.default_rng(0)
    size = 128
    bg = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    src = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    for s in range(10):
        nsa(bg, [src], np.random.default_rng(s))
    assert len(calls) >= 10
    for (ih, iw), (oh, ow) in calls:
        # Rounding each side to whole pixels moves the ratio by at most half a pixel per side.
        assert abs(np.log((oh / ow) / (ih / iw))) <= np.log((1 + 0.5 / min(oh, ow)) / (1 - 0.5 / min(oh, ow))) + 1e-9


def _scar_median_relative_area(size, n=150):
    img = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return float(np.median([cutpaste_scar(img, np.random.default_rng(s))[1].mean() for s in range(n)]))


def test_cutpaste_scar_footprint_is_relative_to_the_image():
    """Width 2-16 px and length 10-25 px are given at 256 px and scale with the image: the median
    footprint is ~0.25 % of the image at every size (measured 0.29 / 0.27 / 0.25 % at
    32 / 64 / 256 px; a fixed-pixel scar would be 16x larger relative to a 64 px image)."""
    ref = _scar_median_relative_area(256)
    assert 0.0015 < ref < 0.004
    for size in (32, 64):
        assert abs(np.log(_scar_median_relative_area(size) / ref)) < np.log(1.25), size


@pytest.mark.parametrize("size", [64, 256])
def test_cutpaste_scar_method_uses_the_scaled_strip(size):
    reqs = [SynthesisRequest(np.random.default_rng(i).integers(0, 256, (size, size, 3), dtype=np.uint8),
                             np.zeros((size, size), np.uint8), "t", "n.png", "own", {}) for i in range(20)]
    areas = [m.mean() for _, m, _ in _method("cutpaste-scar").synthesize(reqs, seed=0)]
    assert 0.0015 < np.median(areas) < 0.004
