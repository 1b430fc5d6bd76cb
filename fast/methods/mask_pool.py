"""Masks for synthesis (docs/methods.md, "Masks for synthesis"): Perlin masks and the shared mask pool.

The pool holds, per anomaly type, the real masks of the ``gen_train`` split. A draw picks one
entry, optionally flips / rotates it by a multiple of 90 degrees and translates it so that it lies
inside the object region of the background it will be painted on; with ``perlin`` enabled a
fraction of the draws are Perlin masks instead (clipped to the object region).

Object region: a cheap estimate. The background colour is the median of the image border; a pixel
is "object" when it differs from that colour more than almost all border pixels do (their 99th
percentile, at least 12 grey levels). Specks are removed and small gaps closed (real holes, like
a washer's, stay background). The whole image is the region instead when the object does not
stand out clearly (median difference under twice the threshold: a texture under uneven light) or
covers less than 5 % or more than 95 % of the image (textures, tiles, objects filling the frame). This is right for objects photographed on a plain background (MVTec
objects, VisA) and harmlessly "whole image" for textures.

Every draw uses only the numpy Generator passed in: deterministic per seed.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage

from fast.data.manifest import PreparedCategory
from fast.data.prepare import resize_mask  # noqa: F401 (the one numpy mask resize; re-exported)

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- Perlin noise

def _fade(t: np.ndarray) -> np.ndarray:
    return t * t * t * (t * (t * 6 - 15) + 10)


def perlin_noise_from_angles(shape: tuple[int, int], angles: np.ndarray) -> np.ndarray:
    """2-D gradient (Perlin) noise of ``shape`` with gradient directions ``angles`` on a lattice
    of ``angles.shape = (ry + 1, rx + 1)`` nodes (``ry x rx`` cells over the image), scaled by
    sqrt(2) as in DRAEM's ``rand_perlin_2d_np``. Any shape works (no divisibility needed)."""
    h, w = shape
    ry, rx = angles.shape[0] - 1, angles.shape[1] - 1
    grads = np.stack([np.cos(angles), np.sin(angles)], axis=-1)  # (ry+1, rx+1, 2): (dy, dx)
    y = np.arange(h) * (ry / h)
    x = np.arange(w) * (rx / w)
    cy, cx = np.floor(y).astype(int), np.floor(x).astype(int)
    fy, fx = (y - cy)[:, None], (x - cx)[None, :]

    def corner(dy: int, dx: int) -> np.ndarray:
        g = grads[(cy + dy)[:, None], (cx + dx)[None, :]]
        return g[..., 0] * (fy - dy) + g[..., 1] * (fx - dx)

    ty, tx = _fade(fy), _fade(fx)
    top = corner(0, 0) + tx * (corner(0, 1) - corner(0, 0))
    bottom = corner(1, 0) + tx * (corner(1, 1) - corner(1, 0))
    return math.sqrt(2) * (top + ty * (bottom - top))


def perlin_noise(shape: tuple[int, int], res: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    angles = 2 * math.pi * rng.random((res[0] + 1, res[1] + 1))
    return perlin_noise_from_angles(shape, angles)


def rotate(array: np.ndarray, degrees: float, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Rotate about the centre, same size, zeros outside (imgaug's Affine default)."""
    h, w = array.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2 - 0.5, h / 2 - 0.5), degrees, 1.0)
    out = cv2.warpAffine(array, m, (w, h), flags=interpolation, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out.reshape(array.shape)


def perlin_mask(shape: tuple[int, int], rng: np.random.Generator, *, max_log2_scale: int = 5,
                threshold: float = 0.5, max_tries: int = 100) -> tuple[np.ndarray, str]:
    """DRAEM's mask: Perlin noise with scale 2^U{0..5} per axis, rotated U[-90, 90] degrees,
    thresholded at 0.5; redrawn while empty. Returns (uint8 {0,1} mask, description)."""
    for _ in range(max_tries):
        sy, sx = (2 ** int(rng.integers(0, max_log2_scale + 1)) for _ in range(2))
        angle = float(rng.uniform(-90, 90))
        noise = rotate(perlin_noise(shape, (sy, sx), rng).astype(np.float32), angle)
        mask = (noise > threshold).astype(np.uint8)
        if mask.any():
            return mask, f"perlin(scale={sy}x{sx},rot={angle:.1f})"
    # Practically unreachable (each try succeeds with high probability); keep the output valid.
    mask = np.zeros(shape, np.uint8)
    mask[shape[0] // 4: 3 * shape[0] // 4, shape[1] // 4: 3 * shape[1] // 4] = 1
    return mask, "perlin(fallback-square)"


# ----------------------------------------------------------------------------- object region

def object_region(image: np.ndarray, *, min_fraction: float = 0.05, max_fraction: float = 0.95) -> np.ndarray:
    """Boolean (H, W) estimate of the object (foreground) of a normal image; see module doc."""
    img = image.astype(np.float32)
    if img.ndim == 2:
        img = img[..., None]
    h, w = img.shape[:2]
    b = max(1, min(h, w) // 32)
    border = np.concatenate([img[:b].reshape(-1, img.shape[2]), img[-b:].reshape(-1, img.shape[2]),
                             img[:, :b].reshape(-1, img.shape[2]), img[:, -b:].reshape(-1, img.shape[2])])
    background = np.median(border, axis=0)
    dist = np.abs(img - background).max(axis=2)
    bdist = np.abs(border - background).max(axis=1)
    threshold = max(float(np.percentile(bdist, 99)), 12.0)
    region = dist > threshold
    # A real object stands out clearly; a texture under uneven light only just crosses the bar.
    if not region.any() or np.median(dist[region]) < 2.0 * threshold:
        return np.ones((h, w), bool)
    region = ndimage.binary_opening(region, iterations=b)
    region = ndimage.binary_closing(region, iterations=b)  # small gaps, not real holes
    frac = region.mean()
    if frac < min_fraction or frac > max_fraction:
        return np.ones((h, w), bool)
    return region


# ----------------------------------------------------------------------------- the pool

def _flip_rotate(mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    ops = []
    if rng.random() < 0.5:
        mask = mask[:, ::-1]
        ops.append("hflip")
    if rng.random() < 0.5:
        mask = mask[::-1, :]
        ops.append("vflip")
    # Quarter turns would change the shape of a non-square image; only half turns there.
    k = int(rng.integers(0, 4)) if mask.shape[0] == mask.shape[1] else 2 * int(rng.integers(0, 2))
    if k:
        mask = np.rot90(mask, k)
        ops.append(f"rot{90 * k}")
    return np.ascontiguousarray(mask), ",".join(ops)


def translate_into(mask: np.ndarray, region: np.ndarray, rng: np.random.Generator,
                   *, tries: int = 20, min_coverage: float = 0.9) -> tuple[np.ndarray, tuple[int, int]]:
    """Move the mask's bounding box so that its centre lands on a random region pixel; keep the
    first placement with >= 90 % of the mask inside the region, else the best of ``tries``."""
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    crop = mask[y0:y1, x0:x1]
    ch, cw = crop.shape
    ry, rx = np.nonzero(region)
    best, best_cov = (y0, x0), -1.0
    for _ in range(tries):
        i = int(rng.integers(0, len(ry)))
        ty = int(np.clip(ry[i] - ch // 2, 0, h - ch))
        tx = int(np.clip(rx[i] - cw // 2, 0, w - cw))
        cov = float((crop & region[ty:ty + ch, tx:tx + cw]).sum()) / float(crop.sum())
        if cov > best_cov:
            best, best_cov = (ty, tx), cov
        if cov >= min_coverage:
            break
    out = np.zeros_like(mask)
    out[best[0]:best[0] + ch, best[1]:best[1] + cw] = crop
    return out, (int(best[0] - y0), int(best[1] - x0))


@dataclass
class MaskPool:
    """Real gen_train masks per anomaly type (+ optional Perlin masks); see module doc."""

    masks: dict[str, list[tuple[str, np.ndarray]]]
    augment: bool = True
    perlin: bool = False
    perlin_fraction: float = 0.5

    @classmethod
    def from_prepared(cls, prepared: PreparedCategory, pool_cfg: dict) -> "MaskPool":
        masks: dict[str, list[tuple[str, np.ndarray]]] = {}
        for t in prepared.anomaly_types:
            entries = []
            for _, row in prepared.rows("gen_train", anomaly_type=t).iterrows():
                m = prepared.load_mask(row)
                if m.any():
                    entries.append((row["mask"], m))
            if not entries:
                log.warning("%s: no non-empty gen_train mask for anomaly type %r; its pool draws are "
                            "Perlin masks", prepared.manifest, t)
            masks[t] = entries
        return cls(masks, bool(pool_cfg.get("augment", True)), bool(pool_cfg.get("perlin", False)),
                   float(pool_cfg.get("perlin_fraction", 0.5)))

    def draw(self, anomaly_type: str, background: np.ndarray,
             rng: np.random.Generator) -> tuple[np.ndarray, str]:
        """One uint8 {0,1} mask of the background's size and a description of where it came from.
        A type without any real mask (should not happen with docs/protocol.md splits) gets Perlin."""
        shape = background.shape[:2]
        entries = self.masks.get(anomaly_type, [])
        use_perlin = not entries or (self.perlin and rng.random() < self.perlin_fraction)
        region = object_region(background) if (self.augment or use_perlin) else None
        if use_perlin:
            for _ in range(20):
                mask, desc = perlin_mask(shape, rng)
                clipped = mask & region
                if clipped.any():
                    return clipped.astype(np.uint8), desc
            return mask, desc
        source, mask = entries[int(rng.integers(0, len(entries)))]
        mask = resize_mask(mask, shape)
        if not self.augment:
            return mask, source
        mask, ops = _flip_rotate(mask, rng)
        mask, (dy, dx) = translate_into(mask, region, rng)
        return mask, f"{source}|{ops}|shift={dy},{dx}" if ops else f"{source}|shift={dy},{dx}"
