"""Synthetic pairs (plus the normal images) in the folder layouts that segmentation toolkits read.

- ``smp``: ``images/`` + ``masks/`` (same file names, masks 0/255 PNG), the plain layout most
  segmentation_models_pytorch training scripts read;
- ``mmseg``: ``img_dir/train/`` + ``ann_dir/train/`` (same file names, label PNGs with 0 = background
  and 1 = defect, as MMSegmentation's custom datasets expect);
- ``anomalib``: ``normal/``, ``abnormal/`` and ``mask/`` (0/255; a mask has its abnormal image's
  name), the layout of anomalib's ``Folder`` datamodule.

Normal images go in every layout: with all-zero masks in ``smp`` and ``mmseg`` (a segmenter needs
defect-free examples too), in ``normal/`` in ``anomalib``. Synthetic files keep their names from
the synthetic set; normals are named ``normal_<name>.png`` so the two never collide.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from fast.data.pair_sets import read_set, read_set_mask
from fast.errors import FastError
from fast.io import read_png, write_png

FORMATS = ("smp", "mmseg", "anomalib")


def pairs(synthetic: Path) -> list[tuple[Path, Path]]:
    """(image, mask) paths of every row of a synthetic set's manifest (fast.data.pair_sets.read_set)."""
    table = read_set(synthetic)
    return [(synthetic / r["image"], synthetic / r["mask"]) for _, r in table.iterrows()]


def _write(dest: Path, fmt: str, synthetic: list[tuple[Path, Path]], normals: list[Path]) -> None:
    # (image folder, mask folder, mask scale) of each layout; anomalib keeps its normals apart
    image_dir, mask_dir, scale = {"smp": ("images", "masks", 255), "mmseg": ("img_dir/train", "ann_dir/train", 1),
                                  "anomalib": ("abnormal", "mask", 255)}[fmt]
    for sub in (image_dir, mask_dir) + (("normal",) if fmt == "anomalib" else ()):
        (dest / sub).mkdir(parents=True, exist_ok=True)
    for image, mask in synthetic:
        shutil.copyfile(image, dest / image_dir / image.name)
        write_png(dest / mask_dir / image.name, read_set_mask(mask) * np.uint8(scale))
    for image in normals:
        name = f"normal_{image.name}"
        if fmt == "anomalib":
            shutil.copyfile(image, dest / "normal" / name)
            continue
        shape = read_png(image).shape[:2]
        shutil.copyfile(image, dest / image_dir / name)
        write_png(dest / mask_dir / name, np.zeros(shape, np.uint8))


def export(dest: str | Path, fmt: str, synthetic: str | Path, normals: list[Path]) -> Path:
    """Write the synthetic set in ``synthetic`` (images/, masks/, manifest.csv) and the ``normals``
    (image paths) in layout ``fmt`` under ``dest`` (a fresh directory). Returns ``dest``."""
    if fmt not in FORMATS:
        raise FastError(f"--export {fmt!r}: unknown layout; choose one of {', '.join(FORMATS)}")
    dest = Path(dest)
    _write(dest, fmt, pairs(Path(synthetic)), [Path(p) for p in normals])
    return dest


__all__ = ["FORMATS", "export", "pairs"]
