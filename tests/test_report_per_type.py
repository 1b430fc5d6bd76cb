"""Anomaly IoU per defect type (tables/per_type.csv) against a hand computation."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from fast.report.tables import per_type_iou, per_type_table, to_markdown


def _rows(method, seed, items):
    return [{"dataset": "d", "category": "c", "method": method, "segmenter": "unet", "seed": seed,
             "image": img, "anomaly_type": kind, "tp": tp, "fp": fp, "fn": fn, "tn": 100}
            for img, kind, tp, fp, fn in items]


def test_per_type_iou_sums_counts_per_type_and_averages_seeds():
    per_image = pd.DataFrame(
        _rows("a", 0, [("x1", "hole", 6, 2, 2), ("x2", "hole", 0, 0, 10), ("y1", "crack", 5, 0, 5),
                       ("n1", "good", 0, 50, 0)])
        + _rows("a", 1, [("x1", "hole", 10, 0, 0), ("x2", "hole", 10, 0, 0), ("y1", "crack", 0, 0, 10),
                         ("n1", "good", 0, 0, 0)]))
    out = per_type_iou(per_image).set_index(["anomaly_type"])
    # seed 0: hole 6 / (6 + 2 + 12) = 30 %, crack 5 / 10 = 50 %; seed 1: hole 100 %, crack 0 %
    assert out.loc["hole", "mean"] == pytest.approx(65.0)
    assert out.loc["hole", "std"] == pytest.approx(math.sqrt(((30 - 65) ** 2 + (100 - 65) ** 2) / 1))
    assert out.loc["crack", "mean"] == pytest.approx(25.0)
    assert out.loc["hole", "n_images"] == 2 and out.loc["hole", "n_seeds"] == 2
    assert "good" not in out.index  # normal images' false positives belong to no type
    md = to_markdown(per_type_table(per_type_iou(per_image), "d", "unet", ["a"]))
    assert "c / hole" in md and "65.0 ± 49.5" in md


def test_a_type_without_any_anomalous_pixel_prediction_or_truth_is_nan():
    per_image = pd.DataFrame(_rows("a", 0, [("x1", "hole", 0, 0, 0)]))
    assert math.isnan(per_type_iou(per_image)["mean"].iloc[0])
