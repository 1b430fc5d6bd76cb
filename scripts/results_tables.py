"""The markdown tables of a published results directory's README, printed from its CSVs (so that
no number in a README is copied by hand).

  python scripts/results_tables.py headline docs/results/magnetic_tile
      method | mIoU mean +- std over seeds | difference to each reference row and to defect-paste
      (points, 95 % paired bootstrap from differences.csv; * = interval excludes 0, ^ = the seeds
      disagree, ~ = smaller in size than the minimal detectable difference), best first, the
      reference rows last; then the line with the table's minimal detectable difference (MDD,
      fast.report.stats: pooled over the pairs shown). A differences.csv written before the MDD
      existed (no seed_sd column) gets each pair's per-seed SD from summary.csv's per-seed values.
  python scripts/results_tables.py frontier docs/results/magnetic_tile_frontier
      sampler x NFE: downstream mIoU (in-mask fidelity ratio) from efficiency.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from fast.report.stats import AVERAGE, pooled_mdd
from fast.report.tables import fmt_diff, mdd_line

REFERENCES = ("no-anomalies", "real-fewshot", "defect-paste")
SAMPLER_NAMES = {"aias": "AIAS, exact coefficients", "aiaspaper": "AIAS, paper coefficients",
                 "ddim": "DDIM", "dpmpp": "DPM-Solver++ 2M", "unipc": "UniPC", "deis": "DEIS"}


def _cell(row, mdd: float | None) -> str:
    return fmt_diff(row, mdd)[0]     # the report's own cell: interval, *, ^ (seeds disagree), ~ (below the MDD)


def _seed_differences(summary: pd.DataFrame, row: dict, metric: str) -> pd.Series:
    """Per shared seed, the row's method minus its reference in summary.csv (the category average:
    each seed's mean over categories), i.e. the per-seed differences stats.differences pools."""
    sub = summary[summary.metric == metric]
    for key in ("dataset", "segmenter", "category"):
        if key in sub and not pd.isna(row.get(key)) and not (key == "category" and row[key] == AVERAGE):
            sub = sub[sub[key] == row[key]]
    values = sub.groupby(["seed", "method"]).value.mean().unstack("method")
    if row["method"] not in values or row["reference"] not in values:
        return pd.Series(dtype=float)
    return (values[row["method"]] - values[row["reference"]]).dropna()


def _with_seed_sd(summary: pd.DataFrame, row: dict, metric: str) -> dict:
    """``row`` with ``seed_sd`` and ``n_seeds`` for the MDD: as written, or (an older differences.csv)
    from summary.csv's per-seed values."""
    if "seed_sd" in row and not pd.isna(row.get("n_seeds")):
        return row
    d = _seed_differences(summary, row, metric)
    return {**row, "n_seeds": len(d), "seed_sd": float(np.std(d, ddof=1)) if len(d) >= 2 else np.nan}


def headline(results: Path, metric: str = "mIoU") -> str:
    summary = pd.read_csv(results / "summary.csv")
    diffs = pd.read_csv(results / "differences.csv")
    scores = summary[summary.metric == metric].groupby("method").value.agg(["mean", "std"]) * 100
    rows = [r for r in ("real-fewshot", "no-anomalies") if r in scores.index]   # reference rows last
    scores = pd.concat([scores.drop(index=rows).sort_values("mean", ascending=False), scores.loc[rows]])
    diffs = diffs[diffs.metric == metric]
    refs = [r for r in REFERENCES if (diffs.reference == r).any()]
    cells = {}
    for method in scores.index:
        for ref in refs:
            row = diffs[(diffs.method == method) & (diffs.reference == ref)]
            if len(row):
                cells[method, ref] = _with_seed_sd(summary, row.iloc[0].to_dict(), metric)
    # the MDD pools every pair the table shows, so the marks need it before any cell is written
    pools = pooled_mdd([c["seed_sd"] for c in cells.values()], [c["n_seeds"] for c in cells.values()])
    mdd_of = {p.n_seeds: p.mdd for p in pools}
    best = scores.index[0]                                    # the best synthesis method
    lines = [f"| method | {metric} | " + " | ".join(f"vs {r}" for r in refs) + " |",
             "|---|---:|" + "---:|" * len(refs)]
    for method, s in scores.iterrows():
        value = f"{s['mean']:.1f} +- {0 if pd.isna(s['std']) else s['std']:.1f}"
        row_cells = [_cell(c, mdd_of.get(int(c["n_seeds"]))) if (c := cells.get((method, ref))) else ""
                     for ref in refs]
        lines.append(f"| {method} | {f'**{value}**' if method == best else value} | " + " | ".join(row_cells) + " |")
    footer = mdd_line(pools, metric, [c["n_seeds"] for c in cells.values()])
    return "\n".join([*lines, "", footer + (" ~: a difference smaller in size than it." if pools else "")])


def frontier(results: Path) -> str:
    eff = pd.read_csv(results / "efficiency.csv").dropna(subset=["sampler"])
    nfes = sorted(eff.nfe.unique())
    lines = ["| sampler | " + " | ".join(f"NFE {int(n)}" for n in nfes) + " |", "|---|" + "---:|" * len(nfes)]
    best = eff.groupby("nfe").mIoU_mean.max()
    for sampler in [s for s in SAMPLER_NAMES if s in set(eff.sampler)]:
        cells = []
        for n in nfes:
            row = eff[(eff.sampler == sampler) & (eff.nfe == n)]
            if not len(row):
                cells.append("")
                continue
            r = row.iloc[0]
            value = f"{r.mIoU_mean:.1f}"
            cells.append(f"{f'**{value}**' if r.mIoU_mean == best[n] else value} ({r.fidelity_ratio:.2f})")
        lines.append(f"| {SAMPLER_NAMES[sampler]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("table", choices=["headline", "frontier"])
    ap.add_argument("results", type=Path, help="a published results directory (docs/results/<name>)")
    ap.add_argument("--metric", default="mIoU")
    args = ap.parse_args()
    print(headline(args.results, args.metric) if args.table == "headline" else frontier(args.results))


if __name__ == "__main__":
    main()
