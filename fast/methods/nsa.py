"""NSA, Natural Synthetic Anomalies (Schlüter et al., ECCV 2022): `nsa`.

Training-free. 1-4 rectangular patches are cut from OTHER normal images of the same category
(``request.extra["other_normals"]``, filled by the synthesis driver), resized by ONE factor
clip(N(1, 0.5), 0.7, 1.3) for both axes (aspect ratio kept, as in the authors' code) and
Poisson-blended (OpenCV seamlessClone) into the normal image at a random place. Patch half-width /
half-height: (0.03 + Gamma(2, 0.05)) x image size, at most 0.4 x image size; patches under 50 px
(area) are skipped. Label, as in the authors' code: the mean over channels of |out - x| > threshold
(1 grey level, their ``tol``), median-filtered. The output is the blended image itself, as in NSA: Poisson blending also shifts
some pixels by less than the threshold, and those stay (unlabelled) rather than being reset to x,
because a reset leaves a hard step on the label boundary that a segmenter learns as a shortcut.
Redrawn if nothing was labelled. Objects on a plain background (fast.methods.mask_pool.object_region)
get patches centred on the object, like NSA's per-class object masks ("skip_background");
textures anywhere.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import cv2
import numpy as np

from fast.errors import FastError
from fast.methods.base import NUMBER, SynthesisMethod, SynthesisRequest, Synthesized
from fast.methods.mask_pool import object_region

MIN_PATCH_PX = 50


def _half_size(size: int, rng: np.random.Generator) -> int:
    frac = min(0.03 + rng.gamma(2.0, 0.05), 0.4)
    return max(1, int(round(frac * size)))


def _rgb(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.repeat(x, 3, axis=2) if x.shape[2] == 1 else x)


def _resized_size(ph: int, pw: int, h: int, w: int, rng: np.random.Generator) -> tuple[int, int]:
    """NSA's resize: one factor clip(N(1, 0.5), 0.7, 1.3) for both axes, so the aspect ratio is
    kept; lowered (for both axes) until the patch plus its 1-px boundary fits the destination."""
    scale = float(np.clip(rng.normal(1.0, 0.5), 0.7, 1.3))
    scale = min(scale, (h - 2) / ph, (w - 2) / pw)
    return max(1, int(round(ph * scale))), max(1, int(round(pw * scale)))


def nsa_patch(dst: np.ndarray, src: np.ndarray, rng: np.random.Generator, clone_mode: int,
              region: np.ndarray | None = None) -> np.ndarray | None:
    """Blend one patch of ``src`` into ``dst`` (both uint8 (H, W, 3)), centred on a pixel of
    ``region`` when given (the object); None if skipped."""
    h, w = dst.shape[:2]
    ph, pw = 2 * _half_size(h, rng), 2 * _half_size(w, rng)
    ph, pw = min(ph, src.shape[0]), min(pw, src.shape[1])
    th, tw = _resized_size(ph, pw, h, w, rng)
    if th * tw < MIN_PATCH_PX or th < 5 or tw < 5:
        return None
    sy, sx = int(rng.integers(0, src.shape[0] - ph + 1)), int(rng.integers(0, src.shape[1] - pw + 1))
    patch = cv2.resize(src[sy:sy + ph, sx:sx + pw], (tw, th), interpolation=cv2.INTER_LINEAR).reshape(th, tw, 3)
    mask = np.zeros((th, tw), np.uint8)
    mask[1:-1, 1:-1] = 255  # a zero rim: the Poisson boundary condition comes from dst
    # OpenCV centres the inner (non-zero) box of L = size - 2 pixels on (cx, cy) and accepts
    # centres in [L // 2, size - (L - L // 2)] (measured on OpenCV 5.0); stay 1 px inside that.
    ly, lx = th - 2, tw - 2
    if region is None:
        cy = int(rng.integers(ly // 2 + 1, h - (ly - ly // 2)))
        cx = int(rng.integers(lx // 2 + 1, w - (lx - lx // 2)))
    else:
        ys, xs = np.nonzero(region)
        k = int(rng.integers(0, len(ys)))
        cy = int(np.clip(ys[k], ly // 2 + 1, h - (ly - ly // 2) - 1))
        cx = int(np.clip(xs[k], lx // 2 + 1, w - (lx - lx // 2) - 1))
    return cv2.seamlessClone(patch, dst, mask, (cx, cy), clone_mode)


def nsa_label(out: np.ndarray, x: np.ndarray, threshold: float, median: int) -> np.ndarray:
    """The authors' label: mean over channels of |out - x| > threshold (grey levels), median-filtered."""
    diff = np.abs(out.astype(np.int16) - x.astype(np.int16)).mean(axis=2)
    mask = (diff > threshold).astype(np.uint8) * 255
    return (cv2.medianBlur(mask, median) if median > 1 else mask) > 0


def nsa(image: np.ndarray, others: Sequence[np.ndarray], rng: np.random.Generator, *, threshold: float = 1.0,
        median: int = 5, clone_mode: int = cv2.NORMAL_CLONE, max_tries: int = 20) -> tuple[np.ndarray, np.ndarray, int]:
    """Returns (image, mask, number of blended patches)."""
    c = image.shape[2]
    x = _rgb(image)
    region = object_region(image)
    region = None if region.all() else region
    # The median filter and the visibility threshold were tuned at 256 px: scale the filter with
    # the image, and relax the threshold when a small or uniform image shows no patch at it.
    median = max(3, int(round(median * min(image.shape[:2]) / 256)) | 1)
    thresholds = [threshold / 2 ** k for k in range(4)]
    for attempt in range(max_tries * len(thresholds)):
        threshold = thresholds[attempt // max_tries]
        out = x.copy()
        n_done = 0
        for _ in range(int(rng.integers(1, 5))):
            src = _rgb(others[int(rng.integers(0, len(others)))])
            blended = nsa_patch(out, src, rng, clone_mode, region)
            if blended is not None:
                out, n_done = blended, n_done + 1
        if not n_done:
            continue
        mask = nsa_label(out, x, threshold, median)
        if mask.any():
            # The blended image as it is: no reset of sub-threshold changes (no seam).
            result = out[..., :1] if c == 1 else out
            return np.ascontiguousarray(result), mask.astype(np.uint8), n_done
    raise FastError(f"nsa: no visible patch after {max_tries * len(thresholds)} tries down to threshold "
                    f"{thresholds[-1]:g}; the normal images may be too uniform (lower method_options.nsa.threshold)")


class NSA(SynthesisMethod):
    name = "nsa"
    uses_pool_masks = False

    CLONE_MODES = {"normal": cv2.NORMAL_CLONE, "mixed": cv2.MIXED_CLONE}
    OPTIONS = {"threshold": NUMBER, "clone_mode": tuple(CLONE_MODES)}

    def synthesize(self, requests: Sequence[SynthesisRequest], seed: int) -> Iterator[Synthesized]:
        threshold = float(self.options.get("threshold", 1.0))
        modes = self.CLONE_MODES
        if self.options.get("clone_mode", "normal") not in modes:
            raise FastError(f"method_options.nsa.clone_mode must be one of {list(modes)}")
        mode = modes[self.options.get("clone_mode", "normal")]
        for i, req in enumerate(requests):
            rng = np.random.default_rng([seed, i])
            # Grayscale images are blended as 3 equal channels (seamlessClone wants 3 channels).
            others = req.extra.get("other_normals") or [req.background]
            out, mask, n = nsa(req.background, others, rng, threshold=threshold, clone_mode=mode)
            yield out, mask, {"nfe": 0, "mask_source": f"nsa({n} patches)"}


def build(cfg: dict, name: str) -> SynthesisMethod:
    return NSA(cfg, name)
