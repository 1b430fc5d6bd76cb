"""Figures of docs/protocol.md (matplotlib / seaborn), per dataset x segmenter unless noted:

- ``forest_<tag>.png``: each synthesis method's mIoU difference to ``real-fewshot`` and (when run)
  ``defect-paste``: the point estimate and 95 % bootstrap interval of differences.csv, each seed's own
  difference (from summary.csv) as small dots, methods sorted by difference.
- ``per_category_<metric>_<tag>.png``: sorted dot plots, one panel per category (and the average),
  per-seed values as small dots, the reference rows as vertical lines.
- ``quality_vs_{nfe,time}_<tag>.png`` and, per dataset (fidelity does not depend on the
  segmenter), ``fidelity_vs_{nfe,time}_<dataset>.png``: the quality-versus-cost frontier. The NFE
  plots are drawn only where a sampler family was run at two or more NFEs.

Every number comes from the report's tables (summary.csv, differences.csv, efficiency.csv), so
scripts/regenerate_figures.py redraws a published run from its committed tables.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402
from matplotlib.transforms import blended_transform_factory  # noqa: E402

from fast.catalog import NO_ANOMALIES, REAL_FEWSHOT  # noqa: E402
from fast.methods import REFERENCE_ROWS  # noqa: E402
from fast.report.stats import AVERAGE, BASELINE  # noqa: E402

FLOOR, REAL = NO_ANOMALIES, REAL_FEWSHOT
# the vertical / horizontal lines of the reference rows (and of the paste baseline, when run)
REF_STYLE = {FLOOR: dict(color="0.55", ls=":", lw=1.5), REAL: dict(color="0.15", ls="--", lw=1.2),
             BASELINE: dict(color="#c44e52", ls="-.", lw=1.2)}
REF_LABEL = {FLOOR: f"{FLOOR} (floor)", REAL: REAL, BASELINE: BASELINE}
FOREST_REFERENCES = (REAL, BASELINE)  # the panels of the forest plot, left to right
DOT = "#1f4e79"
# interval above 0 / below 0 / straddling 0: the colour tells the verdict before the numbers do
VERDICT = {1: "#2a7f3f", -1: "#b03a2e", 0: "0.35"}


def _palette(methods: list[str]) -> dict[str, tuple]:
    synth = [m for m in methods if m not in REFERENCE_ROWS]
    colours = dict(zip(synth, sns.color_palette("tab20" if len(synth) > 10 else "tab10", len(synth))))
    colours.update({REAL: (0.3, 0.3, 0.3), FLOOR: (0.7, 0.7, 0.7)})
    return {m: colours[m] for m in methods}


def _save(fig, path: Path) -> None:
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)


def _right_margin(ax):
    """x in axes fraction, y in data: a text column right of the axes that no data point reaches."""
    return blended_transform_factory(ax.transAxes, ax.transData)


def _select(table: pd.DataFrame, dataset: str, segmenter: str, metric: str) -> pd.DataFrame:
    return table[(table.dataset == dataset) & (table.segmenter == segmenter) & (table.metric == metric)]


def seed_values(long: pd.DataFrame, dataset: str, segmenter: str, metric: str,
                category: str = AVERAGE) -> pd.DataFrame:
    """method x seed table of ``metric`` in %: one category's values, or for AVERAGE each seed's mean
    over the categories (as fast.report.tables.aggregate and stats' per-seed differences average)."""
    sub = _select(long, dataset, segmenter, metric)
    if category != AVERAGE:
        sub = sub[sub.category.astype(str) == category]
    return sub.groupby(["method", "seed"])["value"].mean().unstack("seed") * 100


# ----------------------------------------------------------------------------------- forest plot
FOREST_COLUMNS = ["method", "reference", "diff", "lo", "hi", "seeds"]


def forest_table(diffs: pd.DataFrame, long: pd.DataFrame, dataset: str, segmenter: str,
                 metric: str = "mIoU", category: str = AVERAGE) -> pd.DataFrame:
    """The rows of the forest plot, in points: per synthesis method and reference of
    FOREST_REFERENCES, ``diff``, ``lo``, ``hi`` as differences.csv has them and ``seeds``, the
    per-seed differences (each seed's value minus the reference's at the same seed, from summary.csv:
    stats' ``seed_diffs``, which differences.csv keeps only as seed_lo / seed_hi). Ordered by the
    difference to real-fewshot (best first; to defect-paste where real-fewshot is absent)."""
    d = _select(diffs, dataset, segmenter, metric)
    d = d[(d.category.astype(str) == category) & d.reference.isin(FOREST_REFERENCES)
          & ~d.method.isin(REFERENCE_ROWS) & (d.method != d.reference)]
    d = d.drop_duplicates(["method", "reference"])
    if d.empty:
        return pd.DataFrame(columns=FOREST_COLUMNS)
    per_seed = seed_values(long, dataset, segmenter, metric, category)
    rows = []
    for r in d.itertuples():
        seeds = []
        if r.method in per_seed.index and r.reference in per_seed.index:
            seeds = (per_seed.loc[r.method] - per_seed.loc[r.reference]).dropna().tolist()
        rows.append({"method": r.method, "reference": r.reference, "diff": 100 * r.diff, "lo": 100 * r.lo,
                     "hi": 100 * r.hi, "seeds": seeds})
    out = pd.DataFrame(rows, columns=FOREST_COLUMNS)
    key = out.pivot(index="method", columns="reference", values="diff")
    sort_by = REAL if REAL in key else BASELINE
    order = key[sort_by].sort_values(ascending=False, na_position="last").index.tolist()
    rank = {m: i for i, m in enumerate(order)}
    refs = {r: i for i, r in enumerate(FOREST_REFERENCES)}
    return (out.assign(_m=out.method.map(rank), _r=out.reference.map(refs))
            .sort_values(["_m", "_r"]).drop(columns=["_m", "_r"]).reset_index(drop=True))


def _where(long: pd.DataFrame, dataset: str, segmenter: str) -> str:
    """"<dataset>, <segmenter> segmenter", with the category (when it is not the dataset's name) or
    "category average"."""
    cats = sorted(set(long[(long.dataset == dataset) & (long.segmenter == segmenter)].category.astype(str)))
    extra = " (category average)" if len(cats) > 1 else f" ({cats[0]})" if cats and cats[0] != dataset else ""
    return f"{dataset}, {segmenter} segmenter{extra}"


def _floor_difference(diffs, dataset, segmenter, metric, category) -> float | None:
    """no-anomalies minus real-fewshot (points): where a method that learnt nothing would sit."""
    d = _select(diffs, dataset, segmenter, metric)
    d = d[(d.category.astype(str) == category) & (d.method == FLOOR) & (d.reference == REAL)]
    return float(100 * d["diff"].iloc[0]) if len(d) else None


def forest_plot(diffs: pd.DataFrame, long: pd.DataFrame, dataset: str, segmenter: str, out: Path,
                metric: str = "mIoU") -> bool:
    """The forest plot of forest_table (category average); False (nothing written) without rows."""
    table = forest_table(diffs, long, dataset, segmenter, metric)
    if table.empty:
        return False
    order = list(dict.fromkeys(table.method))
    row = {m: i for i, m in enumerate(order)}
    refs = [r for r in FOREST_REFERENCES if r in set(table.reference)]
    n_seeds = max((len(s) for s in table.seeds), default=0)
    height = 0.36 * len(order) + 2.2
    fig, axes = plt.subplots(1, len(refs), figsize=(5.2 * len(refs) + 1.8, height),
                             sharey=True, squeeze=False)
    for ax, ref in zip(axes[0], refs):
        sub = table[table.reference == ref]
        for r in sub.itertuples():
            y = row[r.method]
            colour = VERDICT[1 if r.lo > 0 else -1 if r.hi < 0 else 0]
            ax.hlines(y, r.lo, r.hi, color=colour, lw=2.2)
            ax.plot(r.diff, y, "o", color=colour, ms=7, mec="white", mew=0.8, zorder=3)
            if len(r.seeds) > 1:  # one seed would only repeat the point estimate
                ax.plot(r.seeds, [y + 0.24] * len(r.seeds), "o", ms=3, color="0.45", alpha=0.8, zorder=2)
            ax.text(1.03, y, f"{r.diff:+.1f} [{r.lo:+.1f}, {r.hi:+.1f}]", transform=_right_margin(ax),
                    va="center", fontsize=7.5, clip_on=False)
        if ref in row:  # defect-paste's own row in its panel: the reference itself
            ax.text(0, row[ref], " reference", va="center", ha="left", fontsize=8, color="0.35", style="italic")
        ax.axvline(0, color="0.2", lw=1)
        floor = _floor_difference(diffs, dataset, segmenter, metric, AVERAGE) if ref == REAL else None
        if floor is not None:
            ax.axvline(floor, **REF_STYLE[FLOOR])
            ax.text(floor, len(order) - 0.45, " no-anomalies", fontsize=7.5, color="0.4", va="bottom")
        ax.set_title(f"vs {ref}", fontsize=11)
        ax.set_xlabel(f"{metric} difference (points)")
        ax.set_ylim(len(order) - 0.4, -0.9)
        ax.grid(axis="y", alpha=0)
        ax.margins(x=0.08)
    axes[0][0].set_yticks(range(len(order)), order)
    fig.suptitle(f"{metric} difference to the references: {_where(long, dataset, segmenter)}", fontsize=12,
                 y=1 - 0.12 / height, va="top")
    seeds = f"; small dots: each of the {n_seeds} seeds' own difference" if n_seeds > 1 else "; one seed"
    fig.text(0.5, 0.12 / height, "dot: difference of the seed means; bar: 95 % paired bootstrap interval over test "
             f"images (green above 0, red below, grey includes 0){seeds}", ha="center", va="top", fontsize=8)
    # margins in inches, whatever the number of rows: title and panel titles above, axis label and
    # caption below
    fig.subplots_adjust(wspace=0.62, top=1 - 0.75 / height, bottom=0.95 / height)
    _save(fig, out)
    return True


# ----------------------------------------------------------------------------------- per category
def per_category_dots(long: pd.DataFrame, dataset: str, segmenter: str, methods: list[str],
                      metric: str, out: Path) -> None:
    """Per category (and the average, with several): one row per synthesis method sorted by its
    mean over seeds (dot, value at the right), each seed's value as a small dot, and the reference
    rows (and the paste baseline) as vertical lines; the x axis spans the data, not 0-100."""
    sub = _select(long, dataset, segmenter, metric)
    cats = sorted(set(sub.category.astype(str)))
    panels = ([AVERAGE] if len(cats) > 1 else []) + cats
    present = [m for m in methods if m in set(sub.method)]
    synth = [m for m in present if m not in REFERENCE_ROWS]
    ncols = min(len(panels), 3)
    nrows = math.ceil(len(panels) / ncols)
    height = 0.3 * len(synth) + 1.3
    total = height * nrows + 1.2
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols + 1.2, total), squeeze=False)
    n_seeds = 0
    lines: dict[str, float] = {}
    for ax, panel in zip(axes.flat, panels):
        vals = seed_values(long, dataset, segmenter, metric, panel)
        n_seeds = max(n_seeds, vals.shape[1])
        mean = vals.mean(axis=1)
        sd = vals.std(axis=1, ddof=1)
        shown = mean.reindex(synth).dropna().sort_values(ascending=False)
        for y, (m, mu) in enumerate(shown.items()):
            seeds = vals.loc[m].dropna()
            if len(seeds) > 1:
                ax.plot(seeds, [y] * len(seeds), "o", ms=3.2, color="0.55", alpha=0.75, zorder=2)
            ax.plot(mu, y, "o", ms=7, color=DOT, mec="white", mew=0.8, zorder=3)
            spread = f" ± {sd[m]:.1f}" if np.isfinite(sd[m]) else ""
            ax.text(1.03, y, f"{mu:.1f}{spread}", transform=_right_margin(ax), va="center", fontsize=8,
                    clip_on=False)
        lines = {r: mean[r] for r in REF_STYLE if r in mean.index and np.isfinite(mean[r])}
        for r, v in lines.items():
            ax.axvline(v, **REF_STYLE[r], zorder=1)
        everything = np.concatenate([vals.loc[list(shown.index)].to_numpy().ravel(), list(lines.values())])
        everything = everything[np.isfinite(everything)]
        lo, hi = (everything.min(), everything.max()) if everything.size else (0.0, 100.0)
        pad = max(0.06 * (hi - lo), 0.5)
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_yticks(range(len(shown)), list(shown.index), fontsize=9)
        ax.set_ylim(len(shown) - 0.5, -0.5)
        ax.set_title("average over categories" if panel == AVERAGE else panel, fontsize=10.5)
        ax.set_xlabel(f"{metric} (%)")
        ax.grid(axis="y", alpha=0)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    handles = [Line2D([], [], marker="o", ls="", color=DOT, ms=7, label=f"mean over {n_seeds} seeds"
                      if n_seeds > 1 else "one seed")]
    if n_seeds > 1:
        handles.append(Line2D([], [], marker="o", ls="", color="0.55", ms=4, label="one seed"))
    single = len(panels) == 1  # one panel: one value per reference line, worth printing
    handles += [Line2D([], [], label=REF_LABEL[r] + (f" {lines[r]:.1f}" if single and r in lines else ""),
                       **REF_STYLE[r]) for r in REF_STYLE if r in present]
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.05 / total), ncol=len(handles),
               fontsize=8.5, frameon=False)
    right = "value: mean ± sd over seeds" if n_seeds > 1 else "value: the one seed"
    fig.suptitle(f"{metric} per category: {dataset}, {segmenter} segmenter ({right})", fontsize=12,
                 y=1 - 0.12 / total, va="top")
    # hspace is in axes heights: about 1 inch for the axis label and the next title
    fig.subplots_adjust(wspace=0.75, hspace=1.0 / max(height - 1.0, 0.5), top=1 - 0.75 / total, bottom=1.05 / total)
    _save(fig, out)


# ----------------------------------------------------------------------------------- frontier
Y_LABELS = {"mIoU_mean": "downstream mIoU (%), category average",
            "fidelity_ratio": "fidelity ratio\n(in-mask delta, synthetic / real)"}


def _families(pts: pd.DataFrame) -> pd.Series:
    """Each point's sampler family (efficiency.csv's ``sampler``; "" for methods of other models)."""
    if "sampler" not in pts:
        return pd.Series("", index=pts.index)
    return pts["sampler"].fillna("").astype(str)


def nfe_varies(pts: pd.DataFrame) -> bool:
    """True when some sampler family was run at two or more NFEs: only then does an NFE axis show a
    trend (otherwise it piles every method on one or two x positions)."""
    fam = _families(pts)
    nfe = pd.to_numeric(pts["nfe"], errors="coerce")
    known = (fam != "") & nfe.notna() & (nfe > 0)
    return bool(len(pts[known]) and (nfe[known].groupby(fam[known]).nunique() >= 2).any())


def _log_axis(ax, values, nfe: bool, room: float = 1.5) -> None:
    """A log x axis labelled with plain numbers: the measured NFEs, or 1-2-5 ticks over the range;
    ``room``: the factor of free axis right of the largest value (for point labels)."""
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    lo, hi = float(min(values)) / 1.5, float(max(values)) * room
    if nfe:
        ticks = sorted(set(float(v) for v in values))
    else:
        mantissas = (1, 2, 5) if hi / lo < 300 else (1,)
        ticks = [m * 10.0 ** e for e in range(-4, 5) for m in mantissas if lo <= m * 10.0 ** e <= hi]
        if len(ticks) < 2:  # a narrow range: label the measured values themselves
            ticks = sorted(set(ticks) | set(float(v) for v in values))
    ax.set_xlim(lo, hi)
    ax.set_xticks(ticks)


def _label_points(ax, points: list[tuple], gap_px: float = 13.0, near_px: float = 30.0,
                  width_px: float = 150.0, char_px: float = 6.0) -> None:
    """Each (x, y, text, colour) labelled beside its point, no two labels overlapping. Points closer
    on x than ``near_px`` form a group whose labels stand in one column, right of the group unless
    the next group is nearer than ``width_px`` and the left has more room. Labels are then placed
    from the lowest up, each pushed up past any placed label it would overlap (``char_px``: the
    estimated glyph width); a label away from its point's height gets a thin leader line."""
    if not points:
        return
    to_px, to_data = ax.transData.transform, ax.transData.inverted().transform
    px = sorted(((*to_px((x, y)), t, c) for x, y, t, c in points), key=lambda p: p[0])
    groups, current = [], [px[0]]
    for p in px[1:]:
        if p[0] - current[-1][0] > near_px:
            groups.append(current)
            current = []
        current.append(p)
    groups.append(current)
    left_edge, right_edge = ax.transAxes.transform((0, 0))[0], ax.transAxes.transform((1, 0))[0]
    labels = []  # (x0, x1 of the text, y wanted, point, text, on_right, column x)
    for k, group in enumerate(groups):
        lo_x, hi_x = min(p[0] for p in group), max(p[0] for p in group)
        left = lo_x - (max(p[0] for p in groups[k - 1]) if k else left_edge)
        right = (min(p[0] for p in groups[k + 1]) if k + 1 < len(groups) else right_edge) - hi_x
        on_right = right >= width_px or right >= left
        column = (hi_x + (10 if len(group) == 1 else 22)) if on_right else (lo_x - (10 if len(group) == 1 else 22))
        for xd, yd, text, _ in group:
            width = char_px * len(text)
            x0, x1 = (column, column + width) if on_right else (column - width, column)
            labels.append((x0, x1, yd, (xd, yd), text, on_right, column))
    placed: list[tuple[float, float, float]] = []  # (x0, x1, y) of the labels placed so far
    box = dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8)
    for x0, x1, y, point, text, on_right, column in sorted(labels, key=lambda lab: lab[2]):
        moved = True
        while moved:
            moved = False
            for a, b, yp in placed:
                if a < x1 and x0 < b and abs(y - yp) < gap_px:
                    y, moved = yp + gap_px, True
        placed.append((x0, x1, y))
        leader = abs(y - point[1]) > 3 or abs(column - point[0]) > 12
        ax.annotate(text, to_data(point), xytext=to_data((column, y)), textcoords="data", va="center",
                    ha="left" if on_right else "right", fontsize=8, color="0.15", bbox=box,
                    arrowprops=dict(arrowstyle="-", color="0.45", lw=0.6, shrinkA=0, shrinkB=4) if leader else None)


def _nfe_marks(ax, marks: list[tuple], near_px: float = 25.0) -> None:
    """Each family point's NFE printed beside it, once where several families' points coincide."""
    shown: list[tuple] = []
    for x, y, text in marks:
        px, py = ax.transData.transform((x, y))
        if any(t == text and np.hypot(px - a, py - b) < near_px for a, b, t in shown):
            continue
        shown.append((px, py, text))
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=7, color="0.3")


def quality_vs_cost(eff: pd.DataFrame, dataset: str, segmenter: str, methods: list[str],
                    x: str, out: Path, y: str = "mIoU_mean") -> bool:
    """Downstream mIoU (or the generator's in-mask fidelity, y="fidelity_ratio") against NFE
    (x="nfe") or seconds per image (x="seconds_per_image"). Time plot: every synthesis method with a
    timing record; the points of a family run at several NFEs joined in one colour and marker, each
    labelled with its NFE, every other point labelled with its method beside it. NFE plot: only the
    sampler families of FAST's model, one colour and marker per family, each family shifted slightly
    on x so that families at one NFE do not hide each other; drawn only when nfe_varies. mIoU: the
    reference rows as horizontal lines; fidelity: y = 1 (as strong as real). Returns False (nothing
    written) when there is nothing to show."""
    sub = eff[(eff.dataset == dataset) & (eff.segmenter == segmenter)].copy()
    if y not in sub:
        return False
    pts = sub[sub[x].notna() & (sub[x] > 0) & sub[y].notna() & ~sub.method.isin(REFERENCE_ROWS)]
    if x == "nfe":
        pts = pts[_families(pts) != ""]
        if not nfe_varies(pts):
            return False
    if pts.empty:
        return False
    fam = _families(pts)
    fig, ax = plt.subplots(figsize=(8.8, 4.6))
    direct: list[tuple] = []  # (x, y, text, colour): points labelled beside themselves
    marks: list[tuple] = []   # (x, y, NFE): the NFE of each point of a family curve
    with_err = y == "mIoU_mean" and "mIoU_std" in pts
    markers = "osD^vP*Xhp<>"
    if x == "nfe":
        names = sorted(set(fam))
        colours = dict(zip(names, sns.color_palette("dark", len(names))))
        for k, name in enumerate(names):
            grp = pts[fam == name].sort_values(x)
            xs = grp[x] * 1.07 ** (k - (len(names) - 1) / 2)  # the shift is on a log axis: a ratio
            ax.errorbar(xs, grp[y], yerr=grp["mIoU_std"] if with_err else None, color=colours[name],
                        marker=markers[k % len(markers)], ms=7, mec="0.2", mew=0.5, capsize=3, lw=1.4,
                        label=name)
        legend_title = "sampler"
    else:
        # a family run at several NFEs: one colour and marker, in the legend; every other method
        # labelled beside its point (a legend of 13 markers is a lookup table, not a glance)
        multi = sorted(n for n, grp in pts.groupby(fam) if n and len(grp) > 1)
        family_colours = dict(zip(multi, sns.color_palette("dark", max(len(multi), 1))))
        for k, name in enumerate(multi):
            grp = pts[fam == name].sort_values(x)
            nfes = "/".join(f"{v:g}" for v in sorted(set(grp["nfe"].dropna())))
            ax.errorbar(grp[x], grp[y], yerr=grp["mIoU_std"] if with_err else None, color=family_colours[name],
                        marker=markers[k % len(markers)], ms=7, mec="0.2", mew=0.5, capsize=3, lw=1.2,
                        label=f"{name} (NFE {nfes})")
            marks += [(getattr(r, x), getattr(r, y), f"{r.nfe:g}") for r in grp.itertuples() if np.isfinite(r.nfe)]
        colours = _palette(methods)
        singles = pts[~fam.isin(multi)]
        for i, r in enumerate(singles.itertuples(), start=len(multi)):
            yerr = r.mIoU_std if with_err and np.isfinite(r.mIoU_std) else None
            colour = colours.get(r.method, "k")
            ax.errorbar(getattr(r, x), getattr(r, y), yerr=yerr, fmt=markers[i % len(markers)], ms=7, capsize=3,
                        color=colour, mec="0.2", mew=0.5)
            direct.append((getattr(r, x), getattr(r, y), r.method, colour))
        legend_title = None
    if y == "mIoU_mean":
        for ref in (REAL, FLOOR):
            row = sub[sub.method == ref]
            if len(row) and np.isfinite(row.mIoU_mean.iloc[0]):
                ax.axhline(row.mIoU_mean.iloc[0], label=f"{ref} (reference)", **REF_STYLE[ref])
    else:
        # labelled in the legend: a text on the line would sit on the points near 1
        ax.axhline(1.0, color="0.3", ls="--", lw=1.1, label="1 = as strong as real")
    _log_axis(ax, pts[x], nfe=x == "nfe", room=4.0 if direct else 1.5)
    ax.margins(y=0.12)
    lo, hi = ax.get_ylim()
    if y != "mIoU_mean":  # keep the y = 1 line in view
        lo, hi = min(lo, 0.9), max(hi, 1.1)
    ax.set_ylim(lo, hi)  # fixed before the labels are placed in display coordinates
    _label_points(ax, direct)
    _nfe_marks(ax, marks)
    label = {"nfe": "network evaluations per image (NFE, log scale; families shifted apart)",
             "seconds_per_image": "synthesis time (seconds per image, log scale)"}[x]
    device = ",".join(sorted(set(pts.device.dropna().astype(str)))) if "device" in pts else ""
    what = "Downstream quality" if y == "mIoU_mean" else "Generator fidelity"
    title = f"{what} vs sampling steps" if x == "nfe" else f"{what} vs synthesis cost ({device or 'unknown device'})"
    # fidelity is measured on the synthetic sets, before any segmenter
    where = f"{dataset}, {segmenter} segmenter" if y == "mIoU_mean" else dataset
    n_seeds = int(pd.to_numeric(sub.get("n_seeds", pd.Series([1])), errors="coerce").max() or 1)
    ylabel = Y_LABELS[y] + (f"\n(error bars: sd over {n_seeds} seeds)" if with_err and n_seeds > 1 else "")
    ax.set(xlabel=label, ylabel=ylabel, title=f"{title}\n{where}")
    ax.grid(alpha=0.3, which="both")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, bbox_to_anchor=(1.01, 1), loc="upper left", title=legend_title, title_fontsize=9)
    _save(fig, out)
    return True


def make_figures(long: pd.DataFrame, eff: pd.DataFrame, methods: list[str], out_dir: Path,
                 diffs: pd.DataFrame | None = None) -> list[Path]:
    """Every figure of the module docstring into ``out_dir``; the paths written."""
    sns.set_theme(style="whitegrid", context="notebook")
    out_dir = Path(out_dir)
    written = []
    fidelity_done: set[str] = set()
    for (dataset, segmenter), _ in long.groupby(["dataset", "segmenter"], sort=True):
        tag = f"{dataset}_{segmenter}"
        if diffs is not None and len(diffs) and forest_plot(diffs, long, dataset, segmenter,
                                                             out_dir / f"forest_{tag}.png"):
            written.append(out_dir / f"forest_{tag}.png")
        for metric in ("mIoU", "mAcc"):
            path = out_dir / f"per_category_{metric}_{tag}.png"
            per_category_dots(long, dataset, segmenter, methods, metric, path)
            written.append(path)
        plots = [("mIoU_mean", "quality", tag)]
        if dataset not in fidelity_done:  # one fidelity plot per dataset, whatever the segmenters
            fidelity_done.add(dataset)
            plots.append(("fidelity_ratio", "fidelity", dataset))
        for y, prefix, name in plots:
            for x, suffix in (("nfe", "vs_nfe"), ("seconds_per_image", "vs_time")):
                path = out_dir / f"{prefix}_{suffix}_{name}.png"
                if quality_vs_cost(eff, dataset, segmenter, methods, x, path, y):
                    written.append(path)
    return written
