"""The prepared-dataset contract: ``<prepared>/<dataset>/<category>/manifest.csv``.

One row per image with (at least) the columns of MANIFEST_COLUMNS; paths relative to the
manifest's directory; ``mask`` empty for normals; ``anomaly_type`` is ``good`` for normals.
Every consumer reads prepared data through :class:`PreparedCategory`, whose views keep the
split rules of docs/protocol.md: only ``gen_train`` anomalies and ``normal_train`` normals are ever
handed to a training step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from fast.errors import FastError
from fast.io import read_table

MANIFEST_COLUMNS = ["image", "mask", "category", "anomaly_type", "split", "sha256"]
SPLITS = ("gen_train", "seg_test", "normal_train", "normal_test")
TRAIN_SPLITS = ("gen_train", "normal_train")
TEST_SPLITS = ("seg_test", "normal_test")
GOOD = "good"


def manifest_path(prepared_root: str | Path, dataset: str, category: str) -> Path:
    return Path(prepared_root) / dataset / category / "manifest.csv"


@dataclass
class PreparedCategory:
    """Read access to one prepared (dataset, category)."""

    manifest: Path
    table: pd.DataFrame

    @classmethod
    def load(cls, manifest: str | Path) -> "PreparedCategory":
        manifest = Path(manifest)
        if manifest.is_dir():
            manifest = manifest / "manifest.csv"
        if not manifest.is_file():
            raise FastError(f"prepared manifest not found: {manifest} (run `fast prepare` first)")
        table = read_table(manifest, "`fast prepare` of this dataset")
        missing = [c for c in MANIFEST_COLUMNS if c not in table.columns]
        if missing:
            raise FastError(f"{manifest}: missing columns {missing}")
        bad = sorted(set(table["split"]) - set(SPLITS))
        if bad:
            raise FastError(f"{manifest}: unknown split values {bad}; expected {list(SPLITS)}")
        return cls(manifest, table)

    @property
    def root(self) -> Path:
        return self.manifest.parent

    @property
    def category(self) -> str:
        return str(self.table["category"].iloc[0])

    @property
    def anomaly_types(self) -> list[str]:
        return sorted(set(self.table.loc[self.table["anomaly_type"] != GOOD, "anomaly_type"]))

    def rows(self, *splits: str, anomaly_type: str | None = None) -> pd.DataFrame:
        for s in splits:
            if s not in SPLITS:
                raise FastError(f"unknown split {s!r}; expected one of {list(SPLITS)}")
        t = self.table[self.table["split"].isin(splits)]
        if anomaly_type is not None:
            t = t[t["anomaly_type"] == anomaly_type]
        return t.reset_index(drop=True)

    def load_image(self, row) -> np.ndarray:
        """uint8 array (H, W, C), C = 1 (grayscale) or 3 (RGB)."""
        path = self.root / row["image"]
        try:
            arr = np.asarray(Image.open(path))
        except (OSError, ValueError) as exc:
            raise FastError(f"cannot read image {path}: {exc}") from None
        if arr.ndim == 2:
            arr = arr[..., None]
        return arr.astype(np.uint8, copy=False)

    def load_mask(self, row) -> np.ndarray:
        """uint8 array (H, W) with values {0, 1}; all zeros for normal images."""
        if not row["mask"]:
            img = self.load_image(row)
            return np.zeros(img.shape[:2], np.uint8)
        path = self.root / row["mask"]
        try:
            arr = np.asarray(Image.open(path))
        except (OSError, ValueError) as exc:
            raise FastError(f"cannot read mask {path}: {exc}") from None
        if arr.ndim == 3:
            arr = arr[..., 0]
        return (arr > 127).astype(np.uint8) if arr.max() > 1 else arr.astype(np.uint8)

    @property
    def channels(self) -> int:
        return int(self.load_image(self.table.iloc[0]).shape[2])

    @property
    def resolution(self) -> int:
        """The side the images were prepared at (prepare.json; a copy without it: the first image's)."""
        import json

        try:
            return int(json.loads((self.root / "prepare.json").read_text())["resolution"])
        except (OSError, ValueError, KeyError, TypeError):
            return int(self.load_image(self.table.iloc[0]).shape[0])
