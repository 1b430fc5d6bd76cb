"""Registry of dataset formats (docs/protocol.md, "Datasets"), in the manner of anomalib's datamodules.

Each format module in ``fast.data.formats`` holds a download record (:class:`DownloadInfo`) and a
scanner that lists the images of one category as published (:class:`Sample`). Nothing here reads
pixels: that is ``fast.data.prepare``'s job.
"""

from __future__ import annotations

import importlib
import os
import logging
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable

from fast.errors import FastError

log = logging.getLogger(__name__)

# registry name -> module in fast.data.formats
FORMATS = {
    "mvtec_ad": "fast.data.formats.mvtec_ad",
    "btad": "fast.data.formats.btad",
    "visa": "fast.data.formats.visa",
    "mpdd": "fast.data.formats.mpdd",
    "kolektorsdd": "fast.data.formats.kolektorsdd",
    "magnetic_tile": "fast.data.formats.magnetic_tile",
    "folder": "fast.data.formats.folder",
    "synthetic": "fast.data.formats.synthetic",
}

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
# MASK_THRESHOLD of most formats: a mask pixel is anomalous above half the mask's maximum
# (fast.data.prepare.binarize_mask): 0/255, 0/1 and palette-index masks all read right.
HALF_MAX = "half_max"


@dataclass(frozen=True)
class DownloadInfo:
    """Where a dataset is published. ``sha256`` None: no stable checksum is known (say why in
    ``note``); ``url`` None: no stable public URL, a local copy is needed."""

    url: str | None
    sha256: str | None
    filename: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Sample:
    """One image of a category as published.

    ``key``: the image path relative to the category root (POSIX); it names the image in the
    prepared set and is the "file name" the split rules sort by. ``mask``: expected mask path
    (may not exist: prepare reports that), None for normals. ``source_split``: the dataset's own
    train/test split, None where it has none.
    """

    image: Path
    mask: Path | None
    anomaly_type: str
    source_split: str | None
    key: str


@dataclass(frozen=True)
class DatasetFormat:
    name: str
    download: DownloadInfo
    categories: Callable[[Path, dict], list[str]]
    scan: Callable[[Path, str, dict], list[Sample]]
    mask_threshold: int | str  # HALF_MAX, or: a mask pixel is anomalous where its value > mask_threshold
    options: dict        # allowed dataset options and their defaults
    empty_mask_is_normal: bool = False  # an image listed as anomalous whose mask is empty is a normal


def get_format(name: str) -> DatasetFormat:
    if name not in FORMATS:
        raise FastError(f"unknown dataset {name!r}; known datasets: {', '.join(FORMATS)}")
    mod: ModuleType = importlib.import_module(FORMATS[name])
    return DatasetFormat(name=name, download=mod.DOWNLOAD, categories=mod.categories, scan=mod.scan,
                         mask_threshold=mod.MASK_THRESHOLD, options=dict(getattr(mod, "OPTIONS", {})),
                         empty_mask_is_normal=bool(getattr(mod, "EMPTY_MASK_IS_NORMAL", False)))


def resolve_options(fmt: DatasetFormat, options: dict | None) -> dict:
    """The format's default options updated with ``options``; unknown keys are an error."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(fmt.options))
    if unknown:
        allowed = ", ".join(sorted(fmt.options)) or "none"
        raise FastError(f"dataset {fmt.name!r}: unknown option(s) {unknown}; allowed: {allowed}")
    return {**fmt.options, **options}


def check_category(fmt: DatasetFormat, root: Path, category: str, options: dict) -> None:
    known = fmt.categories(root, options)
    if category not in known:
        raise FastError(f"dataset {fmt.name!r}: unknown category {category!r} under {root}; "
                        f"found: {', '.join(known) or 'none'}")


# ---------------------------------------------------------------------------------------------
# helpers shared by the format modules


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise FastError(f"{what}: directory not found: {path}")
    return path


def warn_empty_type(folder: Path, anomaly_type: str) -> None:
    """An anomaly-type folder without images: said, not silently dropped."""
    log.warning("anomaly type folder %s holds no images: type %r is skipped (add its images or remove "
                "the folder)", folder, anomaly_type)


def _refuse_broken_link(p: Path) -> None:
    """A symbolic link to nothing is named, not skipped as if the image were not there."""
    if p.is_symlink() and not p.exists():
        raise FastError(f"{p} is a broken symbolic link (to {os.readlink(p)}): fix the link or remove it, "
                        f"then rerun")


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name (hidden files skipped); a broken
    symbolic link among them is a FastError."""
    if not folder.is_dir():
        return []
    out = []
    for p in folder.iterdir():
        if p.name.startswith(".") or p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        _refuse_broken_link(p)
        if p.is_file():
            out.append(p)
    return sorted(out)


def find_by_stem(folder: Path, stem: str, default_suffix: str = ".png") -> Path:
    """The image file ``folder/stem.<any image suffix, in any case>`` (``.png``, ``.PNG``,
    ``.Png``); the ``default_suffix`` path if none. A broken symbolic link is a FastError."""
    for suffix in IMAGE_SUFFIXES + tuple(s.upper() for s in IMAGE_SUFFIXES):  # the usual spellings first
        p = folder / f"{stem}{suffix}"
        _refuse_broken_link(p)
        if p.is_file():
            return p
    if folder.is_dir():  # then any mix of cases, by listing the folder
        for p in sorted(folder.iterdir()):
            if p.stem == stem and p.suffix.lower() in IMAGE_SUFFIXES:
                _refuse_broken_link(p)
                if p.is_file():
                    return p
    return folder / f"{stem}{default_suffix}"


def subdirs(root: Path) -> list[str]:
    if not root.is_dir():
        raise FastError(f"dataset root not found: {root}")
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def rel_key(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()
