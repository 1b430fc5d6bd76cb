"""Mask resizing to a model grid (one rule, docs/methods.md, Notation): the area resize (the fraction of
each output pixel the mask covers) thresholded at >= 0.5, and never let a small defect vanish:
where that empties a sample's non-empty mask, every output pixel the defect touches (> 0) is kept.

Why two functions: fast.data.prepare.resize_mask applies this rule to numpy masks with OpenCV's
INTER_AREA when images are prepared; this one applies it to batches of tensors on the model's device
(FARM's grids, the losses, the z grid of the samplers) every step. Same rule, same thresholds; the
two agree exactly on random masks (tests/test_samplers_core.py)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch


@lru_cache(maxsize=256)
def _overlaps(n: int, m: int, device: str) -> torch.Tensor:
    """(m, n) float64: the length that source pixel j of n shares with output pixel i of m, both
    stretched to n * m units (integers, so the area sums below are exact)."""
    i = torch.arange(m, dtype=torch.float64, device=device)[:, None]
    j = torch.arange(n, dtype=torch.float64, device=device)[None]
    return (torch.minimum((i + 1) * n, (j + 1) * m) - torch.maximum(i * n, j * m)).clamp(min=0)


def resize_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, 1, H, W) {0,1} mask -> (B, 1, h, w) {0,1} float32 mask on the ``size`` grid."""
    h, w = int(size[0]), int(size[1])
    if tuple(mask.shape[-2:]) == (h, w):
        return (mask > 0).float()
    H, W = mask.shape[-2:]
    dev = str(mask.device)
    covered = _overlaps(H, h, dev) @ mask.double() @ _overlaps(W, w, dev).T   # area fraction x H * W
    out = 2 * covered >= H * W
    vanished = (out.flatten(1).sum(1) == 0) & (mask.flatten(1).sum(1) > 0)
    # unconditional (no `if vanished.any()`): a branch on a device tensor waits for the device
    out = torch.where(vanished.view(-1, *([1] * (out.ndim - 1))), covered > 0, out)
    return out.float()


def feather_weights(mask: np.ndarray, feather: int) -> np.ndarray:
    """Blend weights in [0, 1] that ramp up INSIDE the mask over ``feather`` pixels and are
    exactly 0 outside it, so pixels outside the mask stay bit-identical to the background."""
    m = (np.asarray(mask) > 0).astype(np.float64)
    if feather <= 0:
        return m
    from scipy.ndimage import distance_transform_edt

    return np.clip(distance_transform_edt(m) / float(feather), 0.0, 1.0) * m
