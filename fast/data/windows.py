"""Training and synthesis windows cut from prepared images (docs/protocol.md, Sizes: ``patch``).

A window is a square ``side`` x ``side`` region at (y0, x0) of an image; models see it resized to
``patch`` x ``patch`` (``side == patch`` unless the defect is larger than a window, then the window
grows to hold it with a margin and is resized down, so that no defect is ever cut).

- ``defect_window``: centred on one connected defect component (chosen at random) with seeded
  jitter that keeps the whole component inside; used for anomalous training windows.
- ``mask_window``: centred on the bounding box of a whole mask, no jitter; used by synthesis, which
  generates that window and pastes it back (``paste``) so pixels outside the mask stay untouched.
- ``random_window``: uniform position; used for the generators' normal training windows.
- ``covering_window``: a start uniform over every position where the window overlaps the image,
  clamped inside; used for the segmenters' normal training windows (``segmentation.normal_windows:
  covering``), so that the image borders a whole-image segmenter must judge are seen in training.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage

from fast.data.prepare import resize_mask

MARGIN = 1.25   # a window holds its defect's bounding box with 25 % margin
JITTER = 0.25   # anomalous training windows: centre offset up to 25 % of the window side


@dataclass(frozen=True)
class Window:
    y0: int
    x0: int
    side: int


def _side(extent: int, patch: int, limit: int) -> int:
    return int(min(max(patch, int(np.ceil(extent * MARGIN))), limit))


def _place(lo: int, hi: int, side: int, size: int, offset: float) -> int:
    """Start of a window of ``side`` over [lo, hi) (the box), shifted by ``offset`` of the free
    room, clipped so that the window stays inside [0, size) and covers the box where it can."""
    room = max(side - (hi - lo), 0)
    start = lo - room // 2 + int(round(offset * min(room / 2, JITTER * side)))
    return int(np.clip(start, 0, size - side))


def _box(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1


def _window_over(box, shape, patch: int, offsets=(0.0, 0.0)) -> Window:
    y0, y1, x0, x1 = box
    h, w = shape
    side = _side(max(y1 - y0, x1 - x0), patch, min(h, w))
    return Window(_place(y0, y1, side, h, offsets[0]), _place(x0, x1, side, w, offsets[1]), side)


def mask_window(mask: np.ndarray, patch: int) -> Window:
    """The window centred on the bounding box of every defect pixel of ``mask`` (H, W)."""
    if not np.any(mask):
        raise ValueError("mask_window: empty mask")
    return _window_over(_box(mask), mask.shape, patch)


def defect_window(mask: np.ndarray, patch: int, rng: np.random.Generator) -> Window:
    """A window around one connected component of ``mask`` (chosen uniformly), seeded jitter."""
    labels, n = ndimage.label(np.asarray(mask) > 0)
    if n == 0:
        raise ValueError("defect_window: empty mask")
    k = int(rng.integers(1, n + 1))
    return _window_over(_box(labels == k), mask.shape, patch, tuple(rng.uniform(-1, 1, 2)))


def random_window(shape: tuple[int, int], patch: int, rng: np.random.Generator) -> Window:
    h, w = shape
    side = min(patch, h, w)
    return Window(int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1)), side)


def covering_window(shape: tuple[int, int], patch: int, rng: np.random.Generator) -> Window:
    """A window whose start is uniform over every position where it overlaps the image
    (``1 - side .. size - 1`` per axis), clamped inside. Every pixel is then covered with
    probability between side/(size+side-1) and about twice that; under ``random_window`` a pixel
    on the border is covered by 1 in size-side+1 windows, ``side`` times less often than a central
    one (64x at 192 px with 64 px windows), so a segmenter trained on windows never learns what
    the image's borders look like and marks them at whole-image inference."""
    h, w = shape
    side = min(patch, h, w)
    return Window(int(np.clip(rng.integers(1 - side, h), 0, h - side)),
                  int(np.clip(rng.integers(1 - side, w), 0, w - side)), side)


def training_window(mask: np.ndarray, patch: int, rng: np.random.Generator, anomalous: bool = True) -> Window:
    """The training window rule shared by generators and segmenters: around a defect for an
    anomalous sample with a non-empty mask, at random otherwise."""
    if anomalous and np.any(mask):
        return defect_window(mask, patch, rng)
    return random_window(mask.shape, patch, rng)


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    interp = cv2.INTER_AREA if size < img.shape[0] else cv2.INTER_CUBIC
    out = cv2.resize(img, (size, size), interpolation=interp)
    return out.reshape(size, size, *img.shape[2:])


def crop(image: np.ndarray, win: Window, patch: int) -> np.ndarray:
    """The window of ``image`` (H, W[, C]) at ``patch`` x ``patch``."""
    out = image[win.y0:win.y0 + win.side, win.x0:win.x0 + win.side]
    return out if win.side == patch else _resize(out, patch)


def crop_mask(mask: np.ndarray, win: Window, patch: int) -> np.ndarray:
    """The window of ``mask`` at ``patch`` x ``patch``, uint8 {0, 1}; a small defect never vanishes."""
    out = (mask[win.y0:win.y0 + win.side, win.x0:win.x0 + win.side] > 0).astype(np.uint8)
    return out if win.side == patch else resize_mask(out, patch)


def paste(generated: np.ndarray, win: Window, background: np.ndarray) -> np.ndarray:
    """``background`` with the window replaced by ``generated`` (patch x patch, resized back to the
    window's side). The caller composites inside the mask only (fast.samplers.base.composite)."""
    out = background.copy()
    if generated.shape[0] != win.side:
        generated = _resize(generated, win.side)
    out[win.y0:win.y0 + win.side, win.x0:win.x0 + win.side] = generated.reshape(
        win.side, win.side, *background.shape[2:])
    return out


__all__ = ["Window", "covering_window", "crop", "crop_mask", "defect_window", "mask_window", "paste", "random_window",
           "training_window"]
