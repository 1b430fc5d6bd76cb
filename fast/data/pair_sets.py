"""The synthetic-set format: what `fast synthesize` (and `fast generate`) write, and the one reader
every consumer (segmenter training, generator fidelity, the sample grid, the exports) reads it with.

A set is one directory:
- ``images/<type>_<k>.png``: the synthetic images, uint8, as the method returned them;
- ``masks/<type>_<k>.png``: the masks, 0/255, same file names;
- ``manifest.csv``: one row per pair, MANIFEST_BASE_COLUMNS (image and mask paths relative to the
  directory, source_normal relative to the prepared manifest, mask_source, anomaly_type, the run
  seed) then the methods' meta keys (e.g. nfe) in sorted order;
- ``timing.json``: the timing record (TIMING_KEYS and what the stage adds).
The directory is written under a temporary name and renamed when complete (:func:`writing_set`).

Reading: :func:`read_set` (the manifest, checked: one FastError per fault, naming the file and the
command that rewrites it) and :func:`read_pair` (one pair's image and mask). A mask is read by the
one rule prepared masks are read by (fast.data.prepare.read_mask with HALF_MAX: a pixel is defect
where its value is above half the mask's maximum, so 0/255 and 0/1 PNGs read alike). Keys of a pair
(anomaly_type, seed, mask_source, source_normal, the methods' meta keys) are the manifest's columns,
never parsed from file names.
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
from PIL import Image

from fast.data.prepare import read_mask
from fast.data.registry import HALF_MAX
from fast.errors import FastError
from fast.io import atomic_dir, read_table, write_json, write_png

MANIFEST = "manifest.csv"
TIMING = "timing.json"
IMAGES, MASKS = "images", "masks"
MANIFEST_BASE_COLUMNS = ["image", "mask", "source_normal", "mask_source", "anomaly_type", "seed"]
REQUIRED_COLUMNS = ("image", "mask")  # every reader needs these; fidelity and the grid use anomaly_type too
TIMING_KEYS = ["method", "device", "images", "wall_seconds", "images_per_s", "seconds_per_image", "nfe",
               "total_seconds", "load_seconds", "seed", "method_seed", "n_per_type"]


# ----------------------------------------------------------------------------------- writing
def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name)


def meta_value(v):
    if isinstance(v, (np.generic,)):
        v = v.item()
    return v if isinstance(v, (str, int, float, bool)) or v is None else json.dumps(v, sort_keys=True)


def pair_name(anomaly_type: str, k: int) -> str:
    """File name of the ``k``-th pair of ``anomaly_type`` (the same in images/ and masks/)."""
    return f"{safe_name(anomaly_type)}_{k:04d}.png"


@contextlib.contextmanager
def writing_set(out: str | Path) -> Iterator[Path]:
    """A temporary directory with images/ and masks/, renamed onto ``out`` when the block completes
    (fast.io.atomic_dir): a killed job never leaves a set that looks finished."""
    with atomic_dir(out) as tmp:
        (tmp / IMAGES).mkdir()
        (tmp / MASKS).mkdir()
        yield tmp


def write_pair(directory: Path, name: str, image: np.ndarray, mask: np.ndarray) -> tuple[str, str]:
    """Write ``image`` (uint8) and ``mask`` ({0, 1}, saved 0/255) as ``name``; their manifest paths."""
    write_png(directory / IMAGES / name, image)
    write_png(directory / MASKS / name, (mask * 255).astype(np.uint8))
    return f"{IMAGES}/{name}", f"{MASKS}/{name}"


def pair_record(image: str, mask: str, source_normal: str, mask_source: str, anomaly_type: str, seed: int,
                meta: dict) -> dict:
    """One manifest row: MANIFEST_BASE_COLUMNS, then the method's other meta keys."""
    row = {"image": image, "mask": mask, "source_normal": source_normal, "mask_source": mask_source,
           "anomaly_type": anomaly_type, "seed": seed}
    row.update({k: meta_value(v) for k, v in meta.items() if k not in row and k != "mask_source"})
    return row


def write_manifest(directory: Path, rows: list[dict]) -> None:
    extra_cols = sorted({c for r in rows for c in r} - set(MANIFEST_BASE_COLUMNS))
    pd.DataFrame(rows, columns=MANIFEST_BASE_COLUMNS + extra_cols).to_csv(directory / MANIFEST, index=False)


def write_timing(directory: Path, timing: dict) -> None:
    write_json(directory / TIMING, timing)


# ----------------------------------------------------------------------------------- reading
def _rerun(root: Path) -> str:
    return f"re-run `fast synthesize ... --out {root}`"


def read_set(directory: str | Path, require: tuple[str, ...] = (), allow_empty: bool = False) -> pd.DataFrame:
    """The manifest of the set in ``directory`` (every value a string), checked: it exists, is not
    empty (unless ``allow_empty``: then an empty table), has REQUIRED_COLUMNS and ``require``, and
    every image and mask it lists exists. Each fault is one FastError naming the file."""
    root = Path(directory)
    manifest = root / MANIFEST
    if not manifest.is_file():
        raise FastError(f"synthetic manifest not found: {manifest} (run `fast synthesize` first)")
    if manifest.stat().st_size == 0:
        if allow_empty:
            return pd.DataFrame(columns=[*REQUIRED_COLUMNS, *require], dtype=str)
        raise FastError(f"{manifest}: empty file (no header, no pairs); {_rerun(root)}")
    table = read_table(manifest, f"`fast synthesize ... --out {root}`")
    missing = [c for c in (*REQUIRED_COLUMNS, *require) if c not in table.columns]
    if missing:
        raise FastError(f"{manifest}: missing columns {missing}; {_rerun(root)}")
    if table.empty:
        if allow_empty:
            return table
        raise FastError(f"{manifest}: no pairs (a header without rows); {_rerun(root)}")
    absent = [p for p in (*table["image"], *table["mask"]) if not p or not (root / p).is_file()]
    if absent:
        more = f" (and {len(absent) - 1} more)" if len(absent) > 1 else ""
        raise FastError(f"{manifest}: lists {absent[0] or 'an empty path'}, which is missing{more}; "
                        f"{_rerun(root)}")
    return table


def read_set_mask(path: str | Path) -> np.ndarray:
    """uint8 (H, W) in {0, 1}: a set's mask PNG by the project's one mask rule (read_mask, HALF_MAX)."""
    return read_mask(Path(path), HALF_MAX).astype(np.uint8)


def read_pair(directory: str | Path, row) -> tuple[np.ndarray, np.ndarray]:
    """(image, mask) of one manifest row of the set in ``directory``: the image uint8 (H, W, C) as
    written, the mask uint8 (H, W) in {0, 1} (:func:`read_set_mask`). An unreadable or truncated
    file, or a mask of another size than its image, is a FastError naming the file."""
    root = Path(directory)
    manifest = root / MANIFEST
    path = root / row["image"]
    try:
        with Image.open(path) as im:
            im.load()
            image = np.asarray(im)
    except (OSError, ValueError, SyntaxError) as exc:
        raise FastError(f"{manifest}: cannot read image {path}: {exc}; {_rerun(root)}") from None
    if image.dtype != np.uint8:
        raise FastError(f"{manifest}: image {path} is {image.dtype}, not 8-bit; {_rerun(root)}")
    image = image[..., None] if image.ndim == 2 else image
    try:
        mask = read_set_mask(root / row["mask"])
    except FastError as exc:
        raise FastError(f"{manifest}: {exc}; {_rerun(root)}") from None
    if mask.shape != image.shape[:2]:
        raise FastError(f"{manifest}: {row['mask']} {mask.shape} and {row['image']} {image.shape[:2]} "
                        f"sizes differ; {_rerun(root)}")
    return image, mask
