"""`fast report`: every table and figure of one experiment from its metrics.json / timing.json files.

Writes (under --out, default --results): tables/summary.csv, tables/summary.json,
tables/comparison.md, tables/comparison.tex, tables/efficiency.csv, tables/differences.csv (paired
bootstrap differences to the reference rows, from every per_image.csv: fast.report.stats),
tables/fidelity.csv (every fidelity/<ds>/<cat>/<method>.csv of `fast fidelity`), tables/per_type.csv
(anomaly IoU per defect type, from the per_image.csv files) and figures/metrics/*.png.
Every file is written atomically; the figures directory is replaced as a whole.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fast.config import load_config
from fast.errors import FastError
from fast.io import atomic_dir, atomic_path, write_json
from fast.report.collect import (configured_files, load_fidelity, load_metrics, load_reference, load_timings,
                                 method_order)
from fast.report.figures import make_figures
from fast.report.stats import METRICS as DIFF_METRICS
from fast.report.stats import differences, load_per_image
from fast.report.tables import (aggregate, comparison_table, differences_table, efficiency_table,
                                fidelity_table, per_type_iou, per_type_table, reported_table, summary_json,
                                threshold_free_table, to_latex, to_markdown)

log = logging.getLogger(__name__)
DEFAULT_REFERENCE = Path(__file__).with_name("fast_paper_results.csv")


def comparison_documents(long, reference, methods, experiment: str, diffs=None,
                         fidelity=None, per_type=None) -> tuple[str, str]:
    """(Markdown, LaTeX) of every comparison table, per dataset and segmenter, each followed by its
    bootstrap differences to the reference rows; then the generator fidelity per dataset."""
    agg = aggregate(long)
    md = [f"# Downstream segmentation: experiment `{experiment}`", "",
          "Each synthesis method's data trains the same segmenter (same steps, optimiser, augmentations, "
          "seeds); metrics on seg_test + normal_test with a dataset-level confusion matrix.", ""]
    tex = [f"% Downstream segmentation tables of experiment {experiment} (needs booktabs)"]
    for dataset in sorted(set(long.dataset)):
        for segmenter in sorted(set(long[long.dataset == dataset].segmenter)):
            sub = long[(long.dataset == dataset) & (long.segmenter == segmenter)]
            present = [m for m in methods if m in set(sub.method)]
            categories = sorted(set(sub.category))
            md.append(f"## {dataset} / {segmenter}\n")
            # Ours, its bootstrap differences to the reference rows, the published block, the rest.
            tables = [comparison_table(agg, dataset, segmenter, present, categories),
                      *_difference_tables(diffs, dataset, segmenter, present, categories)]
            reported = reported_table(reference, dataset, segmenter, categories, present)
            if reported is not None:
                tables.append(reported)
            elif not reference[reference.dataset == dataset].empty:
                segs = ", ".join(sorted(set(reference[reference.dataset == dataset].segmenter)))
                md.append(f"_Published numbers for {dataset} exist for segmenters {segs} only "
                          f"(or other categories); none are comparable with this {segmenter} table._\n")
            tables.append(threshold_free_table(agg, dataset, segmenter, present))
            by_type = None if per_type is None else per_type_table(per_type, dataset, segmenter, present)
            if by_type is not None:
                tables.append(by_type)
            for t in tables:
                md.append(to_markdown(t))
                tex.append(to_latex(t))
    fid = [] if fidelity is None else [fidelity_table(fidelity, d, methods) for d in sorted(set(long.dataset))]
    fid = [t for t in fid if t is not None]
    if fid:
        md.append("## Generator fidelity\n")
    for t in fid:
        md.append(to_markdown(t))
        tex.append(to_latex(t))
    return "\n".join(md), "\n".join(tex)


def _difference_tables(diffs, dataset, segmenter, methods, categories) -> list:
    """The bootstrap difference tables (one per metric of fast.report.stats) that have numbers."""
    if diffs is None or diffs.empty:
        return []
    tables = [differences_table(diffs, dataset, segmenter, methods, categories, m) for m in DIFF_METRICS]
    return [t for t in tables if t is not None]


def run_report(args) -> int:
    cfg = load_config(args.config)
    results = Path(args.results)
    out = Path(args.out) if args.out else results
    if not results.is_dir():
        raise FastError(f"results directory not found: {results}")
    reference_path = Path(args.reference) if args.reference else DEFAULT_REFERENCE
    if args.reference and not reference_path.is_file():
        raise FastError(f"reference file not found: {reference_path} (config paths.reference)")

    # The workflow hands the report its input files; by hand, the configured experiment's files.
    files = configured_files(results, cfg)
    for kind in files:
        if getattr(args, kind, None) is not None:
            files[kind] = [Path(p) for p in getattr(args, kind)]
    if not files["metrics"]:
        raise FastError(f"no segmentation/**/metrics.json of the configured experiment under {results}: "
                        f"run the evaluate rules first")
    long = load_metrics(files["metrics"])
    timings = load_timings(files["timings"])
    reference = load_reference(reference_path)
    methods = method_order(long.method, cfg["methods"])
    tables = out / "tables"

    with atomic_path(tables / "summary.csv") as tmp:
        long.to_csv(tmp, index=False)
    write_json(tables / "summary.json", summary_json(aggregate(long)))
    per_image_files = (p.with_name("per_image.csv") for p in files["metrics"])
    per_image = load_per_image([p for p in per_image_files if p.is_file()])
    diffs = differences(per_image)
    per_type = per_type_iou(per_image)
    with atomic_path(tables / "per_type.csv") as tmp:
        per_type.to_csv(tmp, index=False)
    with atomic_path(tables / "differences.csv") as tmp:
        diffs.to_csv(tmp, index=False)
    fidelity = load_fidelity(files["fidelity"])
    with atomic_path(tables / "fidelity.csv") as tmp:
        fidelity.to_csv(tmp, index=False)
    md, tex = comparison_documents(long, reference, methods, cfg["experiment"], diffs, fidelity, per_type)
    with atomic_path(tables / "comparison.md") as tmp:
        tmp.write_text(md)
    with atomic_path(tables / "comparison.tex") as tmp:
        tmp.write_text(tex)
    eff = efficiency_table(long, timings, methods, fidelity)
    with atomic_path(tables / "efficiency.csv") as tmp:
        eff.to_csv(tmp, index=False)
    with atomic_dir(out / "figures" / "metrics") as fig_dir:
        figures = make_figures(long, eff, methods, fig_dir)
    log.info("report: %d result rows, %d methods, %d figures, %d bootstrap differences (%d significant), "
             "%d fidelity rows -> %s", len(long), len(methods), len(figures), len(diffs),
             int(diffs["significant"].sum()) if len(diffs) else 0, len(fidelity), out)
    return 0
