"""Training and test data of the downstream segmenter, per docs/protocol.md.

Training set of one row of the tables:
- a synthesis method: its synthetic set (``<synthetic>/manifest.csv``, fast.data.pair_sets) as the anomalous pool;
- ``real-fewshot``: the ``gen_train`` real anomalies; ``no-anomalies``: no anomalous pool;
and always the ``normal_train`` images with empty masks as the normal pool. Batches take half their
samples from each pool (all normal when there is no anomalous pool). Only ``gen_train`` and
``normal_train`` rows are ever read here for training; the test set is ``seg_test`` + ``normal_test``.
All images are brought to the experiment resolution (square) and to the dataset's channel count.

Training windows (docs/protocol.md, Sizes: ``patch``): with ``segmentation.patch`` set, every batch
sample is a ``patch`` x ``patch`` window of its image, cut before augmentation: an anomalous
sample's window is centred on one of its defect components (uniform choice, seeded jitter;
``fast.data.windows.defect_window``), a normal sample's window by ``segmentation.normal_windows``:
``covering`` (default; ``covering_window``: the start is uniform over every position where the
window overlaps the image, clamped inside, so the borders are seen) or ``uniform``
(``random_window``: uniform over the positions inside, the rule before; it shows a border pixel 64x
less often than a central one at 192 px and 64 px windows, and a segmenter trained so marked
Magnetic Tile's edge lines as cracks on normal images). Inference stays on whole images (the
models are fully convolutional).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from fast.data.manifest import TEST_SPLITS, PreparedCategory
from fast.data.pair_sets import read_pair, read_set
from fast.data.windows import covering_window, crop, crop_mask, defect_window, random_window
from fast.errors import FastError
from fast.catalog import NO_ANOMALIES, REAL_FEWSHOT, REFERENCE_ROWS
from fast.segmentation.cache import cached, entry_name


@dataclass
class Pool:
    """Images (N, C, H, W) float32 in [0, 1] and masks (N, H, W) float32 {0, 1}."""

    images: np.ndarray
    masks: np.ndarray

    def __len__(self) -> int:
        return len(self.images)


def _fit(image: np.ndarray, mask: np.ndarray, size: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Resize to size x size (bilinear image, nearest mask) and convert to ``channels``: uint8
    image (C, H, W) and uint8 mask (H, W) in {0, 1}."""
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[2] != channels:
        mode = "L" if channels == 1 else "RGB"
        src = image[..., 0] if image.shape[2] == 1 else image[..., :3]
        image = np.asarray(Image.fromarray(src).convert(mode))
        image = image[..., None] if image.ndim == 2 else image
    if image.shape[:2] != (size, size):
        chans = [np.asarray(Image.fromarray(image[..., c]).resize((size, size), Image.BILINEAR))
                 for c in range(channels)]
        image = np.stack(chans, axis=-1)
    if mask.shape != (size, size):
        mask = np.asarray(Image.fromarray(mask.astype(np.uint8)).resize((size, size), Image.NEAREST))
    return image.transpose(2, 0, 1).astype(np.uint8), (mask > 0).astype(np.uint8)


def _fitted(pairs, size: int, channels: int) -> dict[str, np.ndarray]:
    """uint8 ``images`` (N, C, H, W) and ``masks`` (N, H, W) of (image, mask) pairs (_fit)."""
    if not pairs:
        return {"images": np.zeros((0, channels, size, size), np.uint8), "masks": np.zeros((0, size, size), np.uint8)}
    imgs, masks = zip(*(_fit(i, m, size, channels) for i, m in pairs))
    return {"images": np.stack(imgs), "masks": np.stack(masks)}


def _pool(fitted: dict[str, np.ndarray]) -> Pool:
    return Pool(fitted["images"].astype(np.float32) / 255.0, fitted["masks"].astype(np.float32))


def _stack(pairs, size: int, channels: int) -> Pool:
    return _pool(_fitted(pairs, size, channels))


def _prepared_pair(cat: PreparedCategory, row) -> tuple[np.ndarray, np.ndarray]:
    """(image, mask) of one manifest row; a normal's empty mask takes the shape of the image
    already decoded (PreparedCategory.load_mask would decode the image a second time for it)."""
    image = cat.load_image(row)
    mask = cat.load_mask(row) if row["mask"] else np.zeros(image.shape[:2], np.uint8)
    return image, mask


def prepared_pool(cat: PreparedCategory, splits: tuple[str, ...], size: int, channels: int) -> tuple[Pool, pd.DataFrame]:
    """The rows of ``splits`` as a pool, decoded once per prepared category when a cache
    directory is set (fast.segmentation.cache)."""
    rows = cat.rows(*splits)

    def decode() -> dict[str, np.ndarray]:
        return _fitted([_prepared_pair(cat, r) for _, r in rows.iterrows()], size, channels)

    fitted = cached(lambda: entry_name(cat, splits, size, channels), decode)
    return _pool(fitted), rows


def synthetic_pool(synthetic_dir: str | Path, size: int, channels: int) -> Pool:
    """The pairs of the synthetic set in ``synthetic_dir`` (fast.data.pair_sets)."""
    table = read_set(synthetic_dir)
    return _stack([read_pair(synthetic_dir, r) for _, r in table.iterrows()], size, channels)


def training_pools(cat: PreparedCategory, method: str, synthetic_dir: str | None, size: int,
                   channels: int) -> tuple[Pool, Pool]:
    """(anomalous pool, normal pool) for one row of the tables."""
    normal, _ = prepared_pool(cat, ("normal_train",), size, channels)
    normal.masks[:] = 0.0  # normals are defect-free by definition
    if len(normal) == 0:
        raise FastError(f"{cat.manifest}: no normal_train images")
    if method == NO_ANOMALIES:
        anomalous = _stack([], size, channels)
    elif method == REAL_FEWSHOT:
        anomalous, _ = prepared_pool(cat, ("gen_train",), size, channels)
        if len(anomalous) == 0:
            raise FastError(f"{cat.manifest}: no gen_train anomalies for the {REAL_FEWSHOT} row")
    else:
        if synthetic_dir is None:
            raise FastError(f"method {method!r} needs --synthetic DIR (its synthetic outputs); "
                            f"only {', '.join(REFERENCE_ROWS)} train without one")
        anomalous = synthetic_pool(synthetic_dir, size, channels)
    return anomalous, normal


def evaluation_set(cat: PreparedCategory, size: int, channels: int) -> tuple[Pool, pd.DataFrame]:
    """``seg_test`` + ``normal_test`` only (docs/protocol.md, metrics)."""
    pool, rows = prepared_pool(cat, TEST_SPLITS, size, channels)
    if len(pool) == 0:
        raise FastError(f"{cat.manifest}: no seg_test / normal_test images to evaluate on")
    return pool, rows


def augment(images: np.ndarray, masks: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Seeded per-sample horizontal/vertical flips and 90-degree rotations (square inputs)."""
    out_i, out_m = [], []
    for img, m in zip(images, masks):
        k = int(rng.integers(4))
        hflip, vflip = rng.random(2) < 0.5
        img, m = np.rot90(img, k, axes=(1, 2)), np.rot90(m, k, axes=(0, 1))
        if hflip:
            img, m = img[:, :, ::-1], m[:, ::-1]
        if vflip:
            img, m = img[:, ::-1, :], m[::-1, :]
        out_i.append(img)
        out_m.append(m)
    return np.ascontiguousarray(np.stack(out_i)), np.ascontiguousarray(np.stack(out_m))


NORMAL_WINDOWS = {"covering": covering_window, "uniform": random_window}
_NORMAL_RULES = {"covering": "at a start uniform over every position overlapping the image, clamped inside "
                             "(every pixel, borders included, covered with probability >= side/(size+side-1))",
                 "uniform": "at a uniform random position inside the image"}


def window_rule(normal_windows: str = "covering") -> str:
    """The training-window rule in words, for train_config.json."""
    return ("anomalous: patch x patch window centred on one connected defect component chosen "
            "uniformly, seeded jitter up to 25% of the side keeping the component inside (a defect "
            "larger than the window gets a window 1.25x its extent, resized down to patch); "
            f"normal: patch x patch window {_NORMAL_RULES[normal_windows]}; cut before the flips/rot90")


def effective_patch(patch: int | None, size: int) -> int | None:
    """The window side actually used: None (whole images) when no patch is set or the patch
    covers the whole image (a window as large as the image is the image, so do not resize it)."""
    return None if patch is None or patch >= size else int(patch)


def window_of(image: np.ndarray, mask: np.ndarray, patch: int, anomalous: bool,
              rng: np.random.Generator, normal_windows: str = "covering") -> tuple[np.ndarray, np.ndarray]:
    """One training window of (C, H, W) ``image`` and (H, W) ``mask`` at ``patch`` x ``patch``."""
    if anomalous and np.any(mask):
        win = defect_window(mask, patch, rng)
    else:   # normals (and an empty mask)
        win = NORMAL_WINDOWS[normal_windows](mask.shape, patch, rng)
    # windows.crop works on (H, W[, C]); the pools are channel-first.
    img = crop(np.ascontiguousarray(image.transpose(1, 2, 0)), win, patch).transpose(2, 0, 1)
    return img.astype(np.float32), crop_mask(mask, win, patch).astype(np.float32)


class MixedBatches:
    """Endless seeded batches: half anomalous pool, half normal pool (all normal if no anomalies).

    Each pool is walked in reshuffled epochs so every sample is seen equally often. With ``patch``
    each sample is cut to a window first (see the module docstring); ``patch=None`` (or a patch as
    large as the images) trains on whole images and draws exactly the batches it always did."""

    def __init__(self, anomalous: Pool, normal: Pool, batch_size: int, seed: int, patch: int | None = None,
                 normal_windows: str = "covering"):
        if normal_windows not in NORMAL_WINDOWS:
            raise FastError(f"segmentation.normal_windows: unknown rule {normal_windows!r}; "
                            f"known: {', '.join(NORMAL_WINDOWS)}")
        self.normal_windows = normal_windows
        self.pools = [p for p in (anomalous, normal) if len(p)]
        self.anomalous = [p is anomalous for p in self.pools]
        self.batch_size = batch_size
        self.patch = effective_patch(patch, min(normal.images.shape[2:]))
        self.rng = np.random.default_rng(seed)
        self._order = [np.empty(0, int) for _ in self.pools]

    def _take(self, i: int, n: int) -> np.ndarray:
        while len(self._order[i]) < n:
            self._order[i] = np.concatenate([self._order[i], self.rng.permutation(len(self.pools[i]))])
        idx, self._order[i] = self._order[i][:n], self._order[i][n:]
        return idx

    def _samples(self, i: int, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pool = self.pools[i]
        if self.patch is None:
            return pool.images[idx], pool.masks[idx]
        cut = [window_of(pool.images[k], pool.masks[k], self.patch, self.anomalous[i], self.rng,
                         self.normal_windows) for k in idx]
        return np.stack([c[0] for c in cut]), np.stack([c[1] for c in cut])

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        counts = ([self.batch_size // 2, self.batch_size - self.batch_size // 2]
                  if len(self.pools) == 2 else [self.batch_size])
        images, masks = [], []
        for i, n in enumerate(counts):
            img, m = self._samples(i, self._take(i, n))
            images.append(img)
            masks.append(m)
        img, m = augment(np.concatenate(images), np.concatenate(masks), self.rng)
        return torch.from_numpy(img), torch.from_numpy(m)[:, None]
