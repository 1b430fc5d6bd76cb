"""CutPaste (Li et al., CVPR 2021): `cutpaste` (rectangle) and `cutpaste-scar` (thin rotated strip).

Training-free. A patch is cut from the same normal image, colour-jittered and pasted at a random
location; the mask is the pasted footprint (the method's own, not the shared pool). Parameters
follow the paper's code: area 2-15 % of the image, aspect ratio log-uniform in [0.3, 1/0.3];
scar width 2-16 px and length 10-25 px at 256 px (scaled with the image), rotation U[-45, 45].
"""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import cv2
import numpy as np

from fast.methods.base import NUMBER, SynthesisMethod, SynthesisRequest, Synthesized


def color_jitter(patch: np.ndarray, rng: np.random.Generator, strength: float = 0.1) -> np.ndarray:
    """torchvision-style ColorJitter(b, c, s, h = strength) on a uint8 (h, w, C) patch, in numpy.
    Saturation and hue apply to RGB only. Fixed order (brightness, contrast, saturation, hue)."""
    x = patch.astype(np.float32) / 255.0
    rgb = x.shape[2] == 3

    def gray(a):
        return (a @ np.array([0.299, 0.587, 0.114], np.float32))[..., None] if rgb else a

    x = np.clip(x * rng.uniform(1 - strength, 1 + strength), 0, 1)
    x = np.clip((x - gray(x).mean()) * rng.uniform(1 - strength, 1 + strength) + gray(x).mean(), 0, 1)
    if rgb:
        x = np.clip(gray(x) + (x - gray(x)) * rng.uniform(1 - strength, 1 + strength), 0, 1)
        hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV)  # float input: H in [0, 360)
        hsv[..., 0] = (hsv[..., 0] + 360.0 * rng.uniform(-strength, strength)) % 360.0
        x = np.clip(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), 0, 1)
    return np.round(x * 255.0).astype(np.uint8).reshape(patch.shape)


def cutpaste_rect(image: np.ndarray, rng: np.random.Generator, *, area=(0.02, 0.15), aspect=0.3,
                  jitter: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    h, w = image.shape[:2]
    a = rng.uniform(*area) * h * w
    r = math.exp(rng.uniform(math.log(aspect), math.log(1 / aspect)))
    cw = int(np.clip(round(math.sqrt(a * r)), 1, w))
    ch = int(np.clip(round(math.sqrt(a / r)), 1, h))
    fy, fx = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    ty, tx = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    patch = color_jitter(image[fy:fy + ch, fx:fx + cw], rng, jitter)
    out = image.copy()
    out[ty:ty + ch, tx:tx + cw] = patch
    mask = np.zeros((h, w), np.uint8)
    mask[ty:ty + ch, tx:tx + cw] = 1
    return out, mask


def cutpaste_scar(image: np.ndarray, rng: np.random.Generator, *, width=(2, 16), length=(10, 25),
                  rotation=(-45, 45), reference_size: int = 256, jitter: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    h, w = image.shape[:2]
    s = min(h, w) / reference_size
    sw = max(1, int(round(rng.uniform(width[0] * s, width[1] * s))))
    sl = max(2, int(round(rng.uniform(length[0] * s, length[1] * s))))
    sw, sl = min(sw, w), min(sl, h)
    fy, fx = int(rng.integers(0, h - sl + 1)), int(rng.integers(0, w - sw + 1))
    patch = color_jitter(image[fy:fy + sl, fx:fx + sw], rng, jitter)
    # Rotate the strip on a canvas large enough to hold it (PIL's rotate(expand=True)).
    angle = float(rng.uniform(*rotation))
    m = cv2.getRotationMatrix2D((sw / 2, sl / 2), angle, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(math.ceil(sl * sin + sw * cos)), int(math.ceil(sl * cos + sw * sin))
    nw, nh = min(nw, w), min(nh, h)
    m[0, 2] += nw / 2 - sw / 2
    m[1, 2] += nh / 2 - sl / 2
    rot = cv2.warpAffine(patch, m, (nw, nh), flags=cv2.INTER_LINEAR).reshape(nh, nw, -1)
    alpha = cv2.warpAffine(np.ones((sl, sw), np.uint8), m, (nw, nh), flags=cv2.INTER_NEAREST) > 0
    if not alpha.any():  # degenerate 1-px strip: keep its centre pixel
        alpha[nh // 2, nw // 2] = True
        rot[nh // 2, nw // 2] = patch[sl // 2, sw // 2]
    ty, tx = int(rng.integers(0, h - nh + 1)), int(rng.integers(0, w - nw + 1))
    out = image.copy()
    region = out[ty:ty + nh, tx:tx + nw]
    region[alpha] = rot[alpha]
    mask = np.zeros((h, w), np.uint8)
    mask[ty:ty + nh, tx:tx + nw] = alpha
    return out, mask


class CutPaste(SynthesisMethod):
    name = "cutpaste"
    uses_pool_masks = False
    OPTIONS = {"jitter": NUMBER}

    def synthesize(self, requests: Sequence[SynthesisRequest], seed: int) -> Iterator[Synthesized]:
        jitter = float(self.options.get("jitter", 0.1))
        for i, req in enumerate(requests):
            rng = np.random.default_rng([seed, i])
            if self.name == "cutpaste-scar":
                out, mask = cutpaste_scar(req.background, rng, jitter=jitter)
            else:
                out, mask = cutpaste_rect(req.background, rng, jitter=jitter)
            yield out, mask, {"nfe": 0, "mask_source": self.name}


class CutPasteScar(CutPaste):
    name = "cutpaste-scar"


def build(cfg: dict, name: str) -> SynthesisMethod:
    return (CutPasteScar if name == "cutpaste-scar" else CutPaste)(cfg, name)
