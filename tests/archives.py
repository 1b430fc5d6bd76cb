"""Dummy Magnetic Tile sources and zip archives for the fetch tests (not a test module)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from dummy_data import write_dummy


def mt_source_dir(tmp: Path) -> Path:
    """A dummy Magnetic Tile repository as GitHub archives it: one wrapper folder."""
    src = Path(tmp) / "src" / "Magnetic-tile-defect-datasets.-master"
    write_dummy("magnetic_tile", src, n_anomalous=2, n_train_good=2, n_test_good=1)
    return src


def make_zip(folder: Path, dest: Path) -> Path:
    with zipfile.ZipFile(dest, "w") as zf:
        for p in sorted(folder.rglob("*")):
            zf.write(p, p.relative_to(folder.parent))
    return dest
