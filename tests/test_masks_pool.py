"""Perlin noise / masks, object-region estimate and the shared mask pool (fast.methods.mask_pool)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fast.data.manifest import PreparedCategory
from fast.methods.mask_pool import (MaskPool, object_region, perlin_mask, perlin_noise,
                                perlin_noise_from_angles, resize_mask, translate_into)


def draem_reference_perlin(shape, angles):
    """DRAEM's rand_perlin_2d_np (github.com/VitjanZ/DRAEM, perlin.py), with the random gradient
    angles passed in instead of drawn from the global numpy RNG. Needs shape % res == 0."""
    res = (angles.shape[0] - 1, angles.shape[1] - 1)

    def lerp(x, y, w):
        return (y - x) * w + x

    def fade(t):
        return 6 * t ** 5 - 15 * t ** 4 + 10 * t ** 3

    delta = (res[0] / shape[0], res[1] / shape[1])
    d = (shape[0] // res[0], shape[1] // res[1])
    grid = np.mgrid[0:res[0]:delta[0], 0:res[1]:delta[1]].transpose(1, 2, 0) % 1
    gradients = np.stack((np.cos(angles), np.sin(angles)), axis=-1)

    def tile_grads(s1, s2):
        return np.repeat(np.repeat(gradients[s1[0]:s1[1], s2[0]:s2[1]], d[0], axis=0), d[1], axis=1)

    def dot(grad, shift):
        return (np.stack((grid[:shape[0], :shape[1], 0] + shift[0], grid[:shape[0], :shape[1], 1] + shift[1]),
                         axis=-1) * grad[:shape[0], :shape[1]]).sum(axis=-1)

    n00 = dot(tile_grads([0, -1], [0, -1]), [0, 0])
    n10 = dot(tile_grads([1, None], [0, -1]), [-1, 0])
    n01 = dot(tile_grads([0, -1], [1, None]), [0, -1])
    n11 = dot(tile_grads([1, None], [1, None]), [-1, -1])
    t = fade(grid[:shape[0], :shape[1]])
    return math.sqrt(2) * lerp(lerp(n00, n10, t[..., 0]), lerp(n01, n11, t[..., 0]), t[..., 1])


@pytest.mark.parametrize("shape,res", [((64, 64), (1, 1)), ((64, 64), (4, 8)), ((32, 64), (32, 2)),
                                       ((256, 128), (16, 32))])
def test_perlin_matches_draem_reference(shape, res):
    angles = 2 * math.pi * np.random.default_rng(7).random((res[0] + 1, res[1] + 1))
    ours = perlin_noise_from_angles(shape, angles)
    np.testing.assert_allclose(ours, draem_reference_perlin(shape, angles), atol=1e-12)


def test_perlin_is_zero_on_lattice_and_bounded_for_any_shape():
    rng = np.random.default_rng(0)
    noise = perlin_noise((50, 70), (5, 7), rng)  # 10 x 10 px cells
    assert noise.shape == (50, 70)
    np.testing.assert_allclose(noise[::10, ::10], 0.0, atol=1e-12)
    assert np.abs(noise).max() <= math.sqrt(2) + 1e-9
    assert noise.std() > 0.05


def test_perlin_mask_deterministic_nonempty_binary():
    a, da = perlin_mask((48, 40), np.random.default_rng(3))
    b, db = perlin_mask((48, 40), np.random.default_rng(3))
    c, _ = perlin_mask((48, 40), np.random.default_rng(4))
    assert a.dtype == np.uint8 and a.shape == (48, 40) and set(np.unique(a)) <= {0, 1}
    assert a.any() and np.array_equal(a, b) and da == db and da.startswith("perlin(")
    assert not np.array_equal(a, c)
    # Every draw is non-empty and well below the whole image on average (threshold 0.5).
    areas = [perlin_mask((64, 64), np.random.default_rng(s))[0].mean() for s in range(40)]
    assert min(areas) > 0 and 0.01 < np.mean(areas) < 0.5


def _disk_image(h=64, w=64, channels=3, radius=18, bg=20, fg=200, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    disk = (yy - h / 2) ** 2 + (xx - w / 2) ** 2 < radius ** 2
    img = np.where(disk[..., None], fg, bg) + rng.normal(0, 3, (h, w, channels))
    return np.clip(img, 0, 255).astype(np.uint8), disk


@pytest.mark.parametrize("channels", [1, 3])
def test_object_region_finds_object_on_plain_background(channels):
    img, disk = _disk_image(channels=channels)
    region = object_region(img)
    iou = (region & disk).sum() / (region | disk).sum()
    assert iou > 0.9


def test_object_region_keeps_real_holes_out():
    img, disk = _disk_image(radius=24)
    yy, xx = np.mgrid[:64, :64]
    hole = (yy - 32) ** 2 + (xx - 32) ** 2 < 8 ** 2
    img[hole] = img[0, 0]
    region = object_region(img)
    assert region[hole].mean() < 0.05
    assert region[disk & ~hole].mean() > 0.95


def test_object_region_is_whole_image_for_textures():
    rng = np.random.default_rng(1)
    texture = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert object_region(texture).all()
    # A texture under uneven light (bright band in the middle) is not an object.
    band = 60.0 * np.exp(-((np.arange(64) - 32) / 12.0) ** 2)[None, :, None]
    lit = np.clip(100 + band + rng.normal(0, 15, (64, 64, 1)), 0, 255).astype(np.uint8)
    assert object_region(lit).all()
    flat = np.full((32, 32, 1), 90, np.uint8)
    assert object_region(flat).all()


def test_resize_mask_keeps_tiny_defect():
    m = np.zeros((256, 256), np.uint8)
    m[100:102, 50:52] = 1  # 4 px: would vanish under area resize + 0.5 threshold at 32 px
    small = resize_mask(m, (32, 32))
    assert small.any() and small.sum() <= 2
    big = np.zeros((256, 256), np.uint8)
    big[64:192, 0:128] = 1
    assert resize_mask(big, (32, 32)).sum() == 16 * 16


def test_translate_into_keeps_shape_and_lands_in_region():
    mask = np.zeros((64, 64), np.uint8)
    mask[2:8, 2:12] = 1
    mask[4, 12] = 1
    region = np.zeros((64, 64), bool)
    region[30:60, 30:60] = True
    out, (dy, dx) = translate_into(mask, region, np.random.default_rng(0))
    assert out.sum() == mask.sum()
    assert np.array_equal(np.roll(np.roll(mask, dy, 0), dx, 1), out)  # a pure translation
    assert (out.astype(bool) & region).sum() / out.sum() >= 0.9


def _pool_of(masks, **kw):
    return MaskPool({"scratch": [(f"masks/m{i}.png", m) for i, m in enumerate(masks)]}, **kw)


def test_pool_draw_deterministic_and_preserves_mask_area():
    base = np.zeros((64, 64), np.uint8)
    base[10:20, 5:30] = 1
    base[20:25, 5:8] = 1
    pool = _pool_of([base])
    img, disk = _disk_image()
    draws = [pool.draw("scratch", img, np.random.default_rng(s)) for s in range(12)]
    again = [pool.draw("scratch", img, np.random.default_rng(s)) for s in range(12)]
    for (m, src), (m2, src2) in zip(draws, again):
        assert np.array_equal(m, m2) and src == src2
        assert m.dtype == np.uint8 and m.shape == (64, 64)
        assert m.sum() == base.sum()  # flips, quarter turns and shifts keep every pixel
        assert src.startswith("masks/m0.png|")
        assert (m.astype(bool) & disk).sum() / m.sum() >= 0.9  # placed on the object
    assert len({m.tobytes() for m, _ in draws}) > 6  # augmentation actually varies the mask


def test_pool_without_augment_returns_the_real_mask_resized():
    base = np.zeros((128, 128), np.uint8)
    base[0:32, 0:64] = 1
    pool = _pool_of([base], augment=False)
    m, src = pool.draw("scratch", np.zeros((64, 64, 1), np.uint8), np.random.default_rng(0))
    expected = np.zeros((64, 64), np.uint8)
    expected[0:16, 0:32] = 1
    assert np.array_equal(m, expected) and src == "masks/m0.png"


def test_pool_perlin_share_and_fallback_for_types_without_masks():
    base = np.zeros((32, 32), np.uint8)
    base[4:9, 4:9] = 1
    pool = _pool_of([base], perlin=True, perlin_fraction=0.5)
    img = np.full((32, 32, 3), 128, np.uint8)
    sources = [pool.draw("scratch", img, np.random.default_rng(s))[1] for s in range(200)]
    share = np.mean([s.startswith("perlin") for s in sources])
    assert 0.38 < share < 0.62
    m, src = pool.draw("unknown-type", img, np.random.default_rng(0))
    assert src.startswith("perlin") and m.any()


def test_pool_from_prepared_uses_only_gen_train_masks(synthetic_prepared):
    prepared = PreparedCategory.load(synthetic_prepared / "synthetic" / "washer" / "manifest.csv")
    pool = MaskPool.from_prepared(prepared, {"augment": True, "perlin": False})
    gen = prepared.rows("gen_train")
    assert set(pool.masks) == set(prepared.anomaly_types)
    for t, entries in pool.masks.items():
        assert entries, t
        allowed = set(gen.loc[gen["anomaly_type"] == t, "mask"])
        assert {src for src, _ in entries} <= allowed


def test_pool_masks_share_no_content_with_seg_test(synthetic_prepared):
    prepared = PreparedCategory.load(synthetic_prepared / "synthetic" / "fabric" / "manifest.csv")
    pool = MaskPool.from_prepared(prepared, {})
    test_masks = {prepared.load_mask(r).tobytes() for _, r in prepared.rows("seg_test").iterrows()}
    pool_masks = {m.tobytes() for entries in pool.masks.values() for _, m in entries}
    assert pool_masks and not (pool_masks & test_masks)


@settings(max_examples=40, deadline=None)
@given(size=st.integers(16, 48), seed=st.integers(0, 2 ** 16), box=st.tuples(*[st.integers(0, 15)] * 4))
def test_pool_draw_is_a_rigid_motion_of_the_real_mask(size, seed, box):
    """Property: with augmentation, a draw is the real mask flipped / turned / shifted: same pixel
    count, and its cropped bounding-box content equals one of the 8 dihedral images of the
    original's crop."""
    rng = np.random.default_rng(seed)
    y0, x0, hh, ww = box
    base = np.zeros((size, size), np.uint8)
    base[y0 % (size - 4): y0 % (size - 4) + 1 + hh % 8, x0 % (size - 4): x0 % (size - 4) + 1 + ww % 8] = 1
    base &= (rng.random((size, size)) > 0.3).astype(np.uint8)
    base[y0 % (size - 4), x0 % (size - 4)] = 1
    pool = _pool_of([base])
    img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    mask, _ = pool.draw("scratch", img, rng)

    def crop(m):
        ys, xs = np.nonzero(m)
        return m[ys.min():ys.max() + 1, xs.min():xs.max() + 1]

    c = crop(base)
    variants = [np.rot90(v, k) for v in (c, c[:, ::-1]) for k in range(4)]
    assert mask.sum() == base.sum()
    assert any(v.shape == crop(mask).shape and np.array_equal(v, crop(mask)) for v in variants)
