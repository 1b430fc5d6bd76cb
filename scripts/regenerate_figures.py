"""Redraw the figures of published runs from their committed tables (no experiment is rerun):

  python scripts/regenerate_figures.py docs/results/magnetic_tile docs/results/frontier ...

For each RUN_DIR (a folder of docs/results/) figures/metrics/ is replaced by what `fast report`
draws (fast.report.figures.make_figures) from the run's summary.csv, efficiency.csv and
differences.csv, methods in the order of its config.yaml. figures/sample_grid.png needs the
synthetic images, which are not committed: it is redrawn (by `fast grid`'s run_grid, from the first
seed's sets, --per-cell 6 by default) only where the run's pipeline output exists, under
RESULTS/<experiment>/synthetic/ (default RESULTS: results/, prepared data: data/prepared/);
otherwise the committed one is kept.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd
import yaml

from fast.io import atomic_dir
from fast.methods import REFERENCE_ROWS
from fast.report.collect import method_order
from fast.report.figures import make_figures
from fast.commands.grid import run_grid

log = logging.getLogger("regenerate_figures")


def _config(run: Path) -> dict:
    return yaml.safe_load((run / "config.yaml").read_text()) or {}


def redraw_metrics(run: Path) -> list[Path]:
    """figures/metrics/ of ``run`` from its tables; the paths written."""
    long = pd.read_csv(run / "summary.csv")
    eff = pd.read_csv(run / "efficiency.csv")
    diffs_path = run / "differences.csv"
    diffs = pd.read_csv(diffs_path) if diffs_path.is_file() else None
    methods = method_order(long.method, _config(run).get("methods") or [])
    with atomic_dir(run / "figures" / "metrics") as tmp:
        written = make_figures(long, eff, methods, tmp, diffs)
    return [run / "figures" / "metrics" / p.name for p in written]


def synthetic_dirs(run: Path, results: Path) -> list[str]:
    """The sets the workflow's sample_grid rule hands `fast grid` (the first seed's with
    synthesis.per_seed), where they exist under ``results``; empty when none does."""
    cfg = _config(run)
    root = results / str(cfg.get("experiment", run.name)) / "synthetic"
    first_seed = ((cfg.get("segmentation") or {}).get("seeds") or [0])[0]
    long = pd.read_csv(run / "summary.csv", usecols=["dataset", "category", "method"])
    methods = [m for m in method_order(long.method, cfg.get("methods") or []) if m not in REFERENCE_ROWS]
    dirs = []
    for (dataset, category), _ in long.groupby(["dataset", "category"], sort=True):
        for m in methods:
            d = root / dataset / str(category) / m
            d = d / f"seed{first_seed}" if (d / f"seed{first_seed}").is_dir() else d
            if (d / "manifest.csv").is_file():
                dirs.append(str(d))
    return dirs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", metavar="RUN_DIR", help="published run folders (docs/results/<run>)")
    ap.add_argument("--results", default="results", help="pipeline output root (RESULTS/<experiment>/synthetic)")
    ap.add_argument("--prepared", default="data/prepared", help="prepared data root (the real row of the grid)")
    # 6: three samples per defect type on two-type data (`fast grid`'s default 3 gives two)
    ap.add_argument("--per-cell", type=int, default=6, help="samples per method in the grid (`fast grid --per-cell`)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for run in map(Path, args.runs):
        for path in redraw_metrics(run):
            print(path)
        dirs = synthetic_dirs(run, Path(args.results))
        grid = run / "figures" / "sample_grid.png"
        if not dirs:
            print(f"{grid}: kept (no synthetic sets of this run under {args.results}/)")
            continue
        prepared = args.prepared if Path(args.prepared).is_dir() else None
        run_grid(argparse.Namespace(synthetic=dirs, out=str(grid), per_cell=args.per_cell, prepared=prepared))
        print(grid)


if __name__ == "__main__":
    main()
