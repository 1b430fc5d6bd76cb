"""Any user data: ``<category>/images/`` + ``<category>/masks/`` (same stem, any image suffix),
optional ``<category>/normal/``. Anomaly types: subfolders of ``images/`` (masks in the same
subfolder of ``masks/``), or files directly in ``images/`` (type from option ``anomaly_type``).
If the root itself holds ``images/``, it is the one category, named after the root folder.
No train/test split: normals are split 80/20 (seeded). An image of ``images/`` whose mask is empty
(all zero) is a normal (EMPTY_MASK_IS_NORMAL); masks are binarised at half their maximum (0/255,
0/1 and palette-index masks alike)."""

from __future__ import annotations

from pathlib import Path

from fast.data.registry import HALF_MAX, DownloadInfo, Sample, find_by_stem, list_images, rel_key, require_dir, subdirs, warn_empty_type

DOWNLOAD = DownloadInfo(url=None, sha256=None, note="the user's own data: pass --source PATH")
MASK_THRESHOLD = HALF_MAX
EMPTY_MASK_IS_NORMAL = True
OPTIONS = {"anomaly_type": "defect", "images": "images", "masks": "masks", "normal": "normal"}


def _category_dir(root: Path, category: str, options: dict) -> Path:
    root = Path(root)
    if (root / options["images"]).is_dir() and category == root.name:
        return root
    return require_dir(root / category, f"category {category!r}")


def categories(root: Path, options: dict) -> list[str]:
    options = {**OPTIONS, **options}
    root = Path(root)
    if (root / options["images"]).is_dir():
        return [root.name]
    return [c for c in subdirs(root) if (root / c / options["images"]).is_dir()]


def scan(root: Path, category: str, options: dict) -> list[Sample]:
    options = {**OPTIONS, **options}
    cat = _category_dir(root, category, options)
    images, masks = cat / options["images"], cat / options["masks"]
    out = [Sample(img, None, "good", None, rel_key(img, cat)) for img in list_images(cat / options["normal"])]
    for img in list_images(images):
        out.append(Sample(img, find_by_stem(masks, img.stem), options["anomaly_type"], None, rel_key(img, cat)))
    for sub in subdirs(images):
        files = list_images(images / sub)
        if not files:
            warn_empty_type(images / sub, sub)
        for img in files:
            out.append(Sample(img, find_by_stem(masks / sub, img.stem), sub, None, rel_key(img, cat)))
    return out
