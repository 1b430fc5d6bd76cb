"""Split rules of docs/protocol.md, determinism of `fast prepare`, and the leakage test: no seg_test
image content (by sha256) reaches a training split, even when the dataset holds duplicates."""

from __future__ import annotations

import argparse
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from dummy_data import write_dummy
from fast.data.manifest import PreparedCategory, TRAIN_SPLITS
from fast.commands.prepare import run_prepare
from fast.data.registry import Sample
from fast.data.splits import assign_splits, n_gen_train, normal_split_80_20


def prepare(name, root, out, resolution=32, seed=0, category=None):
    run_prepare(argparse.Namespace(dataset=name, root=str(root), out=str(out), category=category,
                                   resolution=resolution, seed=seed, options=None))


def _sample(key, atype="crack", split=None):
    return Sample(Path(key), None if atype == "good" else Path(key + ".mask"), atype, split, key)


@given(st.integers(0, 200))
def test_n_gen_train_is_ceil_third(n):
    assert n_gen_train(n) == -(-n // 3)
    assert 3 * n_gen_train(n) >= n > 3 * (n_gen_train(n) - 1) or n == 0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text("abcXYZ019_", min_size=1, max_size=6), min_size=1, max_size=30, unique=True),
       st.randoms(use_true_random=False))
def test_anomalies_first_third_by_sorted_name(names, rnd):
    shuffled = list(names)
    rnd.shuffle(shuffled)
    out = assign_splits([_sample(k) for k in shuffled], seed=0, category="c")
    gen = [s.key for s, split in out if split == "gen_train"]
    test = [s.key for s, split in out if split == "seg_test"]
    k = -(-len(names) // 3)
    assert sorted(gen) == sorted(names)[:k]
    assert sorted(test) == sorted(names)[k:]


def test_split_per_anomaly_type_and_name_order():
    keys = ["10.png", "2.png", "1.png", "03.png"]  # lexicographic file-name order: 03, 1, 10, 2
    samples = [_sample(k, "crack") for k in keys] + [_sample(k, "hole") for k in ["b.png", "a.png"]]
    out = {(s.anomaly_type, s.key): split for s, split in assign_splits(samples, 0, "c")}
    assert [k for k in ["03.png", "1.png", "10.png", "2.png"] if out[("crack", k)] == "gen_train"] == ["03.png", "1.png"]
    assert out[("hole", "a.png")] == "gen_train" and out[("hole", "b.png")] == "seg_test"


def test_source_split_normals_kept():
    samples = [_sample("train/good/0", "good", "train"), _sample("test/good/0", "good", "test")]
    out = {s.key: split for s, split in assign_splits(samples, 0, "c")}
    assert out == {"train/good/0": "normal_train", "test/good/0": "normal_test"}


def test_normal_80_20_seeded_and_order_free():
    keys = [f"n{i:03d}" for i in range(50)]
    a = normal_split_80_20(keys, 3, "cat")
    assert a == normal_split_80_20(list(reversed(keys)), 3, "cat")
    assert sum(v == "normal_test" for v in a.values()) == 10
    assert a != normal_split_80_20(keys, 4, "cat")
    assert normal_split_80_20(["x", "y"], 0, "c") in ({"x": "normal_train", "y": "normal_test"},
                                                      {"x": "normal_test", "y": "normal_train"})
    assert normal_split_80_20(["x"], 0, "c") == {"x": "normal_train"}


def _tree_digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_prepare_is_deterministic(tmp_path):
    write_dummy("magnetic_tile", tmp_path / "raw")  # has a seeded 80/20 normal split
    prepare("magnetic_tile", tmp_path / "raw", tmp_path / "a", seed=7)
    prepare("magnetic_tile", tmp_path / "raw", tmp_path / "b", seed=7)
    prepare("magnetic_tile", tmp_path / "raw", tmp_path / "c", seed=8)
    a, b = _tree_digest(tmp_path / "a"), _tree_digest(tmp_path / "b")
    assert a == b and len(a) > 20
    m = lambda d: pd.read_csv(tmp_path / d / "magnetic_tile" / "magnetic_tile" / "manifest.csv")  # noqa: E731
    assert not m("a").equals(m("c"))  # the seed moves normals between normal_train and normal_test
    assert set(m("a")["sha256"]) == set(m("c")["sha256"])


def assert_no_leak(manifest: Path) -> None:
    pc = PreparedCategory.load(manifest)
    t = pc.table
    # sha256 column is the real content hash of each prepared file
    for _, row in t.iterrows():
        assert hashlib.sha256((pc.root / row["image"]).read_bytes()).hexdigest() == row["sha256"]
    train = set(t.loc[t["split"].isin(TRAIN_SPLITS), "sha256"])
    assert not train & set(t.loc[t["split"] == "seg_test", "sha256"])
    assert not train & set(t.loc[t["split"] == "normal_test", "sha256"])


def test_no_leak_with_duplicate_images(tmp_path):
    """Duplicates planted in a folder dataset: an anomalous image copied under a later name (it
    would land in seg_test while its twin is in gen_train) and a normal copied into the
    anomalous set. Neither test copy may reach the manifest next to its training twin."""
    write_dummy("folder", tmp_path / "raw", categories=["parts"], n_anomalous=6)
    cat = tmp_path / "raw" / "parts"
    shutil.copy(cat / "images/dent/dent_000.png", cat / "images/dent/dent_999.png")   # twin of gen_train
    shutil.copy(cat / "masks/dent/dent_000.png", cat / "masks/dent/dent_999.png")
    normal_split = normal_split_80_20([f"normal/{p.name}" for p in (cat / "normal").iterdir()], 0, "parts")
    normal = cat / next(k for k, v in sorted(normal_split.items()) if v == "normal_train")
    shutil.copy(normal, cat / "images/scratch/scratch_999.png")                          # a normal, relabelled
    shutil.copy(cat / "masks/scratch/scratch_000.png", cat / "masks/scratch/scratch_999.png")
    prepare("folder", tmp_path / "raw", tmp_path / "prep", resolution=40)
    manifest = tmp_path / "prep/folder/parts/manifest.csv"
    assert_no_leak(manifest)
    t = pd.read_csv(manifest)
    assert "images/dent/dent_999.png" not in set(t["source"])
    assert "images/dent/dent_000.png" in set(t.loc[t["split"] == "gen_train", "source"])
    # the relabelled normal is dropped from seg_test: its twin is in normal_train
    assert t.loc[t["source"] == f"normal/{normal.name}", "split"].item() == "normal_train"
    assert "images/scratch/scratch_999.png" not in set(t["source"])
    assert len(t) == 6 + 2 * 7 - 2
    # files of dropped rows are not left beside the manifest
    listed = set(t["image"]) | set(t["mask"].dropna())
    on_disk = {p.relative_to(manifest.parent).as_posix() for p in manifest.parent.rglob("*.png")}
    assert on_disk == listed


def test_no_leak_synthetic_fixture(synthetic_prepared):
    for cat in ("fabric", "brushed_metal", "washer"):
        assert_no_leak(synthetic_prepared / "synthetic" / cat / "manifest.csv")
        pc = PreparedCategory.load(synthetic_prepared / "synthetic" / cat / "manifest.csv")
        counts = pc.table.groupby("split").size().to_dict()
        n_types = len(pc.anomaly_types)
        assert counts == {"gen_train": 2 * n_types, "seg_test": 2 * n_types, "normal_train": 8, "normal_test": 4}
        img = pc.load_image(pc.rows("normal_train").iloc[0])
        assert img.shape == (32, 32, 1 if cat == "brushed_metal" else 3)
        assert np.unique(pc.load_mask(pc.rows("seg_test").iloc[0])).tolist() == [0, 1]
