"""`fast grid`: sample grid figure that shows the defects themselves.

One block per category (dataset/category, stacked, with the category as the block's title). In a
block, rows are the methods (first, when the prepared data is given, the real ``gen_train`` defects
as a reference row "real (gen_train)"), columns are ``max(3, --per-cell)`` samples spread evenly
over the manifest. A sample is a zoomed window around its mask (``fast.data.windows.mask_window``
with ``patch = max(32, image_size // 4)``, upscaled by nearest neighbour to ``TILE`` px) with the
window's mask beside it (image | mask). Whole images would hide 3-pixel defects. Rows whose
directory or manifest is missing stay blank. The PNG is drawn pixel-exact (see ``grid_size``) and
written atomically.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from fast.data.manifest import manifest_path
from fast.data.windows import crop, crop_mask, mask_window
from fast.errors import FastError
from fast.io import read_png

log = logging.getLogger(__name__)

MIN_SAMPLES = 3
REAL_ROW = "real (gen_train)"
# Geometry in output pixels (tests rely on it through grid_size / tile_origin).
TILE = 96          # displayed side of one zoomed window
PAIR_GAP = 2       # between a sample's image and its mask
SAMPLE_GAP = 10    # between samples
ROW_GAP = 6
LABEL_W = 150      # method labels on the left
TITLE_H = 24       # figure title
CATEGORY_H = 22    # each category block's title
MARGIN = 6
SAMPLE_W = 2 * TILE + PAIR_GAP
BACKGROUND, INK = 255, (0, 0, 0)


@dataclass
class Block:
    """One category: row labels and per row the tiles (None = blank row)."""

    title: str
    rows: list[tuple[str, list[np.ndarray] | None]]


def display_patch(image_size: int) -> int:
    """Window side for the zoom: a quarter of the image, never below 32 px."""
    return max(32, image_size // 4)


def _rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        image = image[..., None]
    image = image[..., :3]
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image


def _upscale(tile: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(tile).resize((TILE, TILE), Image.NEAREST))


def _binary(mask: np.ndarray) -> np.ndarray:
    mask = mask[..., 0] if mask.ndim == 3 else mask
    return (mask > (127 if mask.max() > 1 else 0)).astype(np.uint8)


def sample_tile(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(TILE, SAMPLE_W, 3) uint8: the zoomed window around ``mask`` | that window's mask in white.
    An empty mask (nothing to zoom on) shows the whole image and a black mask."""
    image, mask = _rgb(image), _binary(mask)
    if mask.any():
        patch = display_patch(min(mask.shape))
        win = mask_window(mask, patch)
        image, mask = crop(image, win, patch), crop_mask(mask, win, patch)
    left = _upscale(np.ascontiguousarray(image))
    right = _upscale(np.repeat((mask * 255).astype(np.uint8)[..., None], 3, axis=2))
    gap = np.full((TILE, PAIR_GAP, 3), BACKGROUND, np.uint8)
    return np.concatenate([left, gap, right], axis=1)


def _spread(table: pd.DataFrame, n: int) -> list[int]:
    """``n`` rows spread evenly over the table (so that several anomaly types appear)."""
    return sorted(set(np.linspace(0, len(table) - 1, num=min(n, len(table))).round().astype(int)))


def tiles_of(root: Path, table: pd.DataFrame, n: int) -> list[np.ndarray] | None:
    """Tiles of ``n`` samples of ``table`` (image, mask columns relative to ``root``)."""
    if table.empty:
        return None
    return [sample_tile(read_png(root / table.iloc[i]["image"]), read_png(root / table.iloc[i]["mask"]))
            for i in _spread(table, n)]


def synthetic_tiles(directory: Path, n: int) -> list[np.ndarray] | None:
    """None when the directory has no (or an empty) manifest.csv."""
    manifest = directory / "manifest.csv"
    if not manifest.is_file():
        return None
    return tiles_of(directory, pd.read_csv(manifest, dtype=str, keep_default_na=False), n)


def real_tiles(prepared: Path, category: str, n: int) -> list[np.ndarray] | None:
    """The category's ``gen_train`` real defects (the only real anomalies a method may see)."""
    dataset, cat = category.split("/", 1)
    manifest = manifest_path(prepared, dataset, cat)
    if not manifest.is_file():
        log.warning("grid: no prepared manifest %s; no %s row for %s", manifest, REAL_ROW, category)
        return None
    table = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    table = table[(table["split"] == "gen_train") & (table["mask"] != "")]
    return tiles_of(manifest.parent, table, n)


def parse_dir(path: str | Path) -> tuple[str, str]:
    """``<...>/<dataset>/<category>/<method>[/seed<k>]`` -> (category label "dataset/category", method).
    A ``seed<k>`` directory is one segmenter seed's own set (synthesis.per_seed); its row is the method's."""
    p = Path(path)
    if re.fullmatch(r"seed\d+", p.name):
        p = p.parent
    if len(p.parts) < 3:
        raise FastError(f"--synthetic {path}: expected <...>/<dataset>/<category>/<method>[/seed<k>]")
    return f"{p.parent.parent.name}/{p.parent.name}", p.name


def collect(synthetic: list[str], n: int, prepared: str | None) -> list[Block]:
    """Blocks per category in first-seen order; every block has every method as a row."""
    cats: list[str] = []
    methods: list[str] = []
    cells: dict[tuple[str, str], list[np.ndarray] | None] = {}
    for d in synthetic:
        cat, method = parse_dir(d)
        cats += [cat] if cat not in cats else []
        methods += [method] if method not in methods else []
        cells[(cat, method)] = synthetic_tiles(Path(d), n)
        if cells[(cat, method)] is None:
            log.warning("grid: no manifest.csv in %s; leaving the row blank", d)
    if all(v is None for v in cells.values()):
        raise FastError("grid: none of the --synthetic directories holds a manifest.csv")
    blocks = []
    for cat in cats:
        rows = [(REAL_ROW, real_tiles(Path(prepared), cat, n))] if prepared else []
        blocks.append(Block(cat, rows + [(m, cells.get((cat, m))) for m in methods]))
    return blocks


def grid_size(rows_per_block: list[int], n_samples: int) -> tuple[int, int]:
    """(height, width) of the figure in pixels."""
    width = 2 * MARGIN + LABEL_W + n_samples * SAMPLE_W + (n_samples - 1) * SAMPLE_GAP
    height = 2 * MARGIN + TITLE_H + sum(CATEGORY_H + r * (TILE + ROW_GAP) for r in rows_per_block)
    return height, width


def tile_origin(rows_per_block: list[int], block: int, row: int, sample: int) -> tuple[int, int]:
    """(y, x) of the top-left pixel of a sample's image tile (its mask is SAMPLE_W - TILE further)."""
    y = MARGIN + TITLE_H + sum(CATEGORY_H + r * (TILE + ROW_GAP) for r in rows_per_block[:block])
    y += CATEGORY_H + row * (TILE + ROW_GAP)
    return y, MARGIN + LABEL_W + sample * (SAMPLE_W + SAMPLE_GAP)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def render(blocks: list[Block], n: int) -> Image.Image:
    counts = [len(b.rows) for b in blocks]
    height, width = grid_size(counts, n)
    canvas = np.full((height, width, 3), BACKGROUND, np.uint8)
    labels = []  # (xy, text, font size), drawn after the tiles
    for bi, block in enumerate(blocks):
        y0, _ = tile_origin(counts, bi, 0, 0)
        labels.append(((MARGIN, y0 - CATEGORY_H + 3), block.title, 14))
        for ri, (label, tiles) in enumerate(block.rows):
            y, _ = tile_origin(counts, bi, ri, 0)
            labels.append(((MARGIN, y + TILE // 2 - 7), label, 12))
            for si, tile in enumerate(tiles or []):
                _, x = tile_origin(counts, bi, ri, si)
                canvas[y:y + TILE, x:x + SAMPLE_W] = tile
    img = Image.fromarray(canvas)
    draw = ImageDraw.Draw(img)
    draw.text((MARGIN, MARGIN + 2), "Samples: zoomed window around each mask (image | mask)", fill=INK,
              font=_font(14))
    for xy, text, size in labels:
        draw.text(xy, text, fill=INK, font=_font(size))
    return img
