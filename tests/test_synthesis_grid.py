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
from fast.report.grid import (MIN_SAMPLES, PAIR_GAP, REAL_ROW, SAMPLE_W, THUMB, TILE, collect, layout,
                              render)
from fast.commands.grid import run_grid
from fast.commands.synthesize import run_synthesize

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


def _parts(img, geo, block, row, column):
    """(zoomed window, whole-image thumbnail, window's mask) of one sample of a rendered grid."""
    y, x = geo.origin(block, row, column)
    right = x + TILE + PAIR_GAP
    return (img[y:y + TILE, x:x + TILE], img[y:y + THUMB, right:right + THUMB],
            img[y + TILE - THUMB:y + TILE, right:right + THUMB])


def test_zoomed_tile_shows_a_three_pixel_defect(tmp_path):
    d = _known_defect_dir(tmp_path / "synthetic" / "toy" / "tile" / "spots")
    png = tmp_path / "g.png"
    assert run_grid(argparse.Namespace(synthetic=[str(d)], out=str(png), per_cell=1)) == 0
    img = np.asarray(Image.open(png).convert("RGB"))
    blocks = collect([str(d)], MIN_SAMPLES, None)
    geo = layout(blocks, MIN_SAMPLES)
    assert img.shape[:2] == (geo.height, geo.width)  # 1 category x 1 row, room for 3 samples
    assert blocks[0].groups is None                   # no anomaly_type column: no type headers
    window, thumb, mask = _parts(img, geo, 0, 0, 0)
    # Window 32 px around a 3 px defect, shown at 96 px: the defect covers ~9x9 display pixels.
    defect = window[..., 0] > 160
    assert 49 <= defect.sum() <= 144 and abs(window[..., 0][~defect].mean() - 90) < 5
    assert 4 <= (mask[..., 0] > 127).sum() <= 64      # the same 3 px in the 46 px window mask
    red = (thumb[..., 0] > 200) & (thumb[..., 1] < 80)
    assert red.any() and not red[:, :THUMB // 5].any()  # outlined where the defect is (x 40 of 128)
    y, x = geo.origin(0, 0, 1)                        # one sample only: the other columns stay blank
    assert (img[y:y + TILE, x:] == 255).all()


def _set(root, rows, value_of):
    """A synthesis output whose request i has image value value_of(i) and a 4x4 mask at 4i."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i, row in enumerate(rows):
        mask = np.zeros((64, 64), np.uint8)
        mask[4 * i:4 * i + 4, 20:24] = 255
        Image.fromarray(np.full((64, 64), value_of(i), np.uint8)).save(root / "images" / f"{i}.png")
        Image.fromarray(mask).save(root / "masks" / f"{i}.png")
        row.update(image=f"images/{i}.png", mask=f"masks/{i}.png")
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    return str(root)


def test_columns_pick_the_same_requests_in_every_method_and_the_real_mask_source(tmp_path):
    """Request i of a type has the same background and pool mask in every pool method: a column
    shows request i in every row, and the real row the gen_train defect that mask came from."""
    types = ["crack"] * 4 + ["hole"] * 4
    pool = [{"anomaly_type": t, "source_normal": f"images/n{i}.png", "mask_source": f"masks/real{i}.png|rot90"}
            for i, t in enumerate(types)]
    a = _set(tmp_path / "s" / "d" / "c" / "a", [dict(r) for r in pool], lambda i: 10 + 20 * i)
    b = _set(tmp_path / "s" / "d" / "c" / "b", [dict(r) for r in pool], lambda i: 11 + 20 * i)
    own = [{"anomaly_type": t, "source_normal": f"images/n{i}.png", "mask_source": "own"} for i, t in enumerate(types)]
    c = _set(tmp_path / "s" / "d" / "c" / "c", own, lambda i: 12 + 20 * i)
    prepared = tmp_path / "prepared" / "d" / "c"
    real = [{"anomaly_type": t, "split": "gen_train"} for t in types]
    _set(prepared, real, lambda i: 200 + i)
    manifest = pd.read_csv(prepared / "manifest.csv")
    manifest["mask"] = [f"masks/real{i}.png" for i in range(len(types))]
    for i in range(len(types)):
        (prepared / "masks" / f"{i}.png").rename(prepared / "masks" / f"real{i}.png")
    manifest.to_csv(prepared / "manifest.csv", index=False)

    blocks = collect([c, a, b], 4, str(tmp_path / "prepared"))  # the pool set is the reference, not c
    assert blocks[0].groups == [("crack", 2), ("hole", 2)]
    assert [label for label, _ in blocks[0].rows] == [REAL_ROW, "c", "a", "b"]
    img = np.asarray(render(blocks, 4).convert("RGB"))
    geo = layout(blocks, 4)
    for column, request in enumerate([0, 3, 4, 7]):  # two per type, spread over its requests
        values = [int(_parts(img, geo, 0, row, column)[0][..., 0].mean().round()) for row in range(4)]
        assert values == [200 + request, 12 + 20 * request, 10 + 20 * request, 11 + 20 * request]


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
    blocks = collect([*dirs, missing], 4, None)
    geo = layout(blocks, 4)
    assert img.shape[:2] == (geo.height, geo.width)
    # per category: 3 method rows (draem blank), the three defect types, two samples each
    assert [len(b.rows) for b in blocks] == [3, 3]
    assert [b.groups for b in blocks] == [[("crack", 2), ("hole", 2), ("stain", 2)],
                                          [("hole", 2), ("scratch", 2), ("stain", 2)]]
    for block in range(2):  # washer/draem: blank; fabric/draem: never asked for, blank too
        for column in range(6):
            y, x = geo.origin(block, 2, column)
            assert (img[y:y + TILE, x:x + SAMPLE_W] == 255).all()
    assert [p.name for p in png.parent.iterdir()] == ["grid.png"]

    # With the prepared root: the real gen_train defects come first in every block.
    png2 = tmp_path / "fig2.png"
    assert run_grid(argparse.Namespace(synthetic=dirs, out=str(png2), per_cell=1,
                                       prepared=str(synthetic_prepared))) == 0
    img = np.asarray(Image.open(png2).convert("RGB"))
    blocks = collect(dirs, MIN_SAMPLES, str(synthetic_prepared))
    geo = layout(blocks, MIN_SAMPLES)
    assert img.shape[:2] == (geo.height, geo.width)
    for block in range(2):
        assert [label for label, _ in blocks[block].rows] == [REAL_ROW, "cutpaste", "nsa"]
        for row in range(3):
            for column in range(6):
                mask = _parts(img, geo, block, row, column)[2]
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
