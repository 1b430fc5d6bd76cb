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


def test_headline_orders_methods_marks_the_best_and_formats_intervals(tmp_path):
    _summary(tmp_path, {"a": [0.60, 0.62], "b": [0.70, 0.72], "real-fewshot": [0.80, 0.80],
                        "no-anomalies": [0.50, 0.50]})
    diffs = [("a", "no-anomalies", 0.11, 0.05, 0.15, True), ("a", "real-fewshot", -0.19, -0.25, -0.1, True),
             ("b", "no-anomalies", 0.21, -0.01, 0.3, False)]
    pd.DataFrame([{"method": m, "reference": r, "metric": "mIoU", "diff": d, "lo": lo, "hi": hi,
                   "significant": s, "seeds_disagree": r == "real-fewshot"} for m, r, d, lo, hi, s in diffs]
                 ).to_csv(tmp_path / "differences.csv", index=False)
    lines = results_tables.headline(tmp_path).splitlines()
    assert lines[0] == "| method | mIoU | vs no-anomalies | vs real-fewshot |"
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| b", "| a", "| real-fewshot", "| no-anomalies"]
    assert lines[2] == "| b | **71.0 +- 1.4** | +21.0 [-1.0, +30.0] |  |"     # best, not significant
    assert lines[3] == "| a | 61.0 +- 1.4 | +11.0 [+5.0, +15.0]* | -19.0 [-25.0, -10.0]*^ |"   # seeds disagree


def test_frontier_grid_is_sampler_by_nfe_with_the_best_per_nfe_in_bold(tmp_path):
    rows = [("fast", "aias", 12, 0.6, 0.8), ("fast-dpmpp-nfe12", "dpmpp", 12, 0.7, 0.9),
            ("fast-dpmpp-nfe4", "dpmpp", 4, 0.5, 1.1), ("defect-paste", None, None, 0.9, None)]
    pd.DataFrame([{"method": m, "sampler": s, "nfe": n, "mIoU_mean": 100 * v, "fidelity_ratio": f}
                  for m, s, n, v, f in rows]).to_csv(tmp_path / "efficiency.csv", index=False)
    lines = results_tables.frontier(tmp_path).splitlines()
    assert lines[0] == "| sampler | NFE 4 | NFE 12 |"
    assert lines[2] == "| AIAS, exact coefficients |  | 60.0 (0.80) |"
    assert lines[3] == "| DPM-Solver++ 2M | **50.0** (1.10) | **70.0** (0.90) |"
