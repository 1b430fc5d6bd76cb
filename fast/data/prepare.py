"""`fast prepare`: a local copy as published -> ``OUT/<dataset>/<category>/manifest.csv`` plus the
resized images and masks beside it, split by the rules of docs/protocol.md (fast.data.splits).

Every category directory is written to a temporary name and renamed only when all requested
categories are complete: bad input (unknown dataset or category, unreadable image, missing mask,
mask of another size than its image) is a FastError and leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image, ImageOps

from fast.data.manifest import GOOD, MANIFEST_COLUMNS, SPLITS
from fast.data.registry import HALF_MAX, DatasetFormat, Sample
from fast.data.splits import assign_splits, drop_test_duplicates
from fast.errors import FastError
from fast.io import write_json, write_png

log = logging.getLogger(__name__)

EXTRA_COLUMNS = ["source", "source_mask", "mask_sha256"]
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


def parse_options(text: str | dict | None) -> dict:
    if text is None or isinstance(text, dict):
        return dict(text or {})
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FastError(f"--options is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise FastError("--options must be a JSON object, e.g. '{\"image_size\": 64}'")
    return value


# ---------------------------------------------------------------------------------------------
# pixels


# a mask marking more than this fraction of its image as defect most likely has a white
# background (inverted): said, since it would train and score the background as the defect
WHITE_BACKGROUND_FRACTION = 0.5
EXIF_ORIENTATION = 0x0112  # the EXIF tag of a camera's orientation (1: upright)


def _upright(im: Image.Image) -> Image.Image:
    """The image as a viewer shows it: a camera's EXIF orientation applied (photos and masks alike,
    so that a mask drawn on the displayed photo still fits it)."""
    return ImageOps.exif_transpose(im) if im.getexif().get(EXIF_ORIENTATION, 1) != 1 else im


def read_image(path: Path, channels: int) -> np.ndarray:
    """uint8 (H, W, channels), upright; any unreadable or truncated file is a FastError naming it."""
    try:
        with Image.open(path) as im:
            im.load()
            im = _upright(im)
            if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                arr = np.asarray(im, dtype=np.float64)
                arr = np.round(255 * (arr - arr.min()) / max(arr.max() - arr.min(), 1e-12))
                im = Image.fromarray(arr.astype(np.uint8))
            arr = np.asarray(im.convert("L" if channels == 1 else "RGB"))
    except (OSError, ValueError, SyntaxError) as exc:
        raise FastError(f"cannot read image {path}: {exc}") from None
    return arr[..., None] if arr.ndim == 2 else arr


def binarize_mask(arr: np.ndarray, threshold: int | str, palette_black_index0: bool = False) -> np.ndarray:
    """bool (H, W). ``threshold`` "half_max": anomalous where the value is above half the mask's
    maximum, so that 0/1 masks (mode 1, L with values 0/1, palette index 1) and 0/255 masks (also
    with JPEG noise near the edges) both read right; an integer: where the value is > threshold
    (class ids: > 0)."""
    arr = np.asarray(arr)
    if arr.ndim == 3:
        arr = arr.max(axis=2)
    arr = arr.astype(np.float64)
    if threshold == HALF_MAX:
        if palette_black_index0:
            return arr > 0
        top = float(arr.max()) if arr.size else 0.0
        return arr > top / 2 if top > 0 else np.zeros(arr.shape, bool)
    return arr > float(threshold)


def read_mask(path: Path, threshold: int | str) -> np.ndarray:
    """bool (H, W) (see :func:`binarize_mask`). Palette images: with ``half_max``, the palette
    index when index 0 is black (class ids: index > 0), else the palette colours' grey level.
    Upright (EXIF orientation); a mask that is mostly defect is warned about (a white background?)."""
    try:
        with Image.open(path) as im:
            im.load()
            im = _upright(im)
            black0 = False
            if im.mode == "P":
                pal = im.getpalette() or [0, 0, 0]
                black0 = tuple(pal[:3]) == (0, 0, 0) or threshold != HALF_MAX
                if not black0:
                    im = im.convert("L")
            if im.mode not in ("L", "P", "1", "I", "I;16", "I;16B", "I;16L", "F"):
                im = im.convert("L")
            arr = np.asarray(im)
    except (OSError, ValueError, SyntaxError) as exc:
        raise FastError(f"cannot read mask {path}: {exc}") from None
    mask = binarize_mask(arr, threshold, black0)
    if mask.size and mask.mean() > WHITE_BACKGROUND_FRACTION:
        log.warning("mask %s marks %.0f%% of its image as defect: is its background white? (a mask is black "
                    "(0) with the defect white; invert it if so)", path, 100 * mask.mean())
    return mask


def image_channels(paths: list[Path]) -> int:
    """3 if any image of the category is colour, else 1 (header reads only)."""
    for p in paths:
        try:
            with Image.open(p) as im:
                if im.mode not in GRAY_MODES:
                    return 3
        except (OSError, ValueError, SyntaxError) as exc:
            raise FastError(f"cannot read image {p}: {exc}") from None
    return 1


def resize_image(img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    interp = cv2.INTER_AREA if size <= min(h, w) else cv2.INTER_CUBIC
    out = cv2.resize(img, (size, size), interpolation=interp)
    return out[..., None] if out.ndim == 2 else out


def resize_mask(mask: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Area-resize to ``size`` x ``size`` (or to the (h, w) ``size``) then threshold 0.5; if that
    empties a non-empty mask, keep every output pixel the defect touches (max-pooling), so that
    small defects never vanish. uint8 {0, 1}. The one numpy mask resize of the package (the z-grid
    one on tensors: fast.diffusion.masks.resize_mask, same rule)."""
    h, w = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if mask.shape == (h, w):
        return (np.asarray(mask) > 0).astype(np.uint8)
    cover = cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    out = cover >= 0.5
    if not out.any() and mask.any():
        out = cover > 0
    return out.astype(np.uint8)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------


def _relative(path: Path, root: Path, category: str) -> str:
    """``path`` relative to the category folder (as sample keys are), else to the root."""
    for base in (root / category, root):
        if path.is_relative_to(base):
            return path.relative_to(base).as_posix()
    return str(path)


def _name(sample: Sample) -> str:
    return Path(sample.key).with_suffix("").as_posix().replace("/", "__")


def _check_counts(fmt: DatasetFormat, root: Path, category: str, samples: list[Sample],
                  assigned: list[tuple[Sample, str]]) -> None:
    """Every method needs normal_train images and gen_train anomalies: a category without them
    is refused here, not by a later stage."""
    where = f"dataset {fmt.name!r}, category {category!r} under {root}"
    layout = f"see the layout in fast/data/formats/{fmt.name}.py"
    if not any(s.anomaly_type == GOOD for s in samples):
        raise FastError(f"{where}: no normal (defect-free) images found; every method synthesises on "
                        f"normal images: add them ({layout})")
    if not any(s.anomaly_type != GOOD for s in samples):
        extra = " (images whose mask is empty count as normals)" if fmt.empty_mask_is_normal else ""
        raise FastError(f"{where}: no anomalous images with masks found{extra}; the generators and the "
                        f"segmenter need real defects: add them ({layout})")
    if not any(split == "normal_train" for _, split in assigned):
        raise FastError(f"{where}: all normal images are in the dataset's test split, none is left for "
                        f"normal_train; add training normals ({layout})")


def _check_test_splits(fmt: DatasetFormat, root: Path, category: str, rows: list[dict]) -> None:
    """The benchmark's numbers come from seg_test (defects) and normal_test (false alarms): a
    category with either empty would still get a number, measuring nothing. Checked after test
    duplicates of training images were dropped."""
    counts = Counter(r["split"] for r in rows)
    said = ", ".join(f"{s} {counts.get(s, 0)}" for s in SPLITS)
    where = f"dataset {fmt.name!r}, category {category!r} under {root}"
    if not counts.get("seg_test"):
        raise FastError(f"{where}: no anomalous image is left for seg_test ({said}); each anomaly type needs "
                        f"at least 2 distinct images (a third of them, rounded up, go to gen_train): add "
                        f"anomalous images")
    if not counts.get("normal_test"):
        raise FastError(f"{where}: no normal image is left for normal_test ({said}); false alarms could not "
                        f"be measured: add normal images (at least 2, or test normals where the dataset "
                        f"splits them)")


def prepare_category(fmt: DatasetFormat, root: Path, category: str, out_dir: Path,
                     resolution: int, seed: int, options: dict) -> dict:
    """Write one prepared category into ``out_dir`` (a fresh directory). Returns a summary."""
    samples = fmt.scan(root, category, options)
    if not samples:
        raise FastError(f"dataset {fmt.name!r}, category {category!r}: no images found under {root}")
    names: dict[str, str] = {}
    for s in samples:
        other = names.setdefault(_name(s), s.key)
        if other != s.key:
            raise FastError(f"{fmt.name}/{category}: {s.key} and {other} would get the same prepared name")
    masks_read: dict[str, np.ndarray] = {}
    as_normals: list[str] = []
    if fmt.empty_mask_is_normal:  # e.g. `folder`: an image whose mask is empty is defect-free
        kept = []
        for s in samples:
            if s.anomaly_type != GOOD and s.mask is not None and s.mask.is_file():
                masks_read[s.key] = read_mask(s.mask, fmt.mask_threshold)
                if not masks_read[s.key].any():
                    as_normals.append(s.key)
                    s = Sample(s.image, None, GOOD, s.source_split, s.key)
            kept.append(s)
        samples = kept
        if as_normals:
            log.info("%s/%s: %d image(s) with an empty mask counted as normals", fmt.name, category,
                     len(as_normals))
    assigned = assign_splits(samples, seed, category)
    _check_counts(fmt, root, category, samples, assigned)
    channels = image_channels([s.image for s in samples])
    (out_dir / "images").mkdir(parents=True)
    (out_dir / "masks").mkdir()
    rows, empty = [], []
    for sample, split in assigned:
        img = read_image(sample.image, channels)
        row = {"image": f"images/{_name(sample)}.png", "mask": "", "category": category,
               "anomaly_type": sample.anomaly_type, "split": split, "sha256": "",
               "source": sample.key, "source_mask": "", "mask_sha256": ""}
        if sample.anomaly_type != GOOD:
            if sample.mask is None or not sample.mask.is_file():
                raise FastError(f"missing mask {sample.mask} for anomalous image {sample.image}")
            mask = masks_read.pop(sample.key, None)
            if mask is None:
                mask = read_mask(sample.mask, fmt.mask_threshold)
            if mask.shape != img.shape[:2]:
                raise FastError(f"mask {sample.mask} has size {mask.shape[1]}x{mask.shape[0]} but its "
                                f"image {sample.image} is {img.shape[1]}x{img.shape[0]}")
            if not mask.any():  # kept (the published label), but listed in prepare.json
                log.warning("%s: anomalous image with an empty mask", sample.image)
                empty.append(sample.key)
            row["mask"] = f"masks/{_name(sample)}.png"
            row["source_mask"] = _relative(sample.mask, root, category)
            write_png(out_dir / row["mask"], resize_mask(mask, resolution) * 255)
            row["mask_sha256"] = _sha256(out_dir / row["mask"])
        write_png(out_dir / row["image"], resize_image(img, resolution))
        row["sha256"] = _sha256(out_dir / row["image"])
        rows.append(row)
    rows, dropped = drop_test_duplicates(rows)
    _check_test_splits(fmt, root, category, rows)
    for r in dropped:
        log.warning("%s/%s: %s (%s) duplicates a training image; dropped from %s",
                    fmt.name, category, r["source"], r["sha256"][:12], r["split"])
        (out_dir / r["image"]).unlink(missing_ok=True)  # a duplicate name never shares a file
        if r["mask"]:
            (out_dir / r["mask"]).unlink(missing_ok=True)
    split_rank = {s: i for i, s in enumerate(SPLITS)}
    rows.sort(key=lambda r: (split_rank[r["split"]], r["anomaly_type"], r["image"]))
    table = pd.DataFrame(rows, columns=MANIFEST_COLUMNS + EXTRA_COLUMNS)
    table.to_csv(out_dir / "manifest.csv", index=False, lineterminator="\n")
    counts = {s: int((table["split"] == s).sum()) for s in SPLITS}
    summary = {"dataset": fmt.name, "category": category, "resolution": resolution, "seed": seed,
               "channels": channels, "counts": counts, "anomaly_types": sorted(set(table["anomaly_type"]) - {GOOD}),
               "dropped_test_duplicates": [r["source"] for r in dropped], "empty_masks": empty,
               "empty_masks_as_normals": as_normals}
    write_json(out_dir / "prepare.json", summary)
    return summary
