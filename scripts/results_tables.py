"""The markdown tables of a published results directory's README, printed from its CSVs (so that
no number in a README is copied by hand).

  python scripts/results_tables.py headline docs/results/magnetic_tile
      method | mIoU mean +- std over seeds | difference to each reference row and to defect-paste
      (points, 95 % paired bootstrap from differences.csv; * = interval excludes 0), best first,
      the reference rows last
  python scripts/results_tables.py frontier docs/results/magnetic_tile_frontier
      sampler x NFE: downstream mIoU (in-mask fidelity ratio) from efficiency.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from fast.report.tables import fmt_diff

REFERENCES = ("no-anomalies", "real-fewshot", "defect-paste")
SAMPLER_NAMES = {"aias": "AIAS, exact coefficients", "aiaspaper": "AIAS, paper coefficients",
                 "ddim": "DDIM", "dpmpp": "DPM-Solver++ 2M", "unipc": "UniPC", "deis": "DEIS"}


def _cell(row) -> str:
    return fmt_diff(row.to_dict())[0]     # the report's own cell: interval, * and ^ (seeds disagree)


def headline(results: Path, metric: str = "mIoU") -> str:
    summary = pd.read_csv(results / "summary.csv")
    diffs = pd.read_csv(results / "differences.csv")
    scores = summary[summary.metric == metric].groupby("method").value.agg(["mean", "std"]) * 100
    rows = [r for r in ("real-fewshot", "no-anomalies") if r in scores.index]   # reference rows last
    scores = pd.concat([scores.drop(index=rows).sort_values("mean", ascending=False), scores.loc[rows]])
    diffs = diffs[diffs.metric == metric]
    refs = [r for r in REFERENCES if (diffs.reference == r).any()]
    best = scores.index[0]                                    # the best synthesis method
    lines = [f"| method | {metric} | " + " | ".join(f"vs {r}" for r in refs) + " |",
             "|---|---:|" + "---:|" * len(refs)]
    for method, s in scores.iterrows():
        value = f"{s['mean']:.1f} +- {0 if pd.isna(s['std']) else s['std']:.1f}"
        cells = []
        for ref in refs:
            row = diffs[(diffs.method == method) & (diffs.reference == ref)]
            cells.append(_cell(row.iloc[0]) if len(row) else "")
        lines.append(f"| {method} | {f'**{value}**' if method == best else value} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


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
