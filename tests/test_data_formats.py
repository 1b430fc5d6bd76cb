"""Every dataset format is scanned and prepared from dummy data written in its exact published
layout (tests/dummy_data.py); Magnetic Tile also from the real copy."""

from __future__ import annotations

import argparse
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dummy_data import DEFAULTS, kolektorsdd_counts, write_dummy
from fast.data.manifest import PreparedCategory
from fast.data.prepare import resize_mask
from fast.data.registry import FORMATS, get_format, resolve_options
from fast.errors import FastError
from fast.commands.prepare import run_prepare

REAL_MT = Path("/work/shared/datasets/magnetic_tile")
NO_SPLIT = {"kolektorsdd", "magnetic_tile", "folder"}  # normals split 80/20 (seeded)


def prepare(name, root, out, resolution=32, category=None, seed=0, options=None):
    run_prepare(argparse.Namespace(dataset=name, root=str(root), out=str(out), category=category,
                                   resolution=resolution, seed=seed, options=options))


def test_registry_lists_exactly_the_protocol_datasets():
    assert sorted(FORMATS) == sorted(["mvtec_ad", "btad", "visa", "mpdd", "kolektorsdd", "magnetic_tile",
                                      "folder", "synthetic"])
    for name in FORMATS:
        info = get_format(name).download
        if info.sha256 is not None:
            assert len(info.sha256) == 64 and int(info.sha256, 16) >= 0
            assert info.url and info.url.startswith("https://")
        else:
            assert info.note  # says why there is no checksum


@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_scan_dummy_format(name, tmp_path):
    spec = write_dummy(name, tmp_path / name)
    fmt = get_format(name)
    assert fmt.categories(tmp_path / name, fmt.options) == sorted(spec.categories)
    for cat in spec.categories:
        samples = fmt.scan(tmp_path / name, cat, fmt.options)
        normals = [s for s in samples if s.anomaly_type == "good"]
        anomalous = [s for s in samples if s.anomaly_type != "good"]
        if name == "kolektorsdd":
            n_good, n_anom = kolektorsdd_counts(spec)
            assert (len(normals), len(anomalous)) == (n_good, n_anom)
        elif name == "synthetic":
            from fast.data.synthetic import DEFECT_TYPES
            assert len(anomalous) == spec.n_anomalous * len(DEFECT_TYPES[cat])
            assert len(normals) == spec.n_train_good + spec.n_test_good
        else:
            assert len(normals) == spec.n_train_good + spec.n_test_good
            assert len(anomalous) == spec.n_anomalous * len(spec.anomaly_types)
            assert sorted({s.anomaly_type for s in anomalous}) == sorted(spec.anomaly_types)
        assert all(s.mask is not None and s.mask.is_file() for s in anomalous)
        assert all(s.mask is None and s.image.is_file() for s in normals)
        if name in NO_SPLIT:
            assert {s.source_split for s in samples} == {None}
        else:
            assert sum(s.source_split == "train" for s in normals) == spec.n_train_good
            assert all(s.source_split == "test" for s in anomalous)


@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_prepare_dummy_format(name, tmp_path):
    """Splits follow docs/protocol.md, images are N x N PNG, and at the source resolution every
    prepared mask equals the mask the dummy writer drew (so each format's mask encoding and
    threshold is read correctly: VisA class ids, Magnetic Tile grey levels, BMP labels)."""
    spec = write_dummy(name, tmp_path / "raw")
    res = spec.size
    prepare(name, tmp_path / "raw", tmp_path / "prep", resolution=res)
    for cat in spec.categories:
        pc = PreparedCategory.load(tmp_path / "prep" / name / cat / "manifest.csv")
        t = pc.table
        for atype in pc.anomaly_types:
            n = int((t["anomaly_type"] == atype).sum())
            assert len(pc.rows("gen_train", anomaly_type=atype)) == math.ceil(n / 3)
            assert len(pc.rows("seg_test", anomaly_type=atype)) == n - math.ceil(n / 3)
        n_norm = int((t["anomaly_type"] == "good").sum())
        if name in NO_SPLIT:
            assert len(pc.rows("normal_test")) == round(0.2 * n_norm)
        else:
            assert len(pc.rows("normal_train")) == spec.n_train_good
            assert len(pc.rows("normal_test")) == spec.n_test_good
        for _, row in t.iterrows():
            img = pc.load_image(row)
            assert img.shape[:2] == (res, res)
            assert Image.open(pc.root / row["image"]).format == "PNG"
            mask = pc.load_mask(row)
            if row["anomaly_type"] == "good":
                assert row["mask"] == "" and mask.sum() == 0
            elif spec.masks:
                truth = spec.masks[(cat, row["source"])]
                np.testing.assert_array_equal(mask, truth.astype(np.uint8))
            else:
                assert mask.sum() > 0
        assert len(set(t["image"])) == len(t)


@pytest.mark.parametrize("name", ["visa", "kolektorsdd", "mvtec_ad"])
def test_prepare_dummy_downsampled(name, tmp_path):
    spec = write_dummy(name, tmp_path / "raw")
    prepare(name, tmp_path / "raw", tmp_path / "prep", resolution=16)
    for cat in spec.categories:
        pc = PreparedCategory.load(tmp_path / "prep" / name / cat / "manifest.csv")
        for _, row in pc.rows("gen_train", "seg_test").iterrows():
            truth = spec.masks[(cat, row["source"])]
            np.testing.assert_array_equal(pc.load_mask(row), resize_mask(truth, 16))


def test_resize_mask_keeps_small_defects():
    m = np.zeros((100, 100), bool)
    m[10, 10] = True                      # one pixel: area coverage 1/100 < 0.5
    out = resize_mask(m, 10)
    assert out.sum() == 1 and out[1, 1] == 1
    big = np.zeros((100, 100), bool)
    big[:50, :] = True
    np.testing.assert_array_equal(resize_mask(big, 10)[:, 0], [1] * 5 + [0] * 5)
    assert resize_mask(np.zeros((7, 9), bool), 4).sum() == 0
    # area resize + 0.5 threshold against an independent block-mean computation
    rng = np.random.default_rng(0)
    m = rng.random((64, 64)) < 0.5
    ref = m.reshape(16, 4, 16, 4).mean(axis=(1, 3)) >= 0.5
    np.testing.assert_array_equal(resize_mask(m, 16), ref.astype(np.uint8))


def test_folder_root_is_one_category(tmp_path):
    write_dummy("folder", tmp_path / "raw", categories=["parts"])
    root = tmp_path / "raw" / "parts"
    fmt = get_format("folder")
    assert fmt.categories(root, fmt.options) == ["parts"]
    prepare("folder", root, tmp_path / "prep")
    assert (tmp_path / "prep" / "folder" / "parts" / "manifest.csv").is_file()


@pytest.fixture(scope="module")
def real_mt():
    if not REAL_MT.is_dir():
        pytest.skip(f"the real Magnetic Tile copy is absent ({REAL_MT})")
    return REAL_MT


def test_magnetic_tile_real_scan(real_mt):
    fmt = get_format("magnetic_tile")
    assert fmt.categories(real_mt, {}) == ["magnetic_tile"]
    samples = fmt.scan(real_mt, "magnetic_tile", {})
    counts = pd.Series([s.anomaly_type for s in samples]).value_counts().to_dict()
    expected = {t: len(list((real_mt / f"MT_{t.capitalize()}" / "Imgs").glob("*.jpg")))
                for t in ["blowhole", "break", "crack", "fray", "uneven", "free"]}
    expected["good"] = expected.pop("free")
    assert counts == expected
    assert counts == {"good": 952, "blowhole": 115, "break": 85, "uneven": 103, "crack": 57, "fray": 32}
    assert all(s.mask.is_file() for s in samples if s.mask is not None)
    assert {s.source_split for s in samples} == {None}


def test_magnetic_tile_types_option(real_mt):
    """`types` keeps only those defect folders (and every normal); a type not present is refused."""
    fmt = get_format("magnetic_tile")
    samples = fmt.scan(real_mt, "magnetic_tile", resolve_options(fmt, {"types": ["blowhole", "crack"]}))
    counts = pd.Series([s.anomaly_type for s in samples]).value_counts().to_dict()
    assert counts == {"good": 952, "blowhole": 115, "crack": 57}
    with pytest.raises(FastError, match="unknown scratch .*present: blowhole, break, crack, fray, uneven"):
        fmt.scan(real_mt, "magnetic_tile", {"types": ["crack", "scratch"]})


def test_magnetic_tile_real_prepare_subset(real_mt, tmp_path):
    """A real subset (first 6 of each folder, layout kept) prepared at 32 px: grayscale, split
    rules, and the real grey-level masks binarised (> 127) to non-empty defects."""
    sub = tmp_path / "mt"
    for d in sorted(real_mt.glob("MT_*")):
        (sub / d.name / "Imgs").mkdir(parents=True)
        for jpg in sorted((d / "Imgs").glob("*.jpg"))[:6]:
            shutil.copy(jpg, sub / d.name / "Imgs")
            shutil.copy(jpg.with_suffix(".png"), sub / d.name / "Imgs")
    prepare("magnetic_tile", sub, tmp_path / "prep", resolution=32)
    pc = PreparedCategory.load(tmp_path / "prep" / "magnetic_tile" / "magnetic_tile" / "manifest.csv")
    assert pc.channels == 1
    assert pc.anomaly_types == ["blowhole", "break", "crack", "fray", "uneven"]
    for t in pc.anomaly_types:
        assert len(pc.rows("gen_train", anomaly_type=t)) == 2
        assert len(pc.rows("seg_test", anomaly_type=t)) == 4
        first = sorted(p.name for p in (sub / f"MT_{t.capitalize()}" / "Imgs").glob("*.jpg"))[:2]
        assert sorted(Path(s).name for s in pc.rows("gen_train", anomaly_type=t)["source"]) == first
    assert (len(pc.rows("normal_train")), len(pc.rows("normal_test"))) == (5, 1)
    for _, row in pc.rows("gen_train", "seg_test").iterrows():
        m = pc.load_mask(row)
        src = np.asarray(Image.open(sub / row["source_mask"]))
        if (src > 127).any():
            assert m.sum() > 0
        assert pc.load_image(row).shape == (32, 32, 1)
