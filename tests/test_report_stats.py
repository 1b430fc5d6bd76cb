"""Paired bootstrap differences (fast.report.stats) against independent computations, and their
rendering in `fast report`."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from fast.cli import main
from fast.errors import FastError
from fast.metrics import METRIC_KEYS, per_image_stats, segmentation_metrics
from fast.report.stats import (COLUMNS, SEED, differences, frontier_entries, frontier_pairs, load_per_image,
                               mdd_factor)
from fast.report.tables import differences_table, fmt_diff, to_latex, to_markdown
from report_inputs import report_args


def runs_table(counts: dict, dataset="d", category="c", segmenter="unet") -> pd.DataFrame:
    """load_per_image's table from {(method, seed): (N, 4) tp/fp/fn/tn array}."""
    parts = []
    for (method, seed), c in counts.items():
        c = np.asarray(c)
        parts.append(pd.DataFrame({"dataset": dataset, "category": category, "method": method,
                                   "segmenter": segmenter, "seed": seed,
                                   "image": [f"img{i:03d}.png" for i in range(len(c))],
                                   "tp": c[:, 0], "fp": c[:, 1], "fn": c[:, 2], "tn": c[:, 3]}))
    return pd.concat(parts, ignore_index=True)


def pick(diffs, method="fast", reference="no-anomalies", metric="mIoU", category="c"):
    row = diffs[(diffs.method == method) & (diffs.reference == reference) & (diffs.metric == metric)
                & (diffs.category == category)]
    assert len(row) == 1, row
    return row.iloc[0]


def test_identical_images_give_a_zero_width_interval_at_the_difference():
    # Every image has the same counts, so any resample has the same dataset-level metric.
    n = 20
    fast = np.tile([30, 10, 10, 950], (n, 1))
    floor = np.tile([0, 0, 40, 960], (n, 1))
    diffs = differences(runs_table({("fast", 0): fast, ("fast", 1): fast,
                                    ("no-anomalies", 0): floor, ("no-anomalies", 1): floor}))
    expected = (30 / 50 + 950 / 970) / 2 - (0 + 960 / 1000) / 2
    row = pick(diffs)
    assert row["diff"] == pytest.approx(expected) and row["lo"] == pytest.approx(expected)
    assert row["hi"] == pytest.approx(expected) and bool(row["significant"]) and row["n_seeds"] == 2
    assert pick(diffs, metric="IoU_anomaly")["lo"] == pytest.approx(0.6)
    assert pick(diffs, category="average")["diff"] == pytest.approx(expected)  # one category
    # the reference rows are compared with each other too, never with themselves
    assert set(zip(diffs.method, diffs.reference)) == {("fast", "no-anomalies")}
    assert list(diffs.columns) == COLUMNS


def _probs_and_masks(rng, n, size=12):
    masks = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        if i % 3:  # two thirds anomalous, with a random square defect
            y, x, s = rng.integers(0, size - 4, 2).tolist() + [int(rng.integers(2, 5))]
            masks[i, y:y + s, x:x + s] = 1
    return masks


def _miou(pred, masks):
    """mIoU written out independently of fast.metrics / fast.report.stats."""
    tp, fp = np.sum(pred & masks), np.sum(pred & ~masks)
    fn, tn = np.sum(~pred & masks), np.sum(~pred & ~masks)
    iou_an = tp / (tp + fp + fn) if tp + fp + fn else np.nan
    return (iou_an + tn / (tn + fp + fn)) / 2


def test_bootstrap_equals_a_brute_force_loop_over_resamples_with_the_same_rng():
    rng = np.random.default_rng(1)
    n, seeds, b = 15, (0, 1, 2), 150
    data, counts = {}, {}
    for cat in ("a", "b"):
        masks = _probs_and_masks(rng, n)
        for method, noise in (("fast", 0.3), ("no-anomalies", 0.6)):
            for k in seeds:
                probs = np.clip(masks * 0.7 + rng.normal(0.15, noise, masks.shape), 0, 1)
                data[cat, method, k] = (probs >= 0.5, masks.astype(bool))
                s = per_image_stats(probs, masks)
                counts[cat, method, k] = np.stack([s[c] for c in ("tp", "fp", "fn", "tn")], axis=1)
                # the point estimate is the dataset-level mIoU of fast evaluate's metrics.json
                assert _miou(*data[cat, method, k]) == pytest.approx(segmentation_metrics(probs, masks)["mIoU"])
    table = pd.concat([runs_table({(m, k): counts[c, m, k] for m in ("fast", "no-anomalies") for k in seeds},
                                  category=c) for c in ("a", "b")], ignore_index=True)
    diffs = differences(table, n_resamples=b)

    per_cat = {}
    for cat in ("a", "b"):
        idx = np.random.default_rng([SEED, zlib.crc32(f"d/{cat}".encode())]).integers(0, n, size=(b, n))
        draws = []
        for rows in idx:  # one resample: the same images for every seed and both methods
            mean = {m: np.nanmean([_miou(data[cat, m, k][0][rows], data[cat, m, k][1][rows]) for k in seeds])
                    for m in ("fast", "no-anomalies")}
            draws.append(mean["fast"] - mean["no-anomalies"])
        point = np.mean([_miou(*data[cat, "fast", k]) - _miou(*data[cat, "no-anomalies", k]) for k in seeds])
        per_cat[cat] = (point, np.array(draws))
        row = pick(diffs, category=cat)
        assert row["diff"] == pytest.approx(point)
        assert [row["lo"], row["hi"]] == pytest.approx(np.nanpercentile(draws, [2.5, 97.5]))
    # the average: each resample's per-category differences averaged (categories drawn independently)
    avg = (per_cat["a"][1] + per_cat["b"][1]) / 2
    row = pick(diffs, category="average")
    assert row["diff"] == pytest.approx((per_cat["a"][0] + per_cat["b"][0]) / 2)
    assert [row["lo"], row["hi"]] == pytest.approx(np.nanpercentile(avg, [2.5, 97.5]))
    assert row["n_images"] == 2 * n and row["significant"] == (row["lo"] > 0 or row["hi"] < 0)


def test_per_image_mean_metric_agrees_with_scipy_paired_bootstrap():
    # tp + fp + fn = 100 on every image: IoU_anomaly = sum(tp) / (100 N) is the mean of tp / 100 per
    # image, so its paired difference is a difference of means that scipy can bootstrap too.
    rng = np.random.default_rng(7)
    n = 40
    tp_a, tp_b = rng.integers(40, 90, n), rng.integers(30, 80, n)

    def counts(tp):
        fp = rng.integers(0, 100 - tp + 1)
        return np.stack([tp, fp, 100 - tp - fp, np.full(n, 5000)], axis=1)

    diffs = differences(runs_table({("fast", 0): counts(tp_a), ("real-fewshot", 0): counts(tp_b)}),
                        n_resamples=8000)
    row = pick(diffs, reference="real-fewshot", metric="IoU_anomaly")
    ref = sps.bootstrap((tp_a / 100, tp_b / 100), lambda x, y, axis=-1: x.mean(axis) - y.mean(axis),
                        paired=True, method="percentile", n_resamples=8000, random_state=0)
    assert row["diff"] == pytest.approx((tp_a - tp_b).mean() / 100)
    width = ref.confidence_interval.high - ref.confidence_interval.low
    assert abs(row["lo"] - ref.confidence_interval.low) < 0.1 * width
    assert abs(row["hi"] - ref.confidence_interval.high) < 0.1 * width


def test_runs_with_different_test_images_are_an_error_naming_the_file():
    good = np.tile([1, 1, 1, 100], (5, 1))
    table = runs_table({("fast", 0): good, ("no-anomalies", 0): good})
    table = table.drop(index=0)
    with pytest.raises(FastError, match=r"per_image.csv of d/c fast unet seed 0: 4 images"):
        differences(table)


def test_per_image_csv_without_counts_is_an_error_naming_it(tmp_path):
    d = tmp_path / "segmentation" / "d" / "c" / "fast" / "unet" / "seed0"
    d.mkdir(parents=True)
    pd.DataFrame({"image": ["a.png"], "tp": [1]}).to_csv(d / "per_image.csv", index=False)
    with pytest.raises(FastError, match=r"per_image.csv: cannot read the metrics.json beside it"):
        load_per_image([d / "per_image.csv"])
    (d / "metrics.json").write_text(json.dumps({"dataset": "d", "category": "c", "method": "fast",
                                                "segmenter": "unet", "seed": 0}))
    with pytest.raises(FastError, match=r"per_image.csv: missing columns \['fp', 'fn', 'tn'\]"):
        load_per_image([d / "per_image.csv"])


# ----------------------------------------------------------------------------------- in the report
def _experiment(root, categories=("bottle", "cable"), seeds=(0, 1, 2), n=30):
    """metrics.json + per_image.csv (consistent with each other) for fast (clearly above the floor,
    about equal to real-fewshot), real-fewshot and no-anomalies."""
    rng = np.random.default_rng(3)
    for cat in categories:
        for method, p_tp in (("fast", 0.8), ("real-fewshot", 0.8), ("no-anomalies", 0.1)):
            for k in seeds:
                tp = rng.binomial(50, p_tp, n)
                fp = rng.integers(0, 10, n)
                c = np.stack([tp, fp, 50 - tp, 1000 - fp], axis=1)
                d = root / "segmentation" / "mvtec_ad" / cat / method / "segformer" / f"seed{k}"
                d.mkdir(parents=True)
                t = runs_table({(method, k): c}).drop(columns=["dataset", "category", "method", "segmenter", "seed"])
                t.to_csv(d / "per_image.csv", index=False)
                tp_, fp_, fn_, tn_ = c.sum(0)
                miou = (tp_ / (tp_ + fp_ + fn_) + tn_ / (tn_ + fp_ + fn_)) / 2
                rec = {key: 0.9 for key in METRIC_KEYS}
                rec.update(mIoU=miou, dataset="mvtec_ad", category=cat, method=method, segmenter="segformer", seed=k)
                (d / "metrics.json").write_text(json.dumps(rec))
    return root


def test_report_writes_differences_and_marks_significant_ones(tmp_path):
    results = _experiment(tmp_path / "exp")
    cfg = json.dumps({"experiment": "exp", "datasets": {"mvtec_ad": {"categories": ["bottle", "cable"]}},
                      "methods": ["fast"], "segmentation": {"segmenters": ["segformer"], "seeds": [0, 1, 2]}})
    assert main(["report", "--config", cfg, "--results", str(results), *report_args(results)]) == 0
    diffs = pd.read_csv(results / "tables" / "differences.csv")
    assert list(diffs.columns) == COLUMNS
    # 3 categories (bottle, cable, average) x 2 metrics x (fast vs both references, real-fewshot vs
    # no-anomalies and its mirror, so that every column of the table reads on its own)
    assert len(diffs) == 3 * 2 * 4
    assert set(zip(diffs.method, diffs.reference)) == {
        ("fast", "no-anomalies"), ("fast", "real-fewshot"), ("real-fewshot", "no-anomalies"),
        ("no-anomalies", "real-fewshot")}
    floor = pick(diffs, reference="no-anomalies", category="average")
    assert floor["significant"] and floor["lo"] > 0.1
    # the point estimate is the difference of the table's seed means
    summary = pd.read_csv(results / "tables" / "summary.csv")
    means = summary[summary.metric == "mIoU"].groupby(["method", "category"]).value.mean().unstack().mean(axis=1)
    assert floor["diff"] == pytest.approx(means["fast"] - means["no-anomalies"])
    same = pick(diffs, reference="real-fewshot", category="average")
    assert same["lo"] < same["diff"] < same["hi"]

    md = (results / "tables" / "comparison.md").read_text()
    assert "mvtec_ad / segformer: mIoU difference to no-anomalies / real-fewshot" in md
    assert "IoU_anomaly difference to no-anomalies" in md
    avg = next(line for line in md.splitlines() if line.startswith("| **average** | +"))
    cell = avg.split(" | ")[1]  # fast: vs no-anomalies (marked) / vs real-fewshot (not marked)
    assert cell.startswith(f"{floor['diff'] * 100:+.1f} [{floor['lo'] * 100:+.1f}, {floor['hi'] * 100:+.1f}]* / ")
    # the table's MDD from the per-seed values of summary.csv (metrics.json, not the per-image counts):
    # each cell's per-seed differences (the average row: each seed's mean over categories), their
    # sample SD, its root-mean-square over the 3 rows x 4 pairs shown, times (t_.975,2 + t_.80,2) / sqrt(3)
    per_seed = summary[summary.metric == "mIoU"].pivot_table(index=["category", "seed"], columns="method",
                                                               values="value")
    per_seed = pd.concat([per_seed, per_seed.groupby("seed").mean().assign(category="average")
                          .set_index("category", append=True).swaplevel()])
    pairs = [("fast", "no-anomalies"), ("fast", "real-fewshot"), ("real-fewshot", "no-anomalies"),
             ("no-anomalies", "real-fewshot")]
    sds = [np.std(per_seed.loc[c, a] - per_seed.loc[c, b], ddof=1) for c in ("bottle", "cable", "average")
           for a, b in pairs]
    for (a, b), sd in zip(pairs, sds[-4:]):
        assert pick(diffs, method=a, reference=b, category="average")["seed_sd"] == pytest.approx(sd)
    mdd = (4.302653 + 1.060660) * np.sqrt(np.mean(np.square(sds))) / np.sqrt(3)
    assert (f"Minimal detectable difference, mIoU percentage points (80 % power, two-sided paired t-test over "
            f"seeds at alpha 0.05): {mdd * 100:.1f} over 3 seeds (pooled per-seed SD "
            f"{np.sqrt(np.mean(np.square(sds))) * 100:.2f} over 12 pairs).") in md
    assert cell.endswith(f"[{same['lo'] * 100:+.1f}, {same['hi'] * 100:+.1f}]" + "^" * bool(same["seeds_disagree"])
                         + "~" * bool(abs(same["diff"]) < mdd))
    assert "~" in cell and "~" not in cell.split(" / ")[0]   # -0.1 against about 2 points; +33.9 is far above
    assert "*: the interval excludes 0" in md and "~: smaller in size than the minimal detectable difference" in md
    # Order: ours, then its differences, then the published block.
    assert md.index("mIoU / mAcc (%), mean") < md.index("mIoU difference") < md.index("REPORTED")
    tex = (results / "tables" / "comparison.tex").read_text()
    assert "IoU\\_anomaly difference" in tex
    assert "Minimal detectable difference, IoU\\_anomaly percentage points (80 \\% power" in tex
    assert "]\\textasciitilde{}" in tex and "~" not in tex   # a bare ~ is a LaTeX space


def test_report_without_per_image_files_writes_an_empty_differences_table(tmp_path):
    results = _experiment(tmp_path / "exp", categories=("bottle",), seeds=(0,))
    for p in results.glob("segmentation/**/per_image.csv"):
        p.unlink()
    cfg = json.dumps({"experiment": "exp", "datasets": {"mvtec_ad": {"categories": ["bottle"]}}, "methods": ["fast"],
                      "segmentation": {"segmenters": ["segformer"]}})
    assert main(["report", "--config", cfg, "--results", str(results), *report_args(results)]) == 0
    assert pd.read_csv(results / "tables" / "differences.csv").empty
    assert "difference to" not in (results / "tables" / "comparison.md").read_text()


def test_a_difference_one_seed_contradicts_is_flagged_with_its_per_seed_range():
    # Identical images within a run (every resample agrees, so the interval is a point): at seed 0
    # fast finds 45 of 50 defect pixels against the paste's 30, at seed 1 only 28 against 30. The
    # pooled difference is positive and "significant", but seed 1 says the opposite.
    def miou(tp, fp, fn, tn):
        return (tp / (tp + fp + fn) + tn / (tn + fp + fn)) / 2

    n = 10
    cells = {("fast", 0): [45, 5, 5, 945], ("fast", 1): [28, 5, 22, 945],
             ("defect-paste", 0): [30, 5, 20, 945], ("defect-paste", 1): [30, 5, 20, 945]}
    table = runs_table({k: np.tile(c, (n, 1)) for k, c in cells.items()})
    row = pick(differences(table, compare={"fast": ["defect-paste"]}), reference="defect-paste")
    per_seed = [miou(*cells["fast", k]) - miou(*cells["defect-paste", k]) for k in (0, 1)]
    assert per_seed[0] > 0 > per_seed[1] and np.mean(per_seed) > 0
    assert row["diff"] == pytest.approx(np.mean(per_seed)) and row["significant"]
    assert row["seed_lo"] == pytest.approx(per_seed[1]) and row["seed_hi"] == pytest.approx(per_seed[0])
    assert row["seeds_disagree"]
    assert fmt_diff(row)[0].endswith("]*^")
    # both seeds better: no flag; one seed only: nothing to disagree with
    cells["fast", 1] = [40, 5, 10, 945]
    table = runs_table({k: np.tile(c, (n, 1)) for k, c in cells.items()})
    row = pick(differences(table, compare={"fast": ["defect-paste"]}), reference="defect-paste")
    assert not row["seeds_disagree"] and fmt_diff(row)[0].endswith("]*")
    one = runs_table({k: np.tile(c, (n, 1)) for k, c in cells.items() if k[1] == 1})
    row = pick(differences(one, compare={"fast": ["defect-paste"]}), reference="defect-paste")
    assert not row["seeds_disagree"] and row["seed_lo"] == row["seed_hi"]


# ----------------------------------------------------------------------------------- minimal detectable difference
# Student t quantiles written out by hand: with 2 degrees of freedom t_p = (2p - 1) / sqrt(2 p (1 - p)),
# so t_.975,2 = 0.95 / sqrt(0.04875) = 4.302653 and t_.80,2 = 0.6 / sqrt(0.32) = 1.060660; with 4
# (a t table) t_.975,4 = 2.776445 and t_.80,4 = 0.940965.
T2 = 4.302653 + 1.060660       # = 5.363313
T4 = 2.776445 + 0.940965       # = 3.717410


def _iou_runs(tp_fast: list[int], tp_floor: int = 40, n: int = 10) -> pd.DataFrame:
    """tp + fp + fn = 100 on every (identical) image, so IoU_anomaly = tp / 100 exactly, per seed."""
    cells = {("fast", k): [tp, 0, 100 - tp, 900] for k, tp in enumerate(tp_fast)}
    cells |= {("no-anomalies", k): [tp_floor, 0, 100 - tp_floor, 900] for k in range(len(tp_fast))}
    return runs_table({key: np.tile(c, (n, 1)) for key, c in cells.items()})


def test_mdd_of_three_seeds_is_the_hand_computed_paired_t_difference():
    # IoU_anomaly: fast 0.50, 0.52, 0.54 against 0.40 at every seed -> d = 0.10, 0.12, 0.14;
    # s_d = sqrt((0.02^2 + 0 + 0.02^2) / 2) = 0.02; MDD = 5.363313 * 0.02 / sqrt(3) = 0.061930
    row = pick(differences(_iou_runs([50, 52, 54])), metric="IoU_anomaly")
    assert row["diff"] == pytest.approx(0.12) and row["n_seeds"] == 3
    assert row["seed_sd"] == pytest.approx(0.02)
    assert row["mdd"] == pytest.approx(0.061930, abs=1e-6)
    assert mdd_factor(3) == pytest.approx(T2 / np.sqrt(3), abs=1e-6)
    assert pick(differences(_iou_runs([50, 52, 54])), metric="IoU_anomaly", category="average")["mdd"] \
        == pytest.approx(0.061930, abs=1e-6)                     # one category: the same seeds


def test_mdd_of_five_seeds_is_the_hand_computed_paired_t_difference():
    # d = 0.10, 0.11, 0.12, 0.13, 0.14: squared deviations 4 + 1 + 0 + 1 + 4 = 10 (x 1e-4), so
    # s_d = sqrt(0.001 / 4) = 0.0158114; MDD = 3.717410 * 0.0158114 / sqrt(5) = 0.026286
    row = pick(differences(_iou_runs([50, 51, 52, 53, 54])), metric="IoU_anomaly")
    assert row["seed_sd"] == pytest.approx(0.0158114, abs=1e-7) and row["n_seeds"] == 5
    assert row["mdd"] == pytest.approx(0.026286, abs=1e-6)
    assert mdd_factor(5) == pytest.approx(T4 / np.sqrt(5), abs=1e-6)


def test_one_seed_has_no_mdd_and_its_table_says_so():
    diffs = differences(_iou_runs([50]))
    row = pick(diffs, metric="IoU_anomaly")
    assert row["n_seeds"] == 1 and np.isnan(row["seed_sd"]) and np.isnan(row["mdd"])
    assert np.isnan(mdd_factor(1)) and np.isnan(mdd_factor(0))
    table = differences_table(diffs, "d", "unet", ["fast"], ["c"], "IoU_anomaly")
    assert table.mdd == []
    assert table.footer == ("Minimal detectable difference: n/a (one seed; it needs the per-seed differences "
                            "of at least two seeds).")
    assert "~" not in "".join(t for row in table.rows for cell in row for t, _ in cell)
    assert table.footer in to_markdown(table)


def _diff_row(method, reference, diff, sd, n, category="c"):
    return {"dataset": "d", "category": category, "method": method, "segmenter": "unet", "reference": reference,
            "metric": "mIoU", "diff": diff, "lo": diff - 0.01, "hi": diff + 0.01, "significant": True,
            "n_images": 50, "n_seeds": n, "seed_lo": diff, "seed_hi": diff, "seeds_disagree": False,
            "seed_sd": sd, "mdd": mdd_factor(n) * sd}


def test_table_pools_the_seed_sd_of_its_pairs_and_marks_differences_below_the_mdd():
    # Shown with 3 seeds: a - no-anomalies (+15 points, s_d 3), a - real-fewshot (-5 points, s_d 4):
    # s_pooled = sqrt((0.03^2 + 0.04^2) / 2) = sqrt(0.00125) = 0.0353553,
    # MDD = 5.363313 * 0.0353553 / sqrt(3) = 0.109478 -> 10.9 points; -5 is below it (~), +15 is not.
    # b - no-anomalies has one seed (no MDD, no mark); a - defect-paste is not in this table, so its
    # large s_d must not enter the pool.
    diffs = pd.DataFrame([_diff_row("a", "no-anomalies", 0.15, 0.03, 3), _diff_row("a", "real-fewshot", -0.05, 0.04, 3),
                          _diff_row("b", "no-anomalies", 0.02, np.nan, 1), _diff_row("a", "defect-paste", 0.0, 0.5, 3)])
    table = differences_table(diffs, "d", "unet", ["a", "b"], ["c"], "mIoU")
    [pool] = table.mdd
    assert (pool.n_seeds, pool.n_pairs) == (3, 2)
    assert pool.sd == pytest.approx(0.0353553, abs=1e-7) and pool.mdd == pytest.approx(0.109478, abs=1e-6)
    assert table.footer == ("Minimal detectable difference, mIoU percentage points (80 % power, two-sided paired "
                            "t-test over seeds at alpha 0.05): 10.9 over 3 seeds (pooled per-seed SD 3.54 over "
                            "2 pairs); n/a for the 1 pair with one seed.")
    [row] = table.rows
    assert row[1] == [("+15.0 [+14.0, +16.0]*", False), ("-5.0 [-6.0, -4.0]*~", False)]
    assert row[2] == [("+2.0 [+1.0, +3.0]*", False), ("-", False)]   # one seed: below 10.9 but unmarked
    md = to_markdown(table)
    assert "| c | +15.0 [+14.0, +16.0]* / -5.0 [-6.0, -4.0]*~ |" in md
    assert md.index("| c |") < md.index(table.footer) < md.index("~: smaller in size than the minimal")
    tex = to_latex(table)
    assert "-5.0 [-6.0, -4.0]*\\textasciitilde{}" in tex
    assert "(80 \\% power, two-sided paired t-test over seeds at alpha 0.05): 10.9 over 3 seeds" in tex
    # the pair's own MDD in the CSV column, from its own s_d: 5.363313 * 0.04 / sqrt(3) = 0.123861
    assert diffs.loc[1, "mdd"] == pytest.approx(0.123861, abs=1e-6)


def test_pairs_with_other_seed_counts_get_their_own_mdd():
    # 5 seeds: s_d 0.01 and 0.02 -> s_pooled = sqrt(0.00025) = 0.0158114, MDD = 3.717410 * 0.0158114 /
    # sqrt(5) = 0.026286 (2.6 points); 3 seeds: s_d 0.02 alone -> 5.363313 * 0.02 / sqrt(3) = 0.061930
    diffs = pd.DataFrame([_diff_row("a", "no-anomalies", 0.03, 0.01, 5), _diff_row("a", "real-fewshot", 0.02, 0.02, 5),
                          _diff_row("b", "no-anomalies", 0.05, 0.02, 3)])
    table = differences_table(diffs, "d", "unet", ["a", "b"], ["c"], "mIoU")
    assert [(p.n_seeds, p.n_pairs) for p in table.mdd] == [(5, 2), (3, 1)]
    assert [p.mdd for p in table.mdd] == pytest.approx([0.026286, 0.061930], abs=1e-6)
    assert "2.6 over 5 seeds (pooled per-seed SD 1.58 over 2 pairs); 6.2 over 3 seeds" in table.footer
    # +3.0 is above the 5-seed MDD, +2.0 below it; +5.0 is below the 3-seed one
    assert [c for c, _ in table.rows[0][1]] == ["+3.0 [+2.0, +4.0]*", "+2.0 [+1.0, +3.0]*~"]
    assert table.rows[0][2][0][0] == "+5.0 [+4.0, +6.0]*~"


# ----------------------------------------------------------------------------------- sampler frontier
def test_frontier_pairs_compare_aias_with_every_other_solver_at_the_same_nfe():
    methods = ["fast", "fast-aias-nfe12", "fast-aiaspaper-nfe12", "fast-dpmpp-nfe12", "fast-ddim-nfe12",
               "fast-dpmpp-nfe4", "fast-aias-nfe4", "fast-aias-nfe50", "no-anomalies"]
    assert frontier_pairs(methods) == {"fast-aias-nfe12": ["fast-dpmpp-nfe12", "fast-ddim-nfe12"],
                                       "fast-aiaspaper-nfe12": ["fast-dpmpp-nfe12", "fast-ddim-nfe12"],
                                       "fast-aias-nfe4": ["fast-dpmpp-nfe4"]}   # nfe50 has no partner
    assert frontier_pairs(["fast", "cutpaste", "no-anomalies"]) == {}


def test_fast_itself_is_the_aias_entry_at_its_recorded_nfe():
    # `fast` (AIAS-10: 10 segments + t_fine 2 = NFE 12) pairs with the solvers at NFE 12 by the NFE
    # its synthesis recorded; without FARM it is another treatment and stays out; DDIM-50 is DDIM at 50
    methods = ["fast", "fast-nofarm", "fast-ddim50", "fast-dpmpp-nfe12", "fast-aias-nfe50", "no-anomalies"]
    nfe = {"fast": 12.0, "fast-nofarm": 12.0, "fast-ddim50": 50.0, "fast-dpmpp-nfe12": 12.0}
    entries = frontier_entries(methods, nfe)
    assert entries == {"fast": ("aias", 12), "fast-ddim50": ("ddim", 50), "fast-dpmpp-nfe12": ("dpmpp", 12),
                       "fast-aias-nfe50": ("aias", 50)}
    assert frontier_pairs(methods, entries) == {"fast": ["fast-dpmpp-nfe12"], "fast-aias-nfe50": ["fast-ddim50"]}
    assert frontier_entries(methods, nfe, coefficients="paper")["fast"] == ("aiaspaper", 12)
    assert frontier_entries(methods)["fast-aias-nfe50"] == ("aias", 50) and "fast" not in frontier_entries(methods)


def test_sampler_difference_is_the_hand_computed_paired_difference_and_reaches_the_report(tmp_path):
    # AIAS finds 40 of 50 defect pixels per image, DPM-Solver++ 30, at the same NFE; one seed.
    n = 20
    counts = {"fast-aias-nfe12": np.tile([40, 5, 10, 945], (n, 1)),
              "fast-dpmpp-nfe12": np.tile([30, 5, 20, 945], (n, 1))}
    table = runs_table({(m, 0): c for m, c in counts.items()})
    diffs = differences(table, compare=frontier_pairs(counts))
    row = pick(diffs, method="fast-aias-nfe12", reference="fast-dpmpp-nfe12")

    def miou(tp, fp, fn, tn):
        return (tp / (tp + fp + fn) + tn / (tn + fp + fn)) / 2

    expected = miou(40, 5, 10, 945) - miou(30, 5, 20, 945)   # identical images: every resample agrees
    assert row["diff"] == pytest.approx(expected) and row["lo"] == pytest.approx(expected)
    assert row["significant"] and set(diffs.reference) == {"fast-dpmpp-nfe12"}

    root = tmp_path / "exp"
    # a reference row beside them, as in every real run: its differences to the AIAS entries must
    # not reach the equal-NFE table (they crashed it); and `fast` itself (AIAS-10, the same numbers),
    # an AIAS entry by the NFE 12 its timing.json records
    timing = root / "synthetic" / "d" / "c" / "fast" / "timing.json"
    timing.parent.mkdir(parents=True)
    timing.write_text(json.dumps({"dataset": "synthetic", "category": "c", "method": "fast", "nfe": 12.0}))
    runs = {**counts, "fast": counts["fast-aias-nfe12"], "no-anomalies": np.tile([0, 0, 50, 950], (n, 1))}
    for method, c in runs.items():
        d = root / "segmentation" / "d" / "c" / method / "unet" / "seed0"
        d.mkdir(parents=True)
        runs_table({(method, 0): c}).drop(columns=["dataset", "category", "method", "segmenter", "seed"]
                                          ).to_csv(d / "per_image.csv", index=False)
        tp, fp, fn, tn = c.sum(0)
        rec = {key: 0.5 for key in METRIC_KEYS}
        rec.update(mIoU=miou(tp, fp, fn, tn), dataset="synthetic", category="c", method=method, segmenter="unet",
                   seed=0)
        (d / "metrics.json").write_text(json.dumps(rec))
    cfg = json.dumps({"experiment": "exp", "datasets": {"synthetic": {"categories": ["c"]}},
                      "methods": ["fast", *counts], "segmentation": {"segmenters": ["unet"], "seeds": [0]}})
    metrics = [str(p) for p in sorted(root.rglob("metrics.json"))]
    assert main(["report", "--config", cfg, "--results", str(root), "--metrics", *metrics,
                 "--timings", str(timing)]) == 0
    md = (root / "tables" / "comparison.md").read_text()
    assert "AIAS minus each solver at equal NFE, mIoU" in md
    section = md[md.index("AIAS minus each solver"):]
    assert "Minimal detectable difference: n/a (one seed;" in section.split("####")[0]
    e = f"{expected * 100:+.1f}"
    for entry in ("fast", "fast-aias-nfe12"):
        line = next(x for x in md.splitlines() if x.startswith(f"| {entry} |") and "[" in x)
        assert line.rstrip(" |").split(" | ")[1:] == ["12", f"{e} [{e}, {e}]*"]   # one solver column
    written = pd.read_csv(root / "tables" / "differences.csv")
    assert {("fast-aias-nfe12", "fast-dpmpp-nfe12"), ("fast", "fast-dpmpp-nfe12")} <= set(
        zip(written.method, written.reference))


def test_every_method_is_compared_with_the_paste_baseline_when_it_ran(tmp_path):
    # fast finds 40 of 50 defect pixels per image, defect-paste 30 (identical images: a zero-width
    # interval at the hand-computed difference), so the table says fast beat the baseline.
    root = tmp_path / "exp"
    per_method = {"fast": [40, 5, 10, 945], "defect-paste": [30, 5, 20, 945], "real-fewshot": [45, 5, 5, 945],
                  "no-anomalies": [0, 0, 50, 950]}
    for method, c in per_method.items():
        d = root / "segmentation" / "mvtec_ad" / "bottle" / method / "segformer" / "seed0"
        d.mkdir(parents=True)
        runs_table({(method, 0): np.tile(c, (10, 1))}).drop(
            columns=["dataset", "category", "method", "segmenter", "seed"]).to_csv(d / "per_image.csv", index=False)
        tp, fp, fn, tn = c
        rec = {key: 0.5 for key in METRIC_KEYS}
        rec.update(mIoU=(tp / (tp + fp + fn) + tn / (tn + fp + fn)) / 2, dataset="mvtec_ad", category="bottle",
                   method=method, segmenter="segformer", seed=0)
        (d / "metrics.json").write_text(json.dumps(rec))
    cfg = json.dumps({"experiment": "exp", "datasets": {"mvtec_ad": {"categories": ["bottle"]}},
                      "methods": ["fast", "defect-paste"], "segmentation": {"segmenters": ["segformer"], "seeds": [0]}})
    assert main(["report", "--config", cfg, "--results", str(root), *report_args(root)]) == 0
    diffs = pd.read_csv(root / "tables" / "differences.csv")
    row = pick(diffs, reference="defect-paste", category="bottle")
    expected = (40 / 55 + 945 / 960) / 2 - (30 / 55 + 945 / 970) / 2
    assert row["diff"] == pytest.approx(expected) and row["significant"]
    assert set(diffs[diffs.reference == "defect-paste"].method) == {"fast"}
    md = (root / "tables" / "comparison.md").read_text()
    assert "mvtec_ad / segformer: mIoU difference to defect-paste" in md
    section = md[md.index("mIoU difference to defect-paste"):]
    line = next(x for x in section.splitlines() if x.startswith("| bottle |"))
    e = f"{expected * 100:+.1f}"
    assert line.rstrip(" |").split(" | ")[1] == f"{e} [{e}, {e}]*"
    assert "to defect-paste, with a 95 % paired bootstrap" in section
