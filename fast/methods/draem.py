"""DRAEM's anomaly simulation (Zavrtanik et al., ICCV 2021) as a synthesis method: `draem`.

Training-free. Mask M: Perlin noise (scale 2^U{0..5} per axis at 256 px, rotated U[-90, 90],
threshold 0.5, redrawn if empty; fast.methods.mask_pool.perlin_mask). The top of the scale range moves
with the image size (2^U{0..3} at 64 px, 2^U{0..6} at 512 px), so that the finest Perlin cell stays
about 8 px as in DRAEM at 256 px: a fixed range gives 1-2 px speckles at 32-64 px. Anomaly source
A: a texture image resized to the image and passed through 3 of DRAEM's 10 augmentations (chosen
without replacement). Output out = x (1 - M) + (1 - beta) A M + beta x M, beta ~ U[0, 0.8).

Texture source (``method_options.draem.texture_source``): a folder of images (e.g. DTD's
``images/``) when given and present; else ``skimage`` (textures and photos shipped with
scikit-image, offline); ``self`` uses the category's other normal images.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from fast.errors import FastError
from fast.methods.base import TEXT_OR_NULL, SynthesisMethod, SynthesisRequest, Synthesized
from fast.methods.mask_pool import perlin_mask, rotate

log = logging.getLogger(__name__)

# DRAEM's Perlin scale range 2^U{0..5} is defined at this image size.
REFERENCE_SIZE = 256
REFERENCE_MAX_LOG2_SCALE = 5

# Shipped inside the scikit-image wheel (no download): three textures and three photographs.
SKIMAGE_TEXTURES = ("brick", "grass", "gravel", "coffee", "hubble_deep_field", "retina")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}


def to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """uint8 (H, W[, C]) -> uint8 (H, W, channels)."""
    if image.ndim == 2:
        image = image[..., None]
    image = image[..., :3]
    if image.shape[2] == channels:
        return image
    if channels == 1:
        return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)[..., None]
    return np.repeat(image[..., :1], 3, axis=2)


def _pil(x: np.ndarray) -> Image.Image:
    return Image.fromarray(x[..., 0] if x.shape[2] == 1 else x)


def _np(img: Image.Image, shape) -> np.ndarray:
    return np.asarray(img, np.uint8).reshape(shape)


def _hue_saturation(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if x.shape[2] != 3:  # no hue or saturation in a grey image
        return x
    hsv = cv2.cvtColor(np.ascontiguousarray(x), cv2.COLOR_RGB2HSV).astype(np.int32)
    dh, ds = rng.integers(-50, 51, size=2)
    hsv[..., 0] = (hsv[..., 0] + int(dh) * 180 // 256) % 180  # imgaug's hue range is 0..255
    hsv[..., 1] = np.clip(hsv[..., 1] + int(ds), 0, 255)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)


def _solarize(x, rng):
    if rng.random() >= 0.5:  # iaa.Solarize(p=0.5, ...)
        return x
    return _np(ImageOps.solarize(_pil(x), int(rng.integers(32, 129))), x.shape)


# DRAEM's augmenter list (imgaug), in numpy / PIL / OpenCV; each takes (uint8 (H, W, C), rng).
AUGMENTATIONS = {
    "gamma": lambda x, rng: np.round(255.0 * (x / 255.0) ** rng.uniform(0.5, 2.0, size=x.shape[2])).astype(np.uint8),
    "brightness": lambda x, rng: np.clip(x * rng.uniform(0.8, 1.2) + rng.uniform(-30, 30), 0, 255).astype(np.uint8),
    "sharpness": lambda x, rng: _np(ImageEnhance.Sharpness(_pil(x)).enhance(rng.uniform(0.0, 2.0)), x.shape),
    "hue_saturation": _hue_saturation,
    "solarize": _solarize,
    "posterize": lambda x, rng: _np(ImageOps.posterize(_pil(x), int(rng.integers(1, 9))), x.shape),
    "invert": lambda x, rng: 255 - x,
    "autocontrast": lambda x, rng: _np(ImageOps.autocontrast(_pil(x)), x.shape),
    "equalize": lambda x, rng: _np(ImageOps.equalize(_pil(x)), x.shape),
    "rotate": lambda x, rng: rotate(x, float(rng.uniform(-45, 45))),
}


def augment(texture: np.ndarray, rng: np.random.Generator, n: int = 3) -> tuple[np.ndarray, list[str]]:
    names = list(AUGMENTATIONS)
    chosen = [names[i] for i in rng.choice(len(names), size=n, replace=False)]
    for name in chosen:
        texture = AUGMENTATIONS[name](texture, rng)
    return texture, chosen


def max_log2_scale(shape: tuple[int, int]) -> int:
    """Top of the Perlin scale range for an image of ``shape``: 5 at 256 px, one less per halving
    (rounded, at least 0: a single Perlin cell), so that the finest cell keeps its size in pixels."""
    size = min(shape)
    return max(0, int(round(REFERENCE_MAX_LOG2_SCALE + math.log2(size / REFERENCE_SIZE))))


def draem_blend(image: np.ndarray, texture: np.ndarray, mask: np.ndarray, beta: float) -> np.ndarray:
    """out = x (1 - M) + (1 - beta) A M + beta x M, exactly x outside M."""
    x = image.astype(np.float32)
    blended = np.round((1.0 - beta) * texture.astype(np.float32) + beta * x).astype(np.uint8)
    return np.where(mask[..., None].astype(bool), blended, image)


class Draem(SynthesisMethod):
    name = "draem"
    uses_pool_masks = False

    OPTIONS = {"texture_source": TEXT_OR_NULL}

    def __init__(self, cfg: dict, name: str | None = None):
        super().__init__(cfg, name)
        self.source = self.options.get("texture_source", "skimage") or "skimage"
        self._files: list[Path] | None = None
        self._skimage: list[np.ndarray] | None = None

    def _resolve_source(self) -> str:
        if self.source not in ("skimage", "self"):
            folder = Path(self.source)
            files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
            if files:
                self._files = files
                return "folder"
            log.warning("draem: texture folder %s missing or empty; using scikit-image textures", folder)
        if self.source == "self":
            return "self"
        if self._skimage is None:
            import skimage.data

            self._skimage = [np.asarray(getattr(skimage.data, n)()) for n in SKIMAGE_TEXTURES
                             if hasattr(skimage.data, n)]
        if self._skimage:
            return "skimage"
        log.warning("draem: no scikit-image textures available; using the category's normal images")
        return "self"

    def _texture(self, kind: str, req: SynthesisRequest, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        if kind == "folder":
            path = self._files[int(rng.integers(0, len(self._files)))]
            try:
                tex = np.asarray(Image.open(path).convert("RGB"))
            except OSError as exc:
                raise FastError(f"draem: cannot read texture {path}: {exc}") from None
            src = path.name
        elif kind == "skimage":
            k = int(rng.integers(0, len(self._skimage)))
            tex, src = self._skimage[k], f"skimage:{SKIMAGE_TEXTURES[k]}"
        else:
            pool = req.extra.get("other_normals") or [req.background]
            k = int(rng.integers(0, len(pool)))
            tex, src = pool[k], f"normal:{k}"
        h, w, c = req.background.shape
        tex = to_channels(np.asarray(tex, np.uint8), c)
        tex = cv2.resize(tex, (w, h), interpolation=cv2.INTER_AREA).reshape(h, w, c)
        return tex, src

    def synthesize(self, requests: Sequence[SynthesisRequest], seed: int) -> Iterator[Synthesized]:
        kind = self._resolve_source()
        for i, req in enumerate(requests):
            rng = np.random.default_rng([seed, i])
            shape = req.background.shape[:2]
            mask, mask_desc = perlin_mask(shape, rng, max_log2_scale=max_log2_scale(shape))
            tex, src = self._texture(kind, req, rng)
            tex, augs = augment(tex, rng)
            beta = float(rng.uniform(0.0, 0.8))
            out = draem_blend(req.background, tex, mask, beta)
            yield out, mask, {"nfe": 0, "mask_source": mask_desc, "texture": src,
                              "augmentations": "+".join(augs), "beta": round(beta, 4)}


def build(cfg: dict, name: str) -> SynthesisMethod:
    return Draem(cfg, name)
