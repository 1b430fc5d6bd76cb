"""Generator fidelity (fast.fidelity, `fast fidelity`) on hand-made defects with known statistics."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest

from fast.cli import main
from fast.fidelity import COLUMNS, image_stats
from fast.io import write_png
from fast.metrics import METRIC_KEYS

# TELEA is a first-order estimate: on a flat background it is off by ~0.6 grey levels on average.
INPAINT_TOL = 1.5


def disk_image(value, size=64, radius=8, background=100, channels=1):
    image = np.full((size, size), background, np.uint8)
    mask = np.zeros((size, size), np.uint8)
    cv2.circle(image, (size // 2, size // 2), radius, int(value), -1)
    cv2.circle(mask, (size // 2, size // 2), radius, 1, -1)
    return (np.repeat(image[..., None], channels, axis=2) if channels > 1 else image), mask


@pytest.mark.parametrize("channels", [1, 3])
def test_a_bright_disk_on_a_flat_background(channels):
    image, mask = disk_image(160, channels=channels)
    stats, residuals = image_stats(image, mask)
    assert stats["delta"] == pytest.approx(60, abs=INPAINT_TOL)
    assert stats["contrast"] == pytest.approx(60)  # exact: flat disk, flat ring
    assert 0 < stats["grad"] < 60  # only the disk's rim has a gradient
    assert residuals.shape == (int(mask.sum()),) and np.median(residuals) == pytest.approx(60, abs=INPAINT_TOL)


def test_a_mask_over_plain_background_has_no_defect():
    image, mask = disk_image(100)  # the "disk" has the background's value
    stats, _ = image_stats(image, mask)
    assert stats["delta"] < INPAINT_TOL and stats["contrast"] == pytest.approx(0) and stats["grad"] == 0
    # an empty mask has no statistics rather than zeros
    empty, residuals = image_stats(image, np.zeros_like(mask))
    assert np.isnan(empty["delta"]) and residuals.size == 0


def _dirs(root):
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    return root


def _write_prepared(root, values):
    """A prepared category with real gen_train defects: {anomaly_type: [disk value per image]}."""
    cat = _dirs(root / "prepared" / "mvtec_ad" / "bottle")
    rows = []
    for t, vals in values.items():
        for i, v in enumerate(vals):
            image, mask = disk_image(v)
            write_png(cat / f"images/{t}_{i}.png", image)
            write_png(cat / f"masks/{t}_{i}.png", mask * 255)
            rows.append({"image": f"images/{t}_{i}.png", "mask": f"masks/{t}_{i}.png", "category": "bottle",
                         "anomaly_type": t, "split": "gen_train", "sha256": "0"})
    write_png(cat / "images/good.png", disk_image(100)[0])
    rows.append({"image": "images/good.png", "mask": "", "category": "bottle", "anomaly_type": "good",
                 "split": "normal_train", "sha256": "0"})
    pd.DataFrame(rows).to_csv(cat / "manifest.csv", index=False)
    return root / "prepared"


def _write_synthetic(directory, values):
    rows = []
    _dirs(directory)
    for t, vals in values.items():
        for i, v in enumerate(vals):
            image, mask = disk_image(v, radius=6 + i)
            write_png(directory / f"images/{t}_{i}.png", image)
            write_png(directory / f"masks/{t}_{i}.png", mask * 255)
            rows.append({"image": f"images/{t}_{i}.png", "mask": f"masks/{t}_{i}.png", "anomaly_type": t,
                         "source_normal": "images/good.png"})
    pd.DataFrame(rows).to_csv(directory / "manifest.csv", index=False)
    return directory


CONFIG = json.dumps({"experiment": "exp", "datasets": {"mvtec_ad": {"categories": ["bottle"]}},
                     "methods": ["cutpaste"]})


def test_cli_writes_one_row_per_anomaly_type_and_the_report_uses_it(tmp_path, capsys):
    prepared = _write_prepared(tmp_path, {"crack": [160, 160], "spot": [40]})
    results = tmp_path / "results" / "exp"
    synthetic = _write_synthetic(results / "synthetic" / "mvtec_ad" / "bottle" / "cutpaste",
                                 {"crack": [130, 130, 130], "spot": [70, 70]})
    out = results / "fidelity" / "mvtec_ad" / "bottle" / "cutpaste.csv"
    assert main(["fidelity", "--config", CONFIG, "--prepared", str(prepared), "--dataset", "mvtec_ad",
                 "--category", "bottle", "--method", "cutpaste", "--synthetic", str(synthetic), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 2 and printed[0].startswith("mvtec_ad/bottle cutpaste crack: n=3 (real 2)")

    table = pd.read_csv(out)
    assert list(table.columns) == COLUMNS
    table = table.set_index("type")
    crack, spot = table.loc["crack"], table.loc["spot"]
    assert (crack.method, crack.n, crack.n_real) == ("cutpaste", 3, 2)
    assert crack.delta_syn == pytest.approx(30, abs=INPAINT_TOL)
    assert crack.delta_real == pytest.approx(60, abs=INPAINT_TOL)
    assert crack.contrast_syn == pytest.approx(30) and crack.contrast_real == pytest.approx(60)
    assert crack.ratio == pytest.approx(0.5, abs=0.03) and crack.w1 == pytest.approx(30, abs=2)
    # a dark real spot (-60) against a milder dark synthetic one (-30): signed contrast, |delta| ratio
    assert spot.contrast_real == pytest.approx(-60) and spot.contrast_syn == pytest.approx(-30)
    assert spot.ratio == pytest.approx(0.5, abs=0.03)
    assert crack.grad_real > crack.grad_syn > 0

    # `fast report` gathers it into tables/fidelity.csv and a "Generator fidelity" section
    seg = results / "segmentation" / "mvtec_ad" / "bottle" / "cutpaste" / "unet" / "seed0"
    seg.mkdir(parents=True)
    (seg / "metrics.json").write_text(json.dumps({**{k: 0.5 for k in METRIC_KEYS}, "dataset": "mvtec_ad",
                                                  "category": "bottle", "method": "cutpaste",
                                                  "segmenter": "unet", "seed": 0}))
    assert main(["report", "--config", CONFIG, "--results", str(results), "--metrics", str(seg / "metrics.json"),
                 "--fidelity", str(out)]) == 0
    gathered = pd.read_csv(results / "tables" / "fidelity.csv")
    assert len(gathered) == 2 and set(gathered.dataset) == {"mvtec_ad"} and set(gathered.method) == {"cutpaste"}
    md = (results / "tables" / "comparison.md").read_text()
    assert "## Generator fidelity" in md
    section = md[md.index("## Generator fidelity"):]
    row = next(line for line in section.splitlines() if line.startswith("| cutpaste |"))
    assert f"| {gathered.ratio.mean():.2f} |" in row and row.rstrip().endswith("| 2 |")


def test_missing_synthetic_manifest_is_a_one_line_error(tmp_path, capsys):
    prepared = _write_prepared(tmp_path, {"crack": [160]})
    missing = tmp_path / "synthetic" / "mvtec_ad" / "bottle" / "cutpaste"
    rc = main(["fidelity", "--config", CONFIG, "--prepared", str(prepared), "--dataset", "mvtec_ad",
               "--category", "bottle", "--method", "cutpaste", "--synthetic", str(missing),
               "--out", str(tmp_path / "f.csv")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert err.startswith("fast fidelity: error: synthetic manifest not found") and str(missing) in err
    assert not (tmp_path / "f.csv").exists()


def test_the_seeds_sets_of_a_method_are_pooled(tmp_path, capsys):
    """synthesis.per_seed: one fidelity row per anomaly type over every seed's set of the method."""
    prepared = _write_prepared(tmp_path, {"crack": [160, 160]})
    method_dir = tmp_path / "synthetic" / "mvtec_ad" / "bottle" / "cutpaste"
    seeds = [_write_synthetic(method_dir / "seed0", {"crack": [130, 130]}),
             _write_synthetic(method_dir / "seed1", {"crack": [190]})]
    args = ["fidelity", "--config", CONFIG, "--prepared", str(prepared), "--dataset", "mvtec_ad",
            "--category", "bottle", "--method", "cutpaste"]
    pooled, single = tmp_path / "pooled.csv", tmp_path / "single.csv"
    assert main([*args, "--synthetic", *map(str, seeds), "--out", str(pooled)]) == 0
    assert main([*args, "--synthetic", str(seeds[0]), "--out", str(single)]) == 0
    capsys.readouterr()
    row, alone = pd.read_csv(pooled).iloc[0], pd.read_csv(single).iloc[0]
    assert (row.n, row.n_real, alone.n) == (3, 2, 2)
    # per-image deltas 30, 30 and 90 against 60 real: their mean, not the first seed's
    assert alone.delta_syn == pytest.approx(30, abs=INPAINT_TOL)
    assert row.delta_syn == pytest.approx(50, abs=INPAINT_TOL) and row.ratio == pytest.approx(50 / 60, abs=0.05)
