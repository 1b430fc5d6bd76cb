"""`fast grid`: sample grid figure that shows the defects themselves.

One block per category (dataset/category, stacked, titled). In a block, rows are the methods (first,
when the prepared data is given, the real ``gen_train`` defects, "real (gen_train)") and columns are
grouped by defect type, the type's name above its group. Synthesis gives request i of a type the
same normal background in every method, and the same shared-pool mask in every method that uses the
pool (fast.commands.synthesize), so the columns pick the same request positions in every method's
manifest: down a column, the methods are compared on one background and, where they allow it, one
mask. The real row then shows the real defect that column's pool mask was taken from (its
``mask_source``), otherwise the type's gen_train defects spread over the set.

A sample is the zoomed window around its mask (``fast.data.windows.mask_window`` with
``patch = max(32, image_size // 4)``, nearest-neighbour upscaled to ``TILE`` px; whole images would
hide 3-pixel defects), and beside it, ``THUMB`` px each, the whole image with the mask outlined in
red (top) and the window's mask (bottom). Rows whose directory or manifest is missing stay blank.
The PNG is drawn pixel-exact (see ``layout``) and written atomically by the caller.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from fast.data.manifest import manifest_path
from fast.data.pair_sets import MANIFEST, read_pair, read_set
from fast.data.prepare import binarize_mask
from fast.data.registry import HALF_MAX
from fast.data.windows import crop, crop_mask, mask_window
from fast.errors import FastError
from fast.io import read_png

log = logging.getLogger(__name__)

MIN_SAMPLES = 3    # samples per method at least (all types together)
MIN_PER_TYPE = 2   # samples per defect type at least
REAL_ROW = "real (gen_train)"
# Geometry in output pixels (tests rely on it through layout / Layout.origin).
TILE = 96          # displayed side of one zoomed window
PAIR_GAP = 4       # between the window and its thumbnails, and between the two thumbnails
THUMB = (TILE - PAIR_GAP) // 2   # the whole image (top) and the window's mask (bottom)
SAMPLE_W = TILE + PAIR_GAP + THUMB
SAMPLE_GAP = 8     # between samples of one type
GROUP_GAP = 26     # between defect types (a grey rule in the middle)
ROW_GAP = 6
LABEL_W = 160      # method labels on the left
TITLE_LINE_H = 17  # figure title, wrapped to the figure's width
CATEGORY_H = 24    # each category block's title
GROUP_H = 20       # the defect type names above their columns
MARGIN = 8
BACKGROUND, INK, RULE, OUTLINE = 255, (0, 0, 0), (170, 170, 170), (255, 30, 30)
SAMPLE_NOTE = ("Each sample: zoomed window around the mask | whole image, mask outlined (top), and the "
               "window's mask (bottom).")
# the columns' promise holds for collect's blocks (grouped by type, one request per column) only
TITLE = (SAMPLE_NOTE + "\nColumns grouped by defect type. A column: one background in every row, one mask in "
         "every row that uses the shared mask pool; the real row: the real defect that mask came from.")


@dataclass
class Block:
    """One category: row labels and per row the tiles (None = blank row, a None tile = blank cell);
    ``groups``: (header, number of columns) of consecutive column groups, or None (no headers)."""

    title: str
    rows: list[tuple[str, list[np.ndarray | None] | None]]
    groups: list[tuple[str, int]] | None = None


def display_patch(image_size: int) -> int:
    """Window side for the zoom: a quarter of the image, never below 32 px."""
    return max(32, image_size // 4)


def _rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        image = image[..., None]
    image = image[..., :3]
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image


def _resize(tile: np.ndarray, side: int, smooth: bool = False) -> np.ndarray:
    """Nearest neighbour for the zoom (pixels stay pixels), area averaging for the thumbnail."""
    return cv2.resize(np.ascontiguousarray(tile), (side, side),
                      interpolation=cv2.INTER_AREA if smooth else cv2.INTER_NEAREST)


def _binary(mask: np.ndarray) -> np.ndarray:
    """uint8 {0, 1} by the project's mask rule (fast.data.prepare.binarize_mask, HALF_MAX)."""
    return binarize_mask(mask, HALF_MAX).astype(np.uint8)


def _outlined_thumbnail(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The whole image at THUMB px with a red ring just outside the mask (the ring, not a fill,
    so that the defect itself stays visible; a mask of a few pixels still gets a ring)."""
    thumb = _resize(image, THUMB, smooth=True).copy()
    small = (_resize(mask.astype(np.float32), THUMB, smooth=True) > 0).astype(np.uint8)
    ring = cv2.dilate(small, np.ones((3, 3), np.uint8)) & ~small.astype(bool)
    thumb[ring.astype(bool)] = OUTLINE
    return thumb


def sample_tile(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(TILE, SAMPLE_W, 3) uint8: the zoomed window around ``mask`` | the whole image with the mask
    outlined (top) and the window's mask in white (bottom). An empty mask (nothing to zoom on)
    shows the whole image and a black mask."""
    image, mask = _rgb(image), _binary(mask)
    window, window_mask = image, mask
    if mask.any():
        patch = display_patch(min(mask.shape))
        win = mask_window(mask, patch)
        window, window_mask = crop(image, win, patch), crop_mask(mask, win, patch)
    tile = np.full((TILE, SAMPLE_W, 3), BACKGROUND, np.uint8)
    tile[:, :TILE] = _resize(window, TILE)
    tile[:THUMB, TILE + PAIR_GAP:] = _outlined_thumbnail(image, mask)
    tile[TILE - THUMB:, TILE + PAIR_GAP:] = np.repeat(_resize(window_mask * 255, THUMB)[..., None], 3, axis=2)
    return tile


def _spread(table: pd.DataFrame, n: int) -> list[int]:
    """``n`` positions spread evenly over the table (so that several anomaly types appear)."""
    return sorted(set(np.linspace(0, len(table) - 1, num=min(n, len(table))).round().astype(int)))


def _tile(root: Path, row) -> np.ndarray:
    """The tile of a prepared (real) row."""
    return sample_tile(read_png(root / row["image"]), read_png(root / row["mask"]))


def _set_tile(directory: Path, row) -> np.ndarray:
    """The tile of a synthetic set's row (fast.data.pair_sets.read_pair)."""
    return sample_tile(*read_pair(directory, row))


def tiles_of(root: Path, table: pd.DataFrame, n: int, synthetic: bool = False) -> list[np.ndarray] | None:
    """Tiles of ``n`` samples of ``table`` (image, mask columns relative to ``root``): a synthetic
    set's rows with ``synthetic``, else a prepared manifest's."""
    if table.empty:
        return None
    tile = _set_tile if synthetic else _tile
    return [tile(root, table.iloc[i]) for i in _spread(table, n)]


def parse_dir(path: str | Path) -> tuple[str, str]:
    """``<...>/<dataset>/<category>/<method>[/seed<k>]`` -> (category label "dataset/category", method).
    A ``seed<k>`` directory is one segmenter seed's own set (synthesis.per_seed); its row is the method's."""
    p = Path(path)
    if re.fullmatch(r"seed\d+", p.name):
        p = p.parent
    if len(p.parts) < 3:
        raise FastError(f"--synthetic {path}: expected <...>/<dataset>/<category>/<method>[/seed<k>]")
    return f"{p.parent.parent.name}/{p.parent.name}", p.name


def _manifest(directory: Path) -> pd.DataFrame | None:
    """The set's manifest (fast.data.pair_sets.read_set; None when missing or empty); ``anomaly_type``
    "" where it has none."""
    if not (directory / MANIFEST).is_file():
        return None
    table = read_set(directory, allow_empty=True)
    if table.empty:
        return None
    return table if "anomaly_type" in table else table.assign(anomaly_type="")


def _pool_source(row) -> str:
    """The prepared mask a pool-mask row was drawn from ("masks/<name>.png|<ops>|shift=..."), or ""."""
    source = str(row.get("mask_source", "")).split("|")[0]
    return source if source.startswith("masks/") else ""


@dataclass
class _Category:
    """What one block is drawn from: each method's set (directory, manifest or None)."""

    label: str
    sets: list[tuple[str, Path, pd.DataFrame | None]] = field(default_factory=list)

    def reference(self) -> pd.DataFrame:
        """The manifest the columns are picked from: the first set that uses the shared mask pool
        (its masks recur in every pool method), else the first set there is."""
        tables = [t for _, _, t in self.sets if t is not None]
        pooled = [t for t in tables if (t.apply(_pool_source, axis=1) != "").any()]
        return (pooled or tables)[0]


def _columns(reference: pd.DataFrame, n: int) -> list[tuple[str, list[int]]]:
    """Per defect type (the reference's order): the positions among that type's requests."""
    types = list(dict.fromkeys(reference["anomaly_type"]))
    per_type = max(MIN_PER_TYPE, math.ceil(n / len(types))) if types != [""] else n
    return [(t, _spread(reference[reference["anomaly_type"] == t], per_type)) for t in types]


def _method_tiles(directory: Path, table: pd.DataFrame, columns) -> list[np.ndarray | None]:
    tiles: list[np.ndarray | None] = []
    for anomaly_type, positions in columns:
        rows = table[table["anomaly_type"] == anomaly_type]
        tiles += [_set_tile(directory, rows.iloc[p]) if p < len(rows) else None for p in positions]
    return tiles


def _real_tiles(prepared: Path, label: str, reference: pd.DataFrame, columns) -> list[np.ndarray | None] | None:
    """Per column the real gen_train defect whose mask the reference's pool mask is, else the
    type's gen_train defects spread over the set; None without a prepared manifest."""
    dataset, category = label.split("/", 1)
    path = manifest_path(prepared, dataset, category)
    if not path.is_file():
        log.warning("grid: no prepared manifest %s; no %s row for %s", path, REAL_ROW, label)
        return None
    real = pd.read_csv(path, dtype=str, keep_default_na=False)
    real = real[(real["split"] == "gen_train") & (real["mask"] != "")]
    by_mask = {r["mask"]: r for _, r in real.iterrows()}
    tiles: list[np.ndarray | None] = []
    for anomaly_type, positions in columns:
        own = reference[reference["anomaly_type"] == anomaly_type]
        of_type = real[real["anomaly_type"] == anomaly_type] if anomaly_type else real
        spread = _spread(of_type, len(positions))
        for j, p in enumerate(positions):
            source = by_mask.get(_pool_source(own.iloc[p]))
            if source is None and j < len(spread):
                source = of_type.iloc[spread[j]]
            tiles.append(None if source is None else _tile(path.parent, source))
    return tiles


def collect(synthetic: list[str], n: int, prepared: str | None) -> list[Block]:
    """Blocks per category in first-seen order; every block has every method as a row."""
    categories: dict[str, _Category] = {}
    methods: list[str] = []
    for d in synthetic:
        label, method = parse_dir(d)
        methods += [method] if method not in methods else []
        table = _manifest(Path(d))
        if table is None:
            log.warning("grid: no manifest.csv in %s; leaving the row blank", d)
        categories.setdefault(label, _Category(label)).sets.append((method, Path(d), table))
    if all(t is None for c in categories.values() for _, _, t in c.sets):
        raise FastError("grid: none of the --synthetic directories holds a manifest.csv")
    blocks = []
    for label, cat in categories.items():
        if all(t is None for _, _, t in cat.sets):
            blocks.append(Block(label, [(m, None) for m in methods]))
            continue
        reference = cat.reference()
        columns = _columns(reference, n)
        sets = {m: (d, t) for m, d, t in cat.sets}
        rows = [(REAL_ROW, _real_tiles(Path(prepared), label, reference, columns))] if prepared else []
        for m in methods:
            d, t = sets.get(m, (None, None))
            rows.append((m, None if t is None else _method_tiles(d, t, columns)))
        groups = None if [t for t, _ in columns] == [""] else [(t, len(p)) for t, p in columns]
        blocks.append(Block(label, rows, groups))
    return blocks


@dataclass
class Layout:
    """Pixel geometry of a grid: the figure's size, and per block the y of its first tile row and
    the x of each column."""

    height: int
    width: int
    block_y: list[int]
    columns: list[list[int]]
    title: list[str]

    def origin(self, block: int, row: int, column: int) -> tuple[int, int]:
        """(y, x) of the top-left pixel of a sample's window tile (its thumbnails start
        TILE + PAIR_GAP further right)."""
        return self.block_y[block] + row * (TILE + ROW_GAP), self.columns[block][column]


def _group_counts(block: Block, n: int) -> list[int]:
    return [c for _, c in block.groups] if block.groups else [n]


def _wrap(text: str, width: int, font) -> list[str]:
    """Greedy word wrap of ``text`` to lines no wider than ``width`` px in ``font``."""
    lines: list[str] = []
    for word in text.split():
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines


def layout(blocks: list[Block], n: int) -> Layout:
    """The geometry of ``render(blocks, n)`` (``n``: columns of a block without groups)."""
    columns = []
    for b in blocks:
        x, xs = MARGIN + LABEL_W, []
        for g, count in enumerate(_group_counts(b, n)):
            x += GROUP_GAP if g else 0
            for _ in range(count):
                xs.append(x)
                x += SAMPLE_W + SAMPLE_GAP
        columns.append(xs)
    width = max((xs[-1] + SAMPLE_W for xs in columns if xs), default=MARGIN + LABEL_W) + MARGIN
    text = TITLE if any(b.groups for b in blocks) else SAMPLE_NOTE
    title = [line for para in text.split("\n") for line in _wrap(para, width - 2 * MARGIN, _font(13))]
    y, block_y = MARGIN + len(title) * TITLE_LINE_H + 6, []
    for b in blocks:
        y += CATEGORY_H + (GROUP_H if b.groups else 0)
        block_y.append(y)
        y += len(b.rows) * (TILE + ROW_GAP)
    return Layout(y + MARGIN, width, block_y, columns, title)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def render(blocks: list[Block], n: int) -> Image.Image:
    geo = layout(blocks, n)
    canvas = np.full((geo.height, geo.width, 3), BACKGROUND, np.uint8)
    for bi, block in enumerate(blocks):
        for ri, (_, tiles) in enumerate(block.rows):
            for ci, tile in enumerate(tiles or []):
                if tile is not None:
                    y, x = geo.origin(bi, ri, ci)
                    canvas[y:y + TILE, x:x + SAMPLE_W] = tile
    img = Image.fromarray(canvas)
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(geo.title):
        draw.text((MARGIN, MARGIN + i * TITLE_LINE_H), line, fill=INK, font=_font(13))
    for bi, block in enumerate(blocks):
        top = geo.block_y[bi] - (GROUP_H if block.groups else 0)
        draw.text((MARGIN, top - CATEGORY_H + 2), block.title, fill=INK, font=_font(15))
        bottom = geo.block_y[bi] + len(block.rows) * (TILE + ROW_GAP) - ROW_GAP
        start = 0
        for g, (name, count) in enumerate(block.groups or []):
            x0, x1 = geo.columns[bi][start], geo.columns[bi][start + count - 1] + SAMPLE_W
            draw.text(((x0 + x1) // 2, top + 1), name, fill=INK, font=_font(14), anchor="mt")
            draw.line([(x0, top + GROUP_H - 4), (x1, top + GROUP_H - 4)], fill=RULE, width=1)
            if g:  # a rule between defect types
                xm = x0 - GROUP_GAP // 2
                draw.line([(xm, top), (xm, bottom)], fill=RULE, width=1)
            start += count
        for ri, (label, _) in enumerate(block.rows):
            y, _ = geo.origin(bi, ri, 0)
            draw.text((MARGIN, y + TILE // 2), label, fill=INK, font=_font(13), anchor="lm")
    return img
