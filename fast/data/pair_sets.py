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
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from fast.io import atomic_dir, write_json, write_png

MANIFEST = "manifest.csv"
TIMING = "timing.json"
IMAGES, MASKS = "images", "masks"
MANIFEST_BASE_COLUMNS = ["image", "mask", "source_normal", "mask_source", "anomaly_type", "seed"]
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
