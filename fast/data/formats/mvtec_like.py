"""The MVTec AD layout, shared by MVTec AD, MPDD and the embedded synthetic set:
``<cat>/train/good/*``, ``<cat>/test/{good,<type>}/*``, ``<cat>/ground_truth/<type>/<stem>_mask.png``.
"""

from __future__ import annotations

from pathlib import Path

from fast.data.registry import Sample, find_by_stem, list_images, rel_key, require_dir, subdirs, warn_empty_type

GOOD_DIR = "good"


def categories(root: Path, options: dict) -> list[str]:
    root = Path(root)
    return [c for c in subdirs(root) if (root / c / "train").is_dir() or (root / c / "test").is_dir()]


def scan(root: Path, category: str, options: dict, mask_suffix: str = "_mask") -> list[Sample]:
    cat = require_dir(Path(root) / category, f"category {category!r}")
    out = []
    for split in ("train", "test"):
        split_dir = cat / split
        if not split_dir.is_dir():
            continue
        for type_dir in sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            images = list_images(type_dir)
            if not images and type_dir.name != GOOD_DIR:
                warn_empty_type(type_dir, type_dir.name)
            for img in images:
                if type_dir.name == GOOD_DIR:
                    out.append(Sample(img, None, "good", split, rel_key(img, cat)))
                else:
                    mask = find_by_stem(cat / "ground_truth" / type_dir.name, img.stem + mask_suffix)
                    out.append(Sample(img, mask, type_dir.name, split, rel_key(img, cat)))
    return out
