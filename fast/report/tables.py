"""Tables of docs/protocol.md from the tidy metrics: summary, comparison (Markdown + LaTeX), efficiency.

Aggregation, in one place: per (dataset, segmenter, method, category) the mean and sample std over
seeds; the "average" row first averages the categories within each seed, then takes mean and std
over seeds. Numbers in comparison tables are percentages. "Best" (bold) is ranked among synthesis
methods only; the reference rows (real-fewshot, no-anomalies) are shown but not ranked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fast.methods import REFERENCE_ROWS, SAMPLER_OF
from fast.report.stats import AVERAGE, MDD_POWER, REFERENCES, pooled_mdd

MAIN_METRICS = ("mIoU", "mAcc")
THRESHOLD_FREE = ("IoU_anomaly", "aAcc", "pixel_AUROC", "pixel_AP", "F1_max", "AUPRO_0.3", "image_AUROC")
REFERENCE_CAVEATS = (
    "Reported numbers are copied from the FAST paper (arXiv 2509.20295v1) as published, not produced "
    "by this run: a pretrained LDM backbone at 256 px, ~80k generator iterations and the authors' "
    "segmenter training, versus this experiment's own (usually far smaller) settings. The paper's "
    "\"mIoU\"/\"Acc\" are read as means over background and anomaly (mIoU, mAcc); one cell is impossible "
    "under that reading (DFMGAN capsule: Acc < mIoU), so read single cells with care, averages less so. "
    "The paper's average is over all of its categories, ours over this experiment's. Context, never targets."
)


def aggregate(long: pd.DataFrame) -> pd.DataFrame:
    """Mean / std / n over seeds per (dataset, segmenter, method, category, metric), in %, with an
    ``average`` category (per-seed mean over categories, then over seeds)."""
    keys = ["dataset", "segmenter", "method", "metric"]
    per_cat = long.assign(category=long["category"].astype(str))
    per_avg = (per_cat.groupby(keys + ["seed"], as_index=False)["value"].mean()
               .assign(category=AVERAGE))
    both = pd.concat([per_cat, per_avg], ignore_index=True)
    out = (both.groupby(keys + ["category"], sort=False)["value"]
           .agg(mean="mean", std=lambda v: v.std(ddof=1) if v.notna().sum() > 1 else np.nan,
                n_seeds="count").reset_index())
    out[["mean", "std"]] *= 100.0
    return out


def _fmt(mean: float, std: float, digits: int = 1) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    return f"{mean:.{digits}f}" if std is None or math.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


@dataclass
class Table:
    """A rendered-independent table: each cell is a list of (text, bold) parts joined by " / "."""

    title: str
    header: list[str]
    rows: list[list] = field(default_factory=list)
    note: str = ""
    footer: str = ""    # one line right under the table (the MDD line of a differences table)
    mdd: list = field(default_factory=list)   # differences tables: stats.pooled_mdd of the pairs shown


def _best(values: dict[str, float], methods: list[str]) -> set[str]:
    ranked = {m: v for m, v in values.items() if m in methods and m not in REFERENCE_ROWS
              and v is not None and not math.isnan(v)}
    if len(ranked) < 2:
        return set()
    top = max(ranked.values())
    return {m for m, v in ranked.items() if np.isclose(v, top)}


def comparison_table(agg: pd.DataFrame, dataset: str, segmenter: str, methods: list[str],
                     categories: list[str]) -> Table:
    """Categories as rows, methods as columns, cells ``mIoU / mAcc`` (mean ± std over seeds, %)."""
    sub = agg[(agg.dataset == dataset) & (agg.segmenter == segmenter)]
    table = Table(f"{dataset} / {segmenter}: mIoU / mAcc (%), mean ± std over seeds",
                  ["category", *methods],
                  note="Bold: best synthesis method per row and metric; real-fewshot and no-anomalies "
                       "are reference rows (real gen_train anomalies / normals only), not ranked.")
    for cat in [*categories, AVERAGE]:
        cells = {m: [] for m in methods}
        for metric in MAIN_METRICS:
            rows = sub[(sub.category == cat) & (sub.metric == metric)].set_index("method")
            means = {m: float(rows.loc[m, "mean"]) if m in rows.index else np.nan for m in methods}
            best = _best(means, methods)
            for m in methods:
                std = float(rows.loc[m, "std"]) if m in rows.index else np.nan
                cells[m].append((_fmt(means[m], std), m in best))
        table.rows.append([[(cat, cat == AVERAGE)], *(cells[m] for m in methods)])
    return table


def threshold_free_table(agg: pd.DataFrame, dataset: str, segmenter: str, methods: list[str]) -> Table:
    """Methods as rows, the other metrics (category average, mean ± std over seeds, %) as columns."""
    sub = agg[(agg.dataset == dataset) & (agg.segmenter == segmenter) & (agg.category == AVERAGE)]
    table = Table(f"{dataset} / {segmenter}: other metrics, average over categories (%)",
                  ["method", *THRESHOLD_FREE], note="Bold: best synthesis method per column.")
    grid = {}
    for metric in THRESHOLD_FREE:
        rows = sub[sub.metric == metric].set_index("method")
        means = {m: float(rows.loc[m, "mean"]) if m in rows.index else np.nan for m in methods}
        best = _best(means, methods)
        for m in methods:
            std = float(rows.loc[m, "std"]) if m in rows.index else np.nan
            grid[m, metric] = [(_fmt(means[m], std), m in best)]
    for m in methods:
        table.rows.append([[(m, False)], *(grid[m, metric] for metric in THRESHOLD_FREE)])
    return table


def reported_table(reference: pd.DataFrame, dataset: str, segmenter: str,
                   categories: list[str], ours: list[str] = ()) -> Table | None:
    """The published ``mIoU / mAcc`` for the same dataset, segmenter and categories (+ average)."""
    ref = reference[(reference.dataset == dataset) & (reference.segmenter == segmenter)
                    & reference.metric.isin(MAIN_METRICS)]
    if ref.empty:
        return None
    cats = [c for c in [*categories, AVERAGE] if c in set(ref.category)]
    if not cats:
        return None
    ours = set(ours)
    # Columns: the paper's methods with per-category numbers here, plus our methods it only averages
    # (e.g. its AIAS-step ablations), so the block stays as narrow as the table it sits beside.
    per_cat = set(ref[ref.category.isin([c for c in cats if c != AVERAGE])].method)
    methods = [m for m in dict.fromkeys(ref[ref.category.isin(cats)].method)
               if m in per_cat or m in ours]
    sources = "; ".join(sorted(set(ref[ref.category.isin(cats)].source)))
    table = Table(f"REPORTED (not reproduced): {dataset} / {segmenter}, mIoU / mAcc (%) from {sources}",
                  ["category", *methods], note=REFERENCE_CAVEATS)
    values = ref.set_index(["category", "method", "metric"])["value"]
    for cat in cats:
        row = [[(cat, False)]]
        for m in methods:
            row.append([(_fmt(float(values.get((cat, m, metric), np.nan)), np.nan), False)
                        for metric in MAIN_METRICS])
        table.rows.append(row)
    return table


MDD_MARK = ("~: smaller in size than the minimal detectable difference stated under the table (what a paired "
            "t-test over the seeds detects with 80 % power), so the seeds cannot resolve it.")
DIFF_NOTE = ("Difference of the seed-averaged {metric} (percentage points) to {references}, "
             "with a 95 % paired bootstrap interval over test images pooled over seeds (see "
             "tables/differences.csv and fast/report/README.md). *: the interval excludes 0; "
             "^: the seeds disagree (one seed's own difference has the other sign), so the interval, "
             "which resamples test images only, overstates the certainty; " + MDD_MARK)


def fmt_diff(row, mdd: float | None = None) -> tuple[str, bool]:
    """``diff [lo, hi]`` in points with its marks; ``mdd`` (a fraction, as the row) adds ``~`` when the
    difference is smaller in size."""
    if row is None or math.isnan(row["diff"]):
        return "-", False
    lo, hi = (f"{v * 100:+.1f}" if not math.isnan(v) else "?" for v in (row["lo"], row["hi"]))
    # Plain marks, not bold: "**...]***" is ambiguous Markdown ("^" and "~" are escaped for LaTeX). A
    # row without the seed check (an older differences.csv) has no "seeds_disagree": no "^".
    mark = ("*" if row["significant"] else "") + ("^" if row.get("seeds_disagree", False) in (True,) else "")
    below = mdd is not None and not math.isnan(mdd) and abs(row["diff"]) < mdd
    return f"{row['diff'] * 100:+.1f} [{lo}, {hi}]{mark}{'~' * below}", False


def mdd_line(pools, metric: str, n_seeds=()) -> str:
    """The line under a differences table: its minimal detectable difference(s) (stats.pooled_mdd) in
    points, and n/a where it is undefined; ``n_seeds``: the seed counts of the pairs shown."""
    one_seed = sum(1 for n in n_seeds if not pd.isna(n) and n < 2)
    if not pools:
        why = "one seed" if n_seeds and one_seed == len(n_seeds) else "no per-seed spread"
        return (f"Minimal detectable difference: n/a ({why}; it needs the per-seed differences of at least "
                "two seeds).")
    parts = [f"{p.mdd * 100:.1f} over {p.n_seeds} seeds (pooled per-seed SD {p.sd * 100:.2f} over {p.n_pairs} "
             f"pair{'s' * (p.n_pairs != 1)})" for p in pools]
    if one_seed:
        parts.append(f"n/a for the {one_seed} pair{'s' * (one_seed != 1)} with one seed")
    return (f"Minimal detectable difference, {metric} percentage points ({MDD_POWER * 100:.0f} % power, two-sided "
            "paired t-test over seeds at alpha 0.05): " + "; ".join(parts) + ".")


def _with_mdd(table: "Table", shown: list[dict], metric: str) -> dict[int, float]:
    """Pools the per-seed SDs of the pairs ``shown`` into ``table``'s MDD and its line; returns seed
    count -> MDD (fractions) for the ``~`` marks. An older differences.csv without ``seed_sd`` has none."""
    n_seeds = [c.get("n_seeds", np.nan) for c in shown]
    table.mdd = pooled_mdd([c.get("seed_sd", np.nan) for c in shown], n_seeds)
    table.footer = mdd_line(table.mdd, metric, n_seeds)
    return {p.n_seeds: p.mdd for p in table.mdd}


def _fmt_cell(row, mdd_of: dict[int, float]) -> tuple[str, bool]:
    n = row.get("n_seeds") if row is not None else None
    return fmt_diff(row, mdd_of.get(int(n)) if n is not None and not pd.isna(n) else None)


def differences_table(diffs: pd.DataFrame, dataset: str, segmenter: str, methods: list[str],
                      categories: list[str], metric: str, references=REFERENCES) -> Table | None:
    """Categories as rows, methods as columns, cells ``Δ vs no-anomalies / Δ vs real-fewshot`` with
    their bootstrap intervals (fast.report.stats); None when there is no difference to show."""
    sub = diffs[(diffs.dataset == dataset) & (diffs.segmenter == segmenter) & (diffs.metric == metric)]
    if sub.empty:
        return None
    cells = {(r.category, r.method, r.reference): r._asdict() for r in sub.itertuples(index=False)}
    table = Table(f"{dataset} / {segmenter}: {metric} difference to " + " / ".join(references)
                  + " (points, 95 % paired bootstrap CI)", ["category", *methods],
                  note=DIFF_NOTE.format(metric=metric, references=" / to ".join(references)))
    rows = [c for c in [*categories, AVERAGE] if c in set(sub.category)]
    shown = [cells[k] for k in ((c, m, r) for c in rows for m in methods for r in references) if k in cells]
    mdd_of = _with_mdd(table, shown, metric)
    for cat in rows:
        table.rows.append([[(cat, cat == AVERAGE)],
                           *([_fmt_cell(cells.get((cat, m, ref)), mdd_of) for ref in references] for m in methods)])
    return table


SAMPLER_DIFF_NOTE = ("Each AIAS entry minus each other sampler at the same NFE (same trained model, FARM and "
                     "foreground fusion in every one): seed-averaged {metric} difference in points, 95 % "
                     "paired bootstrap interval over test images pooled over seeds; *: the interval excludes 0; "
                     "^: the seeds disagree (one seed's own difference has the other sign); " + MDD_MARK
                     + " Category average where there are several categories.")


def sampler_differences_table(diffs: pd.DataFrame, dataset: str, segmenter: str, metric: str,
                              pairs: dict[str, list[str]], sampler_of) -> Table | None:
    """The frontier at equal cost: AIAS entries (``pairs``' keys) as rows, the other samplers as
    columns (``sampler_of(name)`` -> (sampler, nfe)); None when no pair has a number."""
    sub = diffs[(diffs.dataset == dataset) & (diffs.segmenter == segmenter) & (diffs.metric == metric)]
    # only the equal-NFE pairs: the same entries' differences to the reference rows are other tables'
    wanted = {(m, r) for m, refs in pairs.items() for r in refs}
    sub = sub[[(m, r) in wanted for m, r in zip(sub.method, sub.reference)]]
    if sub.empty:
        return None
    category = AVERAGE if AVERAGE in set(sub.category) else sorted(set(sub.category))[0]
    cells = {(r.method, sampler_of(r.reference)[0]): r._asdict()
             for r in sub[sub.category == category].itertuples(index=False)}
    solvers = list(dict.fromkeys(sampler_of(r)[0] for refs in pairs.values() for r in refs))
    table = Table(f"{dataset} / {segmenter}: AIAS minus each solver at equal NFE, {metric} "
                  f"({category}; points, 95 % paired bootstrap CI)", ["AIAS entry", "NFE", *solvers],
                  note=SAMPLER_DIFF_NOTE.format(metric=metric))
    entries = sorted(pairs, key=lambda m: (sampler_of(m)[1], m))
    mdd_of = _with_mdd(table, [cells[k] for k in ((m, s) for m in entries for s in solvers) if k in cells], metric)
    for method in entries:
        table.rows.append([[(method, False)], [(str(sampler_of(method)[1]), False)],
                           *([_fmt_cell(cells.get((method, s)), mdd_of)] for s in solvers)])
    return table


FIDELITY_NOTE = ("delta: mean abs(x - inpaint(x)) inside the mask (grey levels, 0-255), synthetic / real gen_train; "
                 "ratio: delta_syn / delta_real per anomaly type (1 = as strong as the real defects); abs contrast: "
                 "abs(mean inside - mean of a ring around the mask); W1: "
                 "Wasserstein distance between the pooled in-mask (x - inpaint) values of synthetic and real "
                 "(0 = same distribution). Means over categories and anomaly types.")


def fidelity_table(fidelity: pd.DataFrame, dataset: str, methods: list[str]) -> Table | None:
    """Methods as rows: mean delta (syn, real), mean delta ratio, mean |contrast| (syn, real), mean W1."""
    sub = fidelity[fidelity.dataset == dataset]
    if sub.empty:
        return None
    # |contrast|: bright and dark defect types would cancel in a mean of the signed contrast.
    sub = sub.assign(abs_contrast_syn=sub.contrast_syn.abs(), abs_contrast_real=sub.contrast_real.abs())
    cols = ["delta_syn", "delta_real", "ratio", "abs_contrast_syn", "abs_contrast_real", "w1"]
    means = sub.groupby("method")[cols].mean()
    types = sub.groupby("method").size()
    table = Table(f"{dataset}: generator fidelity (synthetic vs real defects)",
                  ["method", *[c.replace("_", " ") for c in cols], "types"], note=FIDELITY_NOTE)
    for m in [m for m in methods if m in means.index] + sorted(set(means.index) - set(methods)):
        table.rows.append([[(m, False)],
                           *([(_fmt(float(means.loc[m, c]), np.nan, 2 if c == "ratio" else 1), False)] for c in cols),
                           [(str(int(types[m])), False)]])
    return table


PER_TYPE_COLUMNS = ["dataset", "category", "anomaly_type", "method", "segmenter", "mean", "std", "n_seeds",
                    "n_images"]


def per_type_iou(per_image: pd.DataFrame) -> pd.DataFrame:
    """Anomaly IoU per defect type (%): per run, tp / (tp + fp + fn) summed over the test images of
    that type (normal test images, whose false positives belong to no type, are left out); then mean
    and sample std over seeds. Shows which defect types a method's data teaches, which the pooled
    mIoU hides when one type holds most anomalous pixels."""
    rows = per_image[per_image["anomaly_type"].astype(str).str.len() > 0]
    rows = rows[rows["anomaly_type"] != "good"]
    if rows.empty:
        return pd.DataFrame(columns=PER_TYPE_COLUMNS)
    keys = ["dataset", "category", "anomaly_type", "method", "segmenter"]
    sums = rows.groupby([*keys, "seed"], sort=True).agg(tp=("tp", "sum"), fp=("fp", "sum"), fn=("fn", "sum"),
                                                       n_images=("image", "size")).reset_index()
    den = sums.tp + sums.fp + sums.fn
    sums["iou"] = np.where(den > 0, 100.0 * sums.tp / den.where(den > 0, 1), np.nan)
    out = (sums.groupby(keys, sort=True)
           .agg(mean=("iou", "mean"), std=("iou", lambda v: v.std(ddof=1) if v.notna().sum() > 1 else np.nan),
                n_seeds=("iou", "count"), n_images=("n_images", "max")).reset_index())
    return out[PER_TYPE_COLUMNS]


def per_type_table(per_type: pd.DataFrame, dataset: str, segmenter: str, methods: list[str]) -> Table | None:
    """(category, defect type) as rows, methods as columns: anomaly IoU (%), mean ± std over seeds."""
    sub = per_type[(per_type.dataset == dataset) & (per_type.segmenter == segmenter)]
    if sub.empty:
        return None
    present = [m for m in methods if m in set(sub.method)]
    cells = {(r.category, r.anomaly_type, r.method): (r.mean, r.std) for r in sub.itertuples(index=False)}
    table = Table(f"{dataset} / {segmenter}: anomaly IoU per defect type (%), mean ± std over seeds",
                  ["category / type", "test images", *present],
                  note="tp / (tp + fp + fn) over the anomalous test images of each type only.")
    for (cat, kind), grp in sub.groupby(["category", "anomaly_type"], sort=True):
        vals = {m: cells.get((cat, kind, m), (np.nan, np.nan))[0] for m in present}
        best = _best(vals, present)
        table.rows.append([[(f"{cat} / {kind}", False)], [(str(int(grp.n_images.max())), False)],
                           *([(_fmt(*cells.get((cat, kind, m), (np.nan, np.nan))), m in best)] for m in present)])
    return table


# ----------------------------------------------------------------------------------- rendering
def to_markdown(table: Table) -> str:
    def cell(parts):
        return " / ".join(f"**{t}**" if b else t for t, b in parts)

    lines = [f"#### {table.title}", "", "| " + " | ".join(table.header) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(table.header) - 1)) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in table.rows]
    if table.footer:
        lines += ["", table.footer]
    if table.note:
        lines += ["", f"_{table.note}_"]
    return "\n".join(lines) + "\n"


def _tex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                 ("^", r"\textasciicircum{}"), ("~", r"\textasciitilde{}")):
        text = text.replace(a, b)
    return text.replace("±", r"$\pm$")


def to_latex(table: Table) -> str:
    def cell(parts):
        return " / ".join(rf"\textbf{{{_tex_escape(t)}}}" if b else _tex_escape(t) for t, b in parts)

    spec = "l" + "r" * (len(table.header) - 1)
    lines = [r"\begin{table}[ht]", r"\centering", r"\scriptsize",
             rf"\caption{{{_tex_escape(table.title)}}}", rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
             " & ".join(_tex_escape(h) for h in table.header) + r" \\", r"\midrule"]
    for i, row in enumerate(table.rows):
        if row[0][0][0] == AVERAGE and i:
            lines.append(r"\midrule")
        lines.append(" & ".join(cell(c) for c in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if table.footer:
        lines.append(rf"\par\smallskip\parbox{{\linewidth}}{{\scriptsize {_tex_escape(table.footer)}}}")
    if table.note:
        lines.append(rf"\par\smallskip\parbox{{\linewidth}}{{\tiny {_tex_escape(table.note)}}}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------- efficiency
def efficiency_table(long: pd.DataFrame, timings: pd.DataFrame, methods: list[str],
                     fidelity: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per dataset x method x segmenter: the sampler family (methods sampling FAST's model), NFE,
    seconds per image, images per second (synthesis), the downstream mIoU / mAcc (category average,
    mean and std over seeds, %) and the generator's in-mask fidelity (mean over categories and
    anomaly types of the delta ratio and of W1, fast.fidelity): every point of the frontier."""
    agg = aggregate(long[long.metric.isin(MAIN_METRICS)])
    # unstack (not pivot_table) keeps methods whose metrics are all undefined, and only real rows.
    agg = (agg[agg.category == AVERAGE].set_index(["dataset", "method", "segmenter", "metric"])[["mean", "std"]]
           .unstack("metric"))
    agg.columns = [f"{metric}_{stat}" for stat, metric in agg.columns]
    agg = agg.reset_index()
    seeds = long.groupby(["dataset", "method", "segmenter"]).seed.nunique().rename("n_seeds").reset_index()
    agg = agg.merge(seeds, on=["dataset", "method", "segmenter"], how="left")
    if len(timings):
        t = timings.copy()
        for col in ("nfe", "seconds_per_image", "images_per_s", "wall_seconds", "images"):
            t[col] = pd.to_numeric(t[col], errors="coerce")
        speed = t.groupby(["dataset", "method"]).agg(
            nfe=("nfe", "median"), seconds_per_image=("seconds_per_image", "mean"),
            wall_seconds=("wall_seconds", "sum"), images=("images", "sum"),
            device=("device", lambda d: ",".join(sorted(set(map(str, d)))))).reset_index()
        speed["images_per_s"] = speed["images"] / speed["wall_seconds"]
        speed = speed.drop(columns=["wall_seconds", "images"])
        agg = agg.merge(speed, on=["dataset", "method"], how="left")
    for col in ("nfe", "seconds_per_image", "images_per_s", "device"):
        if col not in agg:
            agg[col] = np.nan
    if fidelity is not None and len(fidelity):
        fid = (fidelity.assign(ratio=pd.to_numeric(fidelity["ratio"], errors="coerce"),
                               w1=pd.to_numeric(fidelity["w1"], errors="coerce"))
               .groupby(["dataset", "method"]).agg(fidelity_ratio=("ratio", "mean"), fidelity_w1=("w1", "mean"))
               .reset_index())
        agg = agg.merge(fid, on=["dataset", "method"], how="left")
    agg["sampler"] = agg["method"].map(lambda m: SAMPLER_OF.get(m, ""))
    order = {m: i for i, m in enumerate(methods)}
    agg = agg.sort_values(["dataset", "segmenter", "method"], key=lambda s: s.map(order) if s.name == "method" else s)
    cols = ["dataset", "method", "segmenter", "sampler", "nfe", "seconds_per_image", "images_per_s", "device",
            "mIoU_mean", "mIoU_std", "mAcc_mean", "mAcc_std", "n_seeds", "fidelity_ratio", "fidelity_w1"]
    for c in cols:
        if c not in agg:
            agg[c] = np.nan
    return agg[cols].reset_index(drop=True)


def summary_json(agg: pd.DataFrame) -> dict:
    """A small DVC metrics file: dataset -> segmenter -> method -> category-average metrics (%)."""
    out: dict = {}
    sub = agg[(agg.category == AVERAGE) & agg.metric.isin([*MAIN_METRICS, "pixel_AUROC", "AUPRO_0.3"])]
    for r in sub.itertuples():
        value = None if math.isnan(r.mean) else round(float(r.mean), 2)
        out.setdefault(r.dataset, {}).setdefault(r.segmenter, {}).setdefault(r.method, {})[r.metric] = value
    return out
