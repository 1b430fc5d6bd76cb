"""fast.data.pair_sets: the synthetic-set format. A set written by its writer reads back with the
same masks through every consumer (segmenter pool, fidelity, sample grid); each fault of a set is
one FastError naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fast import fidelity
from fast.data.pair_sets import (MANIFEST, MANIFEST_BASE_COLUMNS, pair_name, pair_record, read_pair, read_set,
                                 write_manifest, write_pair, write_timing, writing_set)
from fast.errors import FastError
from fast.report import grid
from fast.segmentation.data import synthetic_pool

SIZE = 32
TYPES = ("crack", "hole stain")  # a type name with a space: file names are made safe, keys stay as written


def _pairs(rng: np.random.Generator, n: int):
    for _ in range(n):
        image = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
        mask = np.zeros((SIZE, SIZE), np.uint8)
        y, x = rng.integers(2, SIZE - 10, 2)
        mask[y:y + int(rng.integers(2, 8)), x:x + int(rng.integers(2, 8))] = 1
        yield image, mask


def write_set(out: Path, n_per_type: int = 2, seed: int = 7) -> tuple[Path, list[np.ndarray]]:
    """A set of n_per_type pairs per type written with the module's writer; its masks in row order."""
    rng = np.random.default_rng(seed)
    rows, masks = [], []
    with writing_set(out) as tmp:
        for t in TYPES:
            for k, (image, mask) in enumerate(_pairs(rng, n_per_type)):
                image_path, mask_path = write_pair(tmp, pair_name(t, k), image, mask)
                rows.append(pair_record(image_path, mask_path, f"images/normal_{k}.png", "rectangle", t, seed,
                                        {"nfe": np.int64(0), "mask_source": "ignored"}))
                masks.append(mask)
        write_manifest(tmp, rows)
        write_timing(tmp, {"method": "test", "images": len(rows)})
    return out, masks


def test_written_set_reads_back_with_the_same_masks_in_every_consumer(tmp_path, monkeypatch):
    directory, masks = write_set(tmp_path / "synthetic" / "toy" / "tile" / "test-method")
    table = read_set(directory)
    assert list(table.columns) == MANIFEST_BASE_COLUMNS + ["nfe"]
    # keys are the manifest's records, as written (not parsed from the file names)
    assert list(table["anomaly_type"]) == [t for t in TYPES for _ in range(2)]
    assert set(table["seed"]) == {"7"} and set(table["mask_source"]) == {"rectangle"}
    assert table["image"].iloc[2] == "images/hole-stain_0000.png"
    direct = [read_pair(directory, r)[1] for _, r in table.iterrows()]
    for got, written in zip(direct, masks):
        np.testing.assert_array_equal(got, written)

    # segmenter training: the anomalous pool (at the set's own size: no resizing)
    pool = synthetic_pool(directory, SIZE, 3)
    np.testing.assert_array_equal(pool.masks.astype(np.uint8), np.stack(masks))

    # generator fidelity
    fid = [m for _, m in fidelity.synthetic_pairs(fidelity.synthetic_table(directory))]
    np.testing.assert_array_equal(np.stack(fid), np.stack(masks))

    # the sample grid: every (image, mask) it draws is one of the set's pairs, mask for mask
    drawn = []
    real_tile = grid.sample_tile
    monkeypatch.setattr(grid, "sample_tile", lambda image, mask: drawn.append(mask) or real_tile(image, mask))
    grid.collect([str(directory)], 4, None)
    assert len(drawn) == 4
    for mask in drawn:
        assert any(np.array_equal(mask, m) for m in masks)


def test_a_0_1_mask_png_reads_as_its_0_255_twin(tmp_path):
    directory, masks = write_set(tmp_path / "set", n_per_type=1)
    row = read_set(directory).iloc[0]
    Image.fromarray(masks[0]).save(directory / row["mask"])  # values 0/1
    np.testing.assert_array_equal(read_pair(directory, row)[1], masks[0])


# ----------------------------------------------------------------------------------- faults
def _consumers(directory: Path):
    """Each consumer's read of the set."""
    return {"segmentation": lambda: synthetic_pool(directory, SIZE, 3),
            "fidelity": lambda: list(fidelity.synthetic_pairs(fidelity.synthetic_table(directory))),
            "grid": lambda: grid.collect([str(directory)], 4, None)}


@pytest.mark.parametrize("consumer", ["segmentation", "fidelity", "grid"])
@pytest.mark.parametrize("which", ["image", "mask"])
def test_truncated_png_is_one_error_naming_it(tmp_path, consumer, which):
    directory, _ = write_set(tmp_path / "d" / "c" / "m")
    row = read_set(directory).iloc[0]
    path = directory / row[which]
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])  # a real truncated file, as a killed copy leaves it
    with pytest.raises(FastError) as err:
        _consumers(directory)[consumer]()
    msg = str(err.value)
    assert str(directory / MANIFEST) in msg and str(path) in msg and f"cannot read {which}" in msg
    assert "re-run `fast synthesize" in msg and "\n" not in msg


@pytest.mark.parametrize("consumer", ["segmentation", "fidelity", "grid"])
def test_manifest_missing_a_column_is_one_error_naming_it(tmp_path, consumer):
    directory, _ = write_set(tmp_path / "d" / "c" / "m")
    table = pd.read_csv(directory / MANIFEST, dtype=str, keep_default_na=False)
    table.drop(columns="mask").to_csv(directory / MANIFEST, index=False)
    with pytest.raises(FastError, match=r"missing columns \['mask'\]") as err:
        _consumers(directory)[consumer]()
    assert str(err.value).startswith(f"{directory / MANIFEST}: ")


def test_fidelity_needs_anomaly_type(tmp_path):
    directory, _ = write_set(tmp_path / "set")
    table = pd.read_csv(directory / MANIFEST, dtype=str, keep_default_na=False)
    table.drop(columns="anomaly_type").to_csv(directory / MANIFEST, index=False)
    read_set(directory)  # the set itself is readable
    with pytest.raises(FastError, match=r"manifest.csv: missing columns \['anomaly_type'\]"):
        fidelity.synthetic_table(directory)


@pytest.mark.parametrize("content", [b"", b"image,mask,source_normal,mask_source,anomaly_type,seed\n"],
                         ids=["zero-bytes", "header-only"])
@pytest.mark.parametrize("consumer", ["segmentation", "fidelity"])
def test_empty_manifest_is_one_error_naming_it(tmp_path, consumer, content):
    directory = tmp_path / "set"
    directory.mkdir()
    (directory / MANIFEST).write_bytes(content)
    with pytest.raises(FastError) as err:
        _consumers(directory)[consumer]()
    msg = str(err.value)
    assert msg.startswith(f"{directory / MANIFEST}: ") and ("empty file" in msg or "no pairs" in msg)
    assert f"re-run `fast synthesize ... --out {directory}`" in msg


def test_grid_leaves_an_empty_or_missing_set_blank(tmp_path):
    """The grid's rule: a set without pairs is a blank row, not an error (others may have pairs)."""
    full, _ = write_set(tmp_path / "d" / "c" / "full")
    empty = tmp_path / "d" / "c" / "empty"
    empty.mkdir()
    (empty / MANIFEST).write_bytes(b"")
    blocks = grid.collect([str(full), str(empty), str(tmp_path / "d" / "c" / "absent")], 3, None)
    assert [(label, tiles is None) for label, tiles in blocks[0].rows] == [
        ("full", False), ("empty", True), ("absent", True)]


def test_missing_manifest_and_missing_file(tmp_path):
    with pytest.raises(FastError, match=r"synthetic manifest not found: .*manifest.csv \(run `fast synthesize`"):
        read_set(tmp_path / "nowhere")
    directory, _ = write_set(tmp_path / "set")
    row = read_set(directory).iloc[1]
    (directory / row["mask"]).unlink()
    with pytest.raises(FastError, match=rf"manifest.csv: lists {row['mask']}, which is missing; re-run"):
        synthetic_pool(directory, SIZE, 3)


def test_mask_of_another_size_is_one_error_naming_both(tmp_path):
    directory, _ = write_set(tmp_path / "set")
    row = read_set(directory).iloc[0]
    Image.fromarray(np.zeros((SIZE, SIZE + 4), np.uint8)).save(directory / row["mask"])
    with pytest.raises(FastError, match=rf"{row['mask']} \(32, 36\) and {row['image']} \(32, 32\) sizes differ"):
        list(fidelity.synthetic_pairs(fidelity.synthetic_table(directory)))
