"""`fast grid` (sample grid figure) and `fast methods` (registry listing)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fast import cli
from fast import methods as registry
from fast.errors import FastError
from fast.report.grid import MIN_SAMPLES, SAMPLE_W, TILE, grid_size, tile_origin
from fast.stages.grid import run_grid
from fast.stages.synthesize import run_synthesize

CONFIG = json.dumps({"experiment": "t", "datasets": {"synthetic": {"categories": ["washer"]}}, "methods": ["cutpaste"]})


def _known_defect_dir(root, size=128, channels=3):
    """A synthesis output with one sample: flat grey image, a 3x3 bright defect at (70, 40)."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    img = np.full((size, size, channels), 90, np.uint8)
    mask = np.zeros((size, size), np.uint8)
    mask[70:73, 40:43] = 255
    img[mask > 0] = 230
    Image.fromarray(img).save(root / "images" / "0.png")
    Image.fromarray(mask).save(root / "masks" / "0.png")
    pd.DataFrame([{"image": "images/0.png", "mask": "masks/0.png"}]).to_csv(root / "manifest.csv", index=False)
    return root


def test_zoomed_tile_shows_a_three_pixel_defect(tmp_path):
    d = _known_defect_dir(tmp_path / "synthetic" / "toy" / "tile" / "spots")
    png = tmp_path / "g.png"
    assert run_grid(argparse.Namespace(synthetic=[str(d)], out=str(png), per_cell=1)) == 0
    img = np.asarray(Image.open(png).convert("RGB"))
    assert img.shape[:2] == grid_size([1], MIN_SAMPLES)  # 1 category x 1 row, at least 3 samples
    y, x = tile_origin([1], 0, 0, 0)
    tile = img[y:y + TILE, x:x + TILE, 0].astype(float)
    mask = img[y:y + TILE, x + SAMPLE_W - TILE:x + SAMPLE_W, 0] > 127
    # Window 32 px around a 3 px defect, shown at 96 px: the defect covers ~9x9 display pixels.
    assert 49 <= mask.sum() <= 144
    assert tile[mask].mean() > 200 and abs(tile[~mask].mean() - 90) < 5
    assert tile[mask].mean() - tile[~mask].mean() > 100  # the defect stands out from its background


def test_grid_figure(synthetic_prepared, tmp_path):
    dirs = []
    for cat in ["washer", "fabric"]:
        for method in ["cutpaste", "nsa"]:
            d = tmp_path / "synthetic" / "synthetic" / cat / method
            run_synthesize(argparse.Namespace(config=CONFIG, dataset="synthetic", category=cat, method=method,
                                              prepared=str(synthetic_prepared), generator_dir=None, out=str(d),
                                              seed=0, n_per_type=2))
            dirs.append(str(d))
    missing = str(tmp_path / "synthetic" / "synthetic" / "washer" / "draem")
    png = tmp_path / "fig" / "grid.png"
    # The CLI as the workflow calls it (no prepared root: no real row); --per-cell above the minimum.
    assert cli.main(["grid", "--synthetic", *dirs, missing, "--out", str(png), "--per-cell", "4"]) == 0
    img = np.asarray(Image.open(png).convert("RGB"))
    assert img.shape[:2] == grid_size([3, 3], 4)  # 2 categories x 3 method rows (draem blank) x 4 samples
    y, x = tile_origin([3, 3], 0, 2, 0)  # washer/draem: blank
    assert (img[y:y + TILE, x:] == 255).all()
    y, x = tile_origin([3, 3], 1, 2, 0)  # fabric/draem: never asked for, blank too
    assert (img[y:y + TILE, x:] == 255).all()
    assert [p.name for p in png.parent.iterdir()] == ["grid.png"]

    # With the prepared root: the real gen_train defects come first in every block.
    png2 = tmp_path / "fig2.png"
    assert run_grid(argparse.Namespace(synthetic=dirs, out=str(png2), per_cell=1,
                                       prepared=str(synthetic_prepared))) == 0
    img = np.asarray(Image.open(png2).convert("RGB"))
    assert img.shape[:2] == grid_size([3, 3], MIN_SAMPLES)  # real + cutpaste + nsa per category
    for block in range(2):
        for row in range(3):
            for sample in range(MIN_SAMPLES):
                y, x = tile_origin([3, 3], block, row, sample)
                mask = img[y:y + TILE, x + SAMPLE_W - TILE:x + SAMPLE_W]
                assert (mask > 127).any() and (mask < 128).any()  # a zoom window holds its defect


def test_grid_without_any_manifest_is_an_error(tmp_path):
    with pytest.raises(FastError, match="manifest"):
        run_grid(argparse.Namespace(synthetic=[str(tmp_path / "a" / "b" / "c")], out=str(tmp_path / "g.png"),
                                    per_cell=1))
    assert not (tmp_path / "g.png").exists()


def test_methods_listing(capsys):
    assert cli.main(["methods"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    # one row per method, in groups (titles, column headers and indented departures in between)
    rows = [line for line in lines if line.split() and line.split()[0] in registry.REGISTRY]
    listed = {line.split()[0]: line for line in rows}
    assert len(rows) == len(listed) and set(listed) == set(registry.REGISTRY)
    assert "Perlin" in listed["draem"] and "seamlessClone" in listed["nsa"]
    assert listed["cutpaste-scar"].split()[1] == "-" and listed["fast-ddim50"].split()[1] == "fast"


def test_a_seed_directory_is_its_methods_row():
    """synthesis.per_seed writes <method>/seed<k>/: the grid labels it by the method."""
    from fast.report.grid import parse_dir

    assert parse_dir("results/e/synthetic/synthetic/washer/cutpaste/seed1") == ("synthetic/washer", "cutpaste")
    assert parse_dir("results/e/synthetic/synthetic/washer/cutpaste") == ("synthetic/washer", "cutpaste")
    with pytest.raises(FastError, match="seed<k>"):
        parse_dir("cutpaste/seed0")
