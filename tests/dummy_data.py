"""Tiny dummy copies of every dataset format, written exactly in its published layout (as
anomalib's dummy-dataset generators do), for tests: ``write_dummy(name, root, ...)``.

Images are seeded smooth noise with a brighter defect where the mask is; every file has distinct
content. Masks use each format's own encoding (0/255 PNG, BMP labels, VisA class ids, Magnetic
Tile grey levels with compression noise), so the scanners' thresholds are exercised too.
"""

from __future__ import annotations

import csv
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from fast.data import synthetic


@dataclass
class DummySpec:
    """What a dummy dataset holds (per category)."""

    categories: list[str]
    anomaly_types: list[str]
    n_train_good: int = 4
    n_test_good: int = 2
    n_anomalous: int = 4           # per anomaly type
    size: int = 40
    seed: int = 0
    masks: dict = field(default_factory=dict)  # (category, key) -> bool mask written


DEFAULTS = {
    "mvtec_ad": (["bottle", "grid"], ["broken", "crack"]),
    "mpdd": (["bracket_black"], ["hole", "scratches"]),
    "btad": (["01", "03"], ["ko"]),
    "visa": (["candle", "pcb1"], ["anomaly"]),
    "kolektorsdd": (["kolektorsdd"], ["defect"]),
    "magnetic_tile": (["magnetic_tile"], ["blowhole", "crack", "fray"]),
    "folder": (["parts"], ["dent", "scratch"]),
    "synthetic": (["fabric", "washer"], []),
}


def _rng(spec: DummySpec, *parts) -> np.random.Generator:
    return np.random.default_rng([spec.seed] + [zlib.crc32(str(p).encode()) for p in parts])


def _image(spec: DummySpec, rgb: bool, mask: np.ndarray | None, *key) -> np.ndarray:
    rng = _rng(spec, *key)
    n = spec.size
    base = ndimage.gaussian_filter(rng.random((n, n, 3 if rgb else 1)), (2, 2, 0)) * 120 + 60
    base += rng.integers(0, 40)
    if mask is not None:
        base[mask] += 90
    img = np.clip(base, 0, 255).astype(np.uint8)
    return img if rgb else img[..., 0]


def _mask(spec: DummySpec, *key) -> np.ndarray:
    rng = _rng(spec, "mask", *key)
    n = spec.size
    m = np.zeros((n, n), bool)
    h, w = rng.integers(3, n // 3, 2)
    y, x = rng.integers(0, n - h), rng.integers(0, n - w)
    m[y:y + h, x:x + w] = True
    return m


def _save(path: Path, arr: np.ndarray, **kw) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **kw)


def _mvtec(root: Path, spec: DummySpec, rgb: bool = True) -> None:
    for cat in spec.categories:
        for split, count in (("train", spec.n_train_good), ("test", spec.n_test_good)):
            for i in range(count):
                _save(root / cat / split / "good" / f"{i:03d}.png", _image(spec, rgb, None, cat, split, i))
        for t in spec.anomaly_types:
            for i in range(spec.n_anomalous):
                m = _mask(spec, cat, t, i)
                spec.masks[(cat, f"test/{t}/{i:03d}.png")] = m
                _save(root / cat / "test" / t / f"{i:03d}.png", _image(spec, rgb, m, cat, t, i))
                _save(root / cat / "ground_truth" / t / f"{i:03d}_mask.png", (m * 255).astype(np.uint8))


def _btad(root: Path, spec: DummySpec) -> None:
    for cat in spec.categories:
        ext = ".png" if cat == "02" else ".bmp"  # as published: 01 and 03 are bmp, 02 png
        for split, count in (("train", spec.n_train_good), ("test", spec.n_test_good)):
            for i in range(count):
                _save(root / cat / split / "ok" / f"{i:04d}{ext}", _image(spec, True, None, cat, split, i))
        for i in range(spec.n_anomalous):
            m = _mask(spec, cat, "ko", i)
            spec.masks[(cat, f"test/ko/{i:04d}{ext}")] = m
            _save(root / cat / "test" / "ko" / f"{i:04d}{ext}", _image(spec, True, m, cat, "ko", i))
            _save(root / cat / "ground_truth" / "ko" / f"{i:04d}{'.bmp' if cat == '03' else '.png'}",
                  (m * 255).astype(np.uint8))


def _visa(root: Path, spec: DummySpec) -> None:
    rows = []
    for cat in spec.categories:
        n_good = spec.n_train_good + spec.n_test_good
        for i in range(n_good):
            rel = f"{cat}/Data/Images/Normal/{i:04d}.JPG"
            _save(root / rel, _image(spec, True, None, cat, "normal", i), format="JPEG", quality=95)
            rows.append([cat, "train" if i < spec.n_train_good else "test", "normal", rel, ""])
        for i in range(spec.n_anomalous):
            m = _mask(spec, cat, "anomaly", i)
            rel = f"{cat}/Data/Images/Anomaly/{i:03d}.JPG"
            spec.masks[(cat, f"Data/Images/Anomaly/{i:03d}.JPG")] = m
            _save(root / rel, _image(spec, True, m, cat, "anomaly", i), format="JPEG", quality=95)
            mrel = f"{cat}/Data/Masks/Anomaly/{i:03d}.png"
            _save(root / mrel, (m * (1 + i % 3)).astype(np.uint8))  # class ids 1..3, not 255
            rows.append([cat, "test", "anomaly", rel, mrel])
    (root / "split_csv").mkdir(parents=True, exist_ok=True)
    with (root / "split_csv" / "1cls.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["object", "split", "label", "image", "mask"])
        w.writerows(rows)


def _kolektorsdd(root: Path, spec: DummySpec) -> None:
    n_good = spec.n_train_good + spec.n_test_good
    total = n_good + spec.n_anomalous
    for j in range(total):
        folder, part = f"kos{j // 3 + 1:02d}", f"Part{j % 3}"
        anomalous = j % 2 == 1 and j // 2 < spec.n_anomalous
        m = _mask(spec, folder, part) if anomalous else np.zeros((spec.size, spec.size), bool)
        if anomalous:
            spec.masks[("kolektorsdd", f"{folder}/{part}.jpg")] = m
        _save(root / folder / f"{part}.jpg", _image(spec, False, m if anomalous else None, folder, part),
              format="JPEG", quality=95)
        _save(root / folder / f"{part}_label.bmp", (m * 255).astype(np.uint8))


def kolektorsdd_counts(spec: DummySpec) -> tuple[int, int]:
    """(normals, anomalous) that _kolektorsdd writes for ``spec``."""
    total = spec.n_train_good + spec.n_test_good + spec.n_anomalous
    n_anom = min(spec.n_anomalous, total // 2)
    return total - n_anom, n_anom


def _magnetic_tile(root: Path, spec: DummySpec) -> None:
    def write(folder, stem, m, key):
        rng = _rng(spec, "noise", folder, stem)
        grey = np.where(m, 255 - rng.integers(0, 60, m.shape), rng.integers(0, 60, m.shape)).astype(np.uint8)
        _save(root / folder / "Imgs" / f"{stem}.jpg", _image(spec, False, m if m.any() else None, *key),
              format="JPEG", quality=95)
        _save(root / folder / "Imgs" / f"{stem}.png", grey)

    for i in range(spec.n_train_good + spec.n_test_good):
        write("MT_Free", f"exp{i % 3}_num_{1000 + i}", np.zeros((spec.size, spec.size), bool), ("free", i))
    for t in spec.anomaly_types:
        for i in range(spec.n_anomalous):
            m = _mask(spec, t, i)
            stem = f"exp{i % 2}_num_{500 + 7 * i}"
            spec.masks[("magnetic_tile", f"MT_{t.capitalize()}/Imgs/{stem}.jpg")] = m
            write(f"MT_{t.capitalize()}", stem, m, (t, i))
    (root / "README.md").write_text("dummy Magnetic Tile layout\n")


def _folder(root: Path, spec: DummySpec) -> None:
    for cat in spec.categories:
        for i in range(spec.n_train_good + spec.n_test_good):
            _save(root / cat / "normal" / f"n{i:03d}.png", _image(spec, True, None, cat, "normal", i))
        for t in spec.anomaly_types:
            for i in range(spec.n_anomalous):
                m = _mask(spec, cat, t, i)
                spec.masks[(cat, f"images/{t}/{t}_{i:03d}.png")] = m
                _save(root / cat / "images" / t / f"{t}_{i:03d}.png", _image(spec, True, m, cat, t, i))
                _save(root / cat / "masks" / t / f"{t}_{i:03d}.png", (m * 255).astype(np.uint8))


def write_dummy(name: str, root: str | Path, categories: list[str] | None = None,
                anomaly_types: list[str] | None = None, **kw) -> DummySpec:
    """Write a dummy ``name`` dataset under ``root`` (the layout ``fast prepare --root`` reads);
    return its spec (including the boolean masks written, keyed by (category, sample key))."""
    cats, types = DEFAULTS[name]
    spec = DummySpec(categories=list(categories or cats), anomaly_types=list(anomaly_types or types), **kw)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if name == "synthetic":
        spec.anomaly_types = []
        synthetic.generate(root, {"image_size": spec.size, "n_normal_train": spec.n_train_good,
                                  "n_normal_test": spec.n_test_good, "n_anomalous_per_type": spec.n_anomalous,
                                  "categories": spec.categories}, seed=spec.seed)
    elif name in ("mvtec_ad", "mpdd"):
        _mvtec(root, spec)
    else:
        {"btad": _btad, "visa": _visa, "kolektorsdd": _kolektorsdd, "magnetic_tile": _magnetic_tile,
         "folder": _folder}[name](root, spec)
    return spec
