"""scripts/results_tables.py: the README tables printed from a results directory's CSVs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "results_tables.py"
spec = importlib.util.spec_from_file_location("results_tables", SCRIPT)
results_tables = importlib.util.module_from_spec(spec)
spec.loader.exec_module(results_tables)


def _summary(tmp_path, values):
    rows = [{"dataset": "d", "category": "c", "method": m, "segmenter": "s", "seed": i, "metric": "mIoU", "value": v}
            for m, vs in values.items() for i, v in enumerate(vs)]
    pd.DataFrame(rows).to_csv(tmp_path / "summary.csv", index=False)


def _differences(tmp_path, rows, **columns):
    pd.DataFrame([{"method": m, "reference": r, "metric": "mIoU", "diff": d, "lo": lo, "hi": hi, "significant": s,
                   **{k: v[i] for k, v in columns.items()}} for i, (m, r, d, lo, hi, s) in enumerate(rows)]
                 ).to_csv(tmp_path / "differences.csv", index=False)


def test_headline_orders_methods_marks_the_best_and_formats_intervals(tmp_path):
    # A differences.csv from before the MDD (no seed_sd, no n_seeds): each pair's per-seed differences
    # come from summary.csv. a - no-anomalies: 0.10, 0.12; a - real-fewshot: -0.20, -0.18 (s_d =
    # 0.02 / sqrt(2) = 0.0141421 each); b - no-anomalies: 0.20, 0.24 (s_d = 0.04 / sqrt(2) = 0.0282843).
    # s_pooled = sqrt((0.0002 + 0.0002 + 0.0008) / 3) = 0.02. Two seeds, one degree of freedom (Cauchy:
    # t_p = tan(pi (p - 1/2))): t_.975,1 = 12.706205, t_.80,1 = 1.376382, so
    # MDD = 14.082587 * 0.02 / sqrt(2) = 0.199158 -> 19.9 points: +11 and -19 are below it, +22 is not.
    _summary(tmp_path, {"a": [0.60, 0.62], "b": [0.70, 0.74], "real-fewshot": [0.80, 0.80],
                        "no-anomalies": [0.50, 0.50]})
    _differences(tmp_path, [("a", "no-anomalies", 0.11, 0.05, 0.15, True),
                            ("a", "real-fewshot", -0.19, -0.25, -0.1, True),
                            ("b", "no-anomalies", 0.22, -0.01, 0.3, False)],
                 seeds_disagree=[False, True, False])
    lines = results_tables.headline(tmp_path).splitlines()
    assert lines[0] == "| method | mIoU | vs no-anomalies | vs real-fewshot |"
    assert [line.split(" | ")[0] for line in lines[2:6]] == ["| b", "| a", "| real-fewshot", "| no-anomalies"]
    assert lines[2] == "| b | **72.0 +- 2.8** | +22.0 [-1.0, +30.0] |  |"     # best, not significant
    assert lines[3] == "| a | 61.0 +- 1.4 | +11.0 [+5.0, +15.0]*~ | -19.0 [-25.0, -10.0]*^~ |"   # seeds disagree
    assert lines[6:] == ["", "Minimal detectable difference, mIoU percentage points (80 % power, two-sided paired "
                             "t-test over seeds at alpha 0.05): 19.9 over 2 seeds (pooled per-seed SD 2.00 over "
                             "3 pairs). ~: a difference smaller in size than it."]


def test_headline_takes_the_seed_sd_differences_csv_states(tmp_path):
    # Five seeds per pair in differences.csv (summary.csv here has one seed, so it cannot be the source):
    # s_d 0.01 and 0.02 -> s_pooled = sqrt((0.0001 + 0.0004) / 2) = 0.0158114; t_.975,4 = 2.776445,
    # t_.80,4 = 0.940965 (t table): MDD = 3.717410 * 0.0158114 / sqrt(5) = 0.026286 -> 2.6 points.
    _summary(tmp_path, {"a": [0.60], "no-anomalies": [0.50], "real-fewshot": [0.62]})
    _differences(tmp_path, [("a", "no-anomalies", 0.10, 0.08, 0.12, True),
                            ("a", "real-fewshot", -0.02, -0.03, -0.01, True)],
                 n_seeds=[5, 5], seed_sd=[0.01, 0.02], mdd=[0.0166248, 0.0332495])
    lines = results_tables.headline(tmp_path).splitlines()
    assert lines[2] == "| a | **60.0 +- 0.0** | +10.0 [+8.0, +12.0]* | -2.0 [-3.0, -1.0]*~ |"
    assert lines[-1].startswith("Minimal detectable difference, mIoU percentage points (80 % power, two-sided "
                                "paired t-test over seeds at alpha 0.05): 2.6 over 5 seeds (pooled per-seed SD "
                                "1.58 over 2 pairs).")


def test_headline_of_one_seed_states_that_the_mdd_is_undefined(tmp_path):
    # an older differences.csv without any seed column, one seed per method in summary.csv
    _summary(tmp_path, {"a": [0.60], "no-anomalies": [0.50]})
    _differences(tmp_path, [("a", "no-anomalies", 0.10, 0.08, 0.12, True)])
    lines = results_tables.headline(tmp_path).splitlines()
    assert lines[2] == "| a | **60.0 +- 0.0** | +10.0 [+8.0, +12.0]* |"
    assert lines[-1] == ("Minimal detectable difference: n/a (one seed; it needs the per-seed differences of at "
                         "least two seeds).")


def test_frontier_grid_is_sampler_by_nfe_with_the_best_per_nfe_in_bold(tmp_path):
    rows = [("fast", "aias", 12, 0.6, 0.8), ("fast-dpmpp-nfe12", "dpmpp", 12, 0.7, 0.9),
            ("fast-dpmpp-nfe4", "dpmpp", 4, 0.5, 1.1), ("defect-paste", None, None, 0.9, None)]
    pd.DataFrame([{"method": m, "sampler": s, "nfe": n, "mIoU_mean": 100 * v, "fidelity_ratio": f}
                  for m, s, n, v, f in rows]).to_csv(tmp_path / "efficiency.csv", index=False)
    lines = results_tables.frontier(tmp_path).splitlines()
    assert lines[0] == "| sampler | NFE 4 | NFE 12 |"
    assert lines[2] == "| AIAS, exact coefficients |  | 60.0 (0.80) |"
    assert lines[3] == "| DPM-Solver++ 2M | **50.0** (1.10) | **70.0** (0.90) |"
