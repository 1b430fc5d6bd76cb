"""BTAD (BeanTech, Mishra et al. 2021): categories 01-03,
``<cat>/train/ok``, ``<cat>/test/{ok,ko}``, ``<cat>/ground_truth/ko/<stem>.(png|bmp)``."""

from __future__ import annotations

from pathlib import Path

from fast.data.registry import HALF_MAX, DownloadInfo, Sample, find_by_stem, list_images, rel_key, require_dir, subdirs

# As in anomalib's BTech datamodule (src/anomalib/data/datamodules/image/btech.py); the archive
# holds one folder BTech_Dataset_transformed/ (stripped on extraction).
DOWNLOAD = DownloadInfo(
    url="https://avires.dimi.uniud.it/papers/btad/btad.zip",
    sha256="461c9387e515bfed41ecaae07c50cf6b10def647b36c9e31d239ab2736b10d2a",
    filename="btad.zip",
)
CATEGORIES = ["01", "02", "03"]
MASK_THRESHOLD = HALF_MAX
OPTIONS: dict = {}
ANOMALY_TYPE = "ko"


def categories(root: Path, options: dict) -> list[str]:
    root = Path(root)
    return [c for c in subdirs(root) if (root / c / "train" / "ok").is_dir() or (root / c / "test").is_dir()]


def scan(root: Path, category: str, options: dict) -> list[Sample]:
    cat = require_dir(Path(root) / category, f"category {category!r}")
    out = []
    for split in ("train", "test"):
        for img in list_images(cat / split / "ok"):
            out.append(Sample(img, None, "good", split, rel_key(img, cat)))
    for img in list_images(cat / "test" / "ko"):
        mask = find_by_stem(cat / "ground_truth" / "ko", img.stem)
        out.append(Sample(img, mask, ANOMALY_TYPE, "test", rel_key(img, cat)))
    return out
