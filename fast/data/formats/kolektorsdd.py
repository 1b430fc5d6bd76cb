"""KolektorSDD (Tabernik et al. 2020): 50 folders ``kosNN/PartK.jpg`` + ``PartK_label.bmp``; an
image is anomalous if any label pixel is > 0. One category; no train/test split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from fast.data.registry import DownloadInfo, Sample, list_images, rel_key, require_dir, subdirs
from fast.errors import FastError

# As in anomalib's Kolektor datamodule (src/anomalib/data/datamodules/image/kolektor.py).
DOWNLOAD = DownloadInfo(
    url="https://go.vicos.si/kolektorsdd",
    sha256="65dc621693418585de9c4467d1340ea7958a6181816f0dc2883a1e8b61f9d4dc",
    filename="KolektorSDD.zip",
)
CATEGORY = "kolektorsdd"
MASK_THRESHOLD = 0
OPTIONS: dict = {}
ANOMALY_TYPE = "defect"


def categories(root: Path, options: dict) -> list[str]:
    root = Path(root)
    return [CATEGORY] if any(list_images(root / d) for d in subdirs(root)) else []


def scan(root: Path, category: str, options: dict) -> list[Sample]:
    root = require_dir(Path(root), "kolektorsdd root")
    out = []
    for folder in subdirs(root):
        for img in list_images(root / folder):
            if img.stem.endswith("_label"):
                continue
            label = root / folder / f"{img.stem}_label.bmp"
            if not label.is_file():
                raise FastError(f"kolektorsdd: missing label {label} for image {img}")
            try:
                anomalous = bool((np.asarray(Image.open(label)) > MASK_THRESHOLD).any())
            except OSError as exc:
                raise FastError(f"kolektorsdd: cannot read label {label}: {exc}") from None
            if anomalous:
                out.append(Sample(img, label, ANOMALY_TYPE, None, rel_key(img, root)))
            else:
                out.append(Sample(img, None, "good", None, rel_key(img, root)))
    return out
