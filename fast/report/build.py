"""`fast report`: every table and figure of one experiment from its metrics.json / timing.json files.

Writes (under --out, default --results): tables/summary.csv, tables/summary.json,
tables/comparison.md, tables/comparison.tex, tables/efficiency.csv, tables/differences.csv (paired
bootstrap differences to the reference rows, from every per_image.csv, with each pair's per-seed SD
and minimal detectable difference: fast.report.stats; every differences table states its pooled MDD),
tables/fidelity.csv (every fidelity/<ds>/<cat>/<method>.csv of `fast fidelity`), tables/per_type.csv
(anomaly IoU per defect type, from the per_image.csv files) and figures/metrics/*.png (the forest plot
of the differences, per-category dot plots, the cost frontier: fast.report.figures).
Every file is written atomically; the figures directory is replaced as a whole.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fast.methods import SWEEP
from fast.report.stats import BASELINE, baseline_pairs
from fast.report.stats import METRICS as DIFF_METRICS
from fast.report.tables import (aggregate, comparison_table, differences_table, fidelity_table,
                                per_type_table, reported_table, sampler_differences_table, threshold_free_table,
                                to_latex, to_markdown)

log = logging.getLogger(__name__)
DEFAULT_REFERENCE = Path(__file__).with_name("fast_paper_results.csv")


def comparison_documents(long, reference, methods, experiment: str, diffs=None,
                         fidelity=None, per_type=None, frontier=None, entries=None) -> tuple[str, str]:
    """(Markdown, LaTeX) of every comparison table, per dataset and segmenter, each followed by its
    bootstrap differences to the reference rows (and, with ``frontier`` = stats.frontier_pairs, AIAS
    against each solver at equal NFE, ``entries`` = stats.frontier_entries naming their sampler and
    NFE; default: the sweep's); then the generator fidelity per dataset."""
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
            if frontier and diffs is not None and not diffs.empty:
                tables.append(sampler_differences_table(diffs, dataset, segmenter, "mIoU", frontier,
                                                        (entries or SWEEP).__getitem__))
            tables = [t for t in tables if t is not None]
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
    # each synthesis method against the real-defect paste baseline (when the experiment ran it)
    against = [m for m in methods if m in baseline_pairs(methods)]
    if against and (diffs.reference == BASELINE).any():
        tables.append(differences_table(diffs, dataset, segmenter, against, categories, "mIoU",
                                        references=(BASELINE,)))
    return [t for t in tables if t is not None]
