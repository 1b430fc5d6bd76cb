"""Magnetic Tile Defects (Huang et al. 2018): ``MT_<Type>/Imgs/<stem>.jpg`` + ``<stem>.png`` mask
(grey levels: > 127 is defect); ``MT_Free`` holds the normals. One category; no train/test split.

Option ``types``: the defect types to keep (default: all five). config/magnetic_tile.yaml keeps the
localised ones (blowhole, break, crack); its header says why."""

from __future__ import annotations

from pathlib import Path

from fast.data.registry import HALF_MAX, DownloadInfo, Sample, rel_key, require_dir, subdirs, warn_empty_type
from fast.errors import FastError

# GitHub generates the archive on request; its bytes are not guaranteed stable, so no checksum
# is pinned (pass --sha256 to pin the copy you trust).
DOWNLOAD = DownloadInfo(
    url="https://github.com/abin24/Magnetic-tile-defect-datasets./archive/refs/heads/master.zip",
    sha256=None,
    filename="Magnetic-tile-defect-datasets.-master.zip",
    note="GitHub-generated archive of branch master: no stable checksum published",
)
CATEGORY = "magnetic_tile"
MASK_THRESHOLD = HALF_MAX
OPTIONS: dict = {"types": None}   # None: every MT_<Type> folder
NORMAL_DIR = "MT_Free"


def categories(root: Path, options: dict) -> list[str]:
    return [CATEGORY] if any(d.startswith("MT_") for d in subdirs(Path(root))) else []


def scan(root: Path, category: str, options: dict) -> list[Sample]:
    root = require_dir(Path(root), "magnetic_tile root")
    folders = [f for f in subdirs(root) if f.startswith("MT_")]
    present = sorted(f[len("MT_"):].lower() for f in folders if f != NORMAL_DIR)
    keep = options.get("types")
    if keep is not None:
        unknown = sorted(set(keep) - set(present))
        if unknown:
            raise FastError(f"magnetic_tile option types: unknown {', '.join(unknown)} under {root}; "
                            f"present: {', '.join(present)}")
    out = []
    for folder in folders:
        if folder != NORMAL_DIR and keep is not None and folder[len("MT_"):].lower() not in keep:
            continue
        imgs = sorted((root / folder / "Imgs").glob("*.jpg"))
        if not imgs and folder != NORMAL_DIR:
            warn_empty_type(root / folder / "Imgs", folder[len("MT_"):].lower())
        for img in imgs:
            mask = img.with_suffix(".png")
            if folder == NORMAL_DIR:
                out.append(Sample(img, None, "good", None, rel_key(img, root)))
            else:
                atype = folder[len("MT_"):].lower()
                out.append(Sample(img, mask, atype, None, rel_key(img, root)))
    return out
