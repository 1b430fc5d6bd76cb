"""`fast report`: every table and figure of one experiment (what it writes: fast.report.build)."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from fast.config import load_config
from fast.errors import FastError
from fast.io import atomic_dir, atomic_path, write_json
from fast.report.build import DEFAULT_REFERENCE, comparison_documents
from fast.report.collect import (experiment_rows, load_fidelity, load_metrics, load_reference, load_timings,
                                 method_order)
from fast.report.figures import make_figures
from fast.report.stats import baseline_pairs, differences, frontier_entries, frontier_pairs, load_per_image
from fast.report.tables import aggregate, efficiency_table, per_type_iou, summary_json

log = logging.getLogger(__name__)


def run_report(args) -> int:
    cfg = load_config(args.config)
    results = Path(args.results)
    out = Path(args.out) if args.out else results
    if not results.is_dir():
        raise FastError(f"results directory not found: {results}")
    reference_path = Path(args.reference) if args.reference else DEFAULT_REFERENCE
    if args.reference and not reference_path.is_file():
        raise FastError(f"reference file not found: {reference_path} (config paths.reference)")

    # Exactly the files handed in (the workflow's report rule passes its declared inputs), each
    # row kept only if it belongs to the configured experiment.
    long = _configured(load_metrics(args.metrics), cfg, "metrics.json")
    if long.empty:
        raise FastError("no metrics.json given (--metrics) belongs to the configured experiment: "
                        "run the evaluate rules first")
    timings = _configured(load_timings(args.timings or []), cfg, "timing.json")
    reference = load_reference(reference_path)
    methods = method_order(long.method, cfg["methods"])
    tables = out / "tables"

    with atomic_path(tables / "summary.csv") as tmp:
        long.to_csv(tmp, index=False)
    write_json(tables / "summary.json", summary_json(aggregate(long)))
    per_image_files = (Path(p).with_name("per_image.csv") for p in args.metrics)
    per_image = _configured(load_per_image([p for p in per_image_files if p.is_file()]), cfg, "per_image.csv")
    diffs = differences(per_image)
    # each method against the paste baseline, AIAS against each solver at equal NFE (when run)
    nfe = pd.to_numeric(timings["nfe"], errors="coerce").groupby(timings["method"]).max().dropna().to_dict()
    entries = frontier_entries(methods, nfe, cfg["aias"]["coefficients"])
    frontier, baseline = frontier_pairs(methods, entries), baseline_pairs(methods)
    compare = {m: [*baseline.get(m, []), *frontier.get(m, [])] for m in {*baseline, *frontier}}
    if compare:
        extra = differences(per_image, compare=compare)
        diffs = extra if diffs.empty else pd.concat([diffs, extra], ignore_index=True)
    per_type = per_type_iou(per_image)
    with atomic_path(tables / "per_type.csv") as tmp:
        per_type.to_csv(tmp, index=False)
    with atomic_path(tables / "differences.csv") as tmp:
        diffs.to_csv(tmp, index=False)
    fidelity = _configured(load_fidelity(args.fidelity or []), cfg, "fidelity CSV")
    with atomic_path(tables / "fidelity.csv") as tmp:
        fidelity.to_csv(tmp, index=False)
    md, tex = comparison_documents(long, reference, methods, cfg["experiment"], diffs, fidelity, per_type,
                                    frontier, entries)
    with atomic_path(tables / "comparison.md") as tmp:
        tmp.write_text(md)
    with atomic_path(tables / "comparison.tex") as tmp:
        tmp.write_text(tex)
    eff = efficiency_table(long, timings, methods, fidelity)
    with atomic_path(tables / "efficiency.csv") as tmp:
        eff.to_csv(tmp, index=False)
    with atomic_dir(out / "figures" / "metrics") as fig_dir:
        figures = make_figures(long, eff, methods, fig_dir, diffs)
    log.info("report: %d result rows, %d methods, %d figures, %d bootstrap differences (%d significant), "
             "%d fidelity rows -> %s", len(long), len(methods), len(figures), len(diffs),
             int(diffs["significant"].sum()) if len(diffs) else 0, len(fidelity), out)
    return 0


def _configured(table: pd.DataFrame, cfg: dict, what: str) -> pd.DataFrame:
    """The rows of ``table`` that belong to the configured experiment (a warning names what was left out)."""
    if table.empty:
        return table
    keep = experiment_rows(table, cfg)
    if not keep.all():
        stale = table[~keep].drop_duplicates(["dataset", "category", "method"])
        log.warning("%d %s row(s) of runs not in the config left out: %s", int((~keep).sum()), what,
                    ", ".join(f"{r.dataset}/{r.category}/{r.method}" for r in stale.itertuples()))
    return table[keep].reset_index(drop=True)
