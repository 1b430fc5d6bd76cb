"""fast.report.figures on small hand-made tables: which files are written, the NFE plots only where
NFE varies within a sampler family, and the forest plot's rows taken from differences.csv."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fast.report.figures import forest_plot, forest_table, make_figures, nfe_varies, seed_values

METHODS = ["fast", "stage", "cutpaste", "defect-paste", "real-fewshot", "no-anomalies"]
# (category, seed) -> mIoU, fractions as summary.csv holds them
BASE = {"fast": 0.60, "stage": 0.57, "cutpaste": 0.40, "defect-paste": 0.61, "real-fewshot": 0.62,
        "no-anomalies": 0.50}


def summary(categories=("bottle", "cable"), seeds=(0, 1, 2), segmenters=("segformer",)) -> pd.DataFrame:
    rows = [{"dataset": "d", "category": c, "method": m, "segmenter": s, "seed": k, "metric": metric,
             "value": BASE[m] + 0.01 * k + (0.02 if c == "cable" else 0) + (0.1 if metric == "mAcc" else 0)}
            for c in categories for m in METHODS for s in segmenters for k in seeds for metric in ("mIoU", "mAcc")]
    return pd.DataFrame(rows)


def differences(segmenter="segformer") -> pd.DataFrame:
    """Hand-made bootstrap rows (fractions): what `fast report` would have written."""
    rows = []
    for ref in ("real-fewshot", "defect-paste", "no-anomalies"):
        for m in METHODS:
            if m == ref or (ref == "defect-paste" and m in ("real-fewshot", "no-anomalies")):
                continue
            diff = BASE[m] - BASE[ref]
            rows.append({"dataset": "d", "category": "average", "method": m, "segmenter": segmenter,
                         "reference": ref, "metric": "mIoU", "diff": diff, "lo": diff - 0.011, "hi": diff + 0.007})
    # a row the forest plot must ignore: another metric
    rows.append({**rows[0], "metric": "IoU_anomaly", "diff": 0.5})
    return pd.DataFrame(rows)


def efficiency(nfe: dict[str, float], sampler: dict[str, str]) -> pd.DataFrame:
    rows = [{"dataset": "d", "method": m, "segmenter": "segformer", "sampler": sampler.get(m, ""),
             "nfe": nfe.get(m, np.nan), "seconds_per_image": 0.1 * (i + 1) if m in nfe else np.nan,
             "device": "cpu", "mIoU_mean": 100 * BASE[m], "mIoU_std": 1.0, "n_seeds": 3,
             "fidelity_ratio": 1.1 if m in nfe else np.nan} for i, m in enumerate(METHODS)]
    return pd.DataFrame(rows)


def test_forest_table_takes_order_and_intervals_from_differences():
    table = forest_table(differences(), summary(), "d", "segformer")
    # synthesis methods only, best first by the difference to real-fewshot
    assert list(dict.fromkeys(table.method)) == ["defect-paste", "fast", "stage", "cutpaste"]
    assert set(table.reference) == {"real-fewshot", "defect-paste"}  # no-anomalies is no panel
    row = table[(table.method == "fast") & (table.reference == "defect-paste")].iloc[0]
    assert row["diff"] == pytest.approx(-1.0) and row["lo"] == pytest.approx(-2.1) and row["hi"] == pytest.approx(-0.3)
    # per seed: fast minus defect-paste at the same seed, averaged over categories (points)
    assert row["seeds"] == pytest.approx([-1.0, -1.0, -1.0])
    assert not ((table.method == "defect-paste") & (table.reference == "defect-paste")).any()


def test_per_seed_values_are_each_seeds_mean_over_categories():
    values = seed_values(summary(), "d", "segformer", "mIoU")
    assert values.loc["fast"].tolist() == pytest.approx([61.0, 62.0, 63.0])  # (60 + 62) / 2 + k
    assert seed_values(summary(), "d", "segformer", "mIoU", "bottle").loc["fast", 0] == pytest.approx(60.0)


def test_no_difference_rows_no_forest_plot(tmp_path):
    empty = differences().iloc[0:0]
    assert forest_table(empty, summary(), "d", "segformer").empty
    assert not forest_plot(empty, summary(), "d", "segformer", tmp_path / "f.png")
    assert not (tmp_path / "f.png").exists()


def test_nfe_varies_only_within_a_family():
    frame = lambda nfe, fam: pd.DataFrame({"nfe": nfe, "sampler": fam})  # noqa: E731
    assert nfe_varies(frame([4, 12, 50], ["aias", "aias", "aias"]))
    assert not nfe_varies(frame([12, 12], ["aias", "ddim"]))          # one NFE
    assert not nfe_varies(frame([12, 50], ["aias", "ddim"]))          # two NFEs, but no family at two
    assert not nfe_varies(frame([12, 50, 50], ["aias", "", ""]))      # methods of other models do not count


def test_every_figure_is_written_and_nfe_plots_only_where_nfe_varies(tmp_path):
    long, diffs = summary(), differences()
    one_nfe = efficiency({"fast": 12, "stage": 50, "cutpaste": 0, "defect-paste": 0}, {"fast": "aias"})
    (tmp_path / "a").mkdir()
    written = make_figures(long, one_nfe, METHODS, tmp_path / "a", diffs)
    assert sorted(p.name for p in written) == sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "fidelity_vs_time_d.png", "forest_d_segformer.png", "per_category_mAcc_d_segformer.png",
        "per_category_mIoU_d_segformer.png", "quality_vs_time_d_segformer.png"]
    assert all(p.stat().st_size > 10_000 for p in written)

    (tmp_path / "b").mkdir()
    sweep = efficiency({"fast": 12, "stage": 4, "cutpaste": 0, "defect-paste": 0}, {"fast": "aias", "stage": "aias"})
    names = {p.name for p in make_figures(long, sweep, METHODS, tmp_path / "b", diffs)}
    assert {"quality_vs_nfe_d_segformer.png", "fidelity_vs_nfe_d.png"} <= names


def test_fidelity_is_drawn_once_per_dataset_and_no_forest_without_differences(tmp_path):
    long = summary(segmenters=("segformer", "unet"))
    eff = pd.concat([efficiency({"fast": 12}, {"fast": "aias"}),
                     efficiency({"fast": 12}, {"fast": "aias"}).assign(segmenter="unet")])
    names = sorted(p.name for p in make_figures(long, eff, METHODS, tmp_path))
    assert [n for n in names if n.startswith("fidelity")] == ["fidelity_vs_time_d.png"]
    assert not [n for n in names if n.startswith("forest")]
    assert "per_category_mIoU_d_unet.png" in names and "quality_vs_time_d_unet.png" in names
