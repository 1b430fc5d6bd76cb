"""Figures of docs/protocol.md (seaborn): per-category bars; the frontier: downstream quality and
generator fidelity vs NFE and vs seconds per image, one curve per sampler family."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from fast.methods import REFERENCE_ROWS  # noqa: E402
from fast.report.tables import AVERAGE  # noqa: E402

REF_STYLE = {"real-fewshot": dict(color="0.25", ls="--"), "no-anomalies": dict(color="0.55", ls=":")}


def _palette(methods: list[str]) -> dict[str, tuple]:
    synth = [m for m in methods if m not in REFERENCE_ROWS]
    colours = dict(zip(synth, sns.color_palette("tab20" if len(synth) > 10 else "tab10", len(synth))))
    colours.update({"real-fewshot": (0.3, 0.3, 0.3), "no-anomalies": (0.7, 0.7, 0.7)})
    return {m: colours[m] for m in methods}


def _save(fig, path: Path) -> None:
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)


def per_category_bars(long: pd.DataFrame, dataset: str, segmenter: str, methods: list[str],
                      metric: str, out: Path) -> None:
    """Grouped bars: categories (and their average) on x, one bar per method, mean ± sd over seeds."""
    sub = long[(long.dataset == dataset) & (long.segmenter == segmenter) & (long.metric == metric)].copy()
    avg = sub.groupby(["method", "seed"], as_index=False)["value"].mean().assign(category=AVERAGE)
    sub = pd.concat([sub, avg], ignore_index=True)
    sub["value"] *= 100
    cats = sorted(set(sub.category) - {AVERAGE})
    if len(cats) > 1:  # with one category the average would just repeat it
        cats.append(AVERAGE)
    present = [m for m in methods if m in set(sub.method)]
    width = max(6.0, 0.22 * len(cats) * len(present) + 2.5)
    fig, ax = plt.subplots(figsize=(min(width, 22), 4.2))
    sns.barplot(data=sub, x="category", y="value", hue="method", order=cats, hue_order=present,
                palette=_palette(present), errorbar="sd", capsize=0.1, err_kws={"linewidth": 0.8}, ax=ax)
    n_seeds = sub.groupby(["method", "category"]).seed.nunique().max()
    if len(cats) * len(present) <= 40:  # readable exact values on the bars
        for container in ax.containers:
            ax.bar_label(container, fmt="%.1f", fontsize=7, padding=2)
    ax.set(xlabel="category", ylabel=f"{metric} (%)", ylim=(0, 100),
           title=f"{metric} per category: {dataset}, {segmenter} segmenter "
                 f"(mean{' ± sd over ' + str(n_seeds) + ' seeds' if n_seeds > 1 else ', 1 seed'})")
    ax.legend(title="training data", bbox_to_anchor=(1.01, 1), loc="upper left", fontsize=8, title_fontsize=9)
    ax.tick_params(axis="x", rotation=30 if len(cats) > 5 else 0)
    ax.grid(axis="y", alpha=0.3)
    _save(fig, out)


def _reference_lines(ax, eff: pd.DataFrame) -> None:
    for ref, style in REF_STYLE.items():
        row = eff[eff.method == ref]
        if len(row) and np.isfinite(row.mIoU_mean.iloc[0]):
            ax.axhline(row.mIoU_mean.iloc[0], label=f"{ref} (reference)", lw=1.2, **style)


Y_LABELS = {"mIoU_mean": "downstream mIoU (%), category average",
            "fidelity_ratio": "in-mask fidelity: delta ratio synthetic / real (1 = as strong)"}


def quality_vs_cost(eff: pd.DataFrame, dataset: str, segmenter: str, methods: list[str],
                    x: str, out: Path, y: str = "mIoU_mean") -> bool:
    """Downstream mIoU (or the generator's in-mask fidelity, y="fidelity_ratio") against NFE
    (x="nfe") or seconds per image (x="seconds_per_image"): the quality-versus-cost frontier.
    Points: methods with a timing record (and NFE > 0 for the NFE plot); the reference rows are
    horizontal lines (mIoU only). The points of one sampler family (efficiency.csv's `sampler`:
    AIAS at several S, each solver of the NFE sweep) are joined by one curve per family.
    Returns False if nothing to plot."""
    sub = eff[(eff.dataset == dataset) & (eff.segmenter == segmenter)].copy()
    if y not in sub:
        return False
    pts = sub[sub[x].notna() & (sub[x] > 0) & sub[y].notna() & ~sub.method.isin(REFERENCE_ROWS)]
    if pts.empty:
        return False
    colours = _palette(methods)
    # Many points, or several at the same x (e.g. all 50-step samplers): a legend instead of point
    # labels, which would overlap.
    crowded = len(pts) > 6 or bool(pts[x].round(3).duplicated().any())
    fig, ax = plt.subplots(figsize=(8.6 if crowded else 6.8, 4.4))
    families = pts["sampler"].fillna("").astype(str) if "sampler" in pts else pd.Series("", index=pts.index)
    family_colours = dict(zip(sorted(set(families) - {""}), sns.color_palette("dark", 8)))
    for fam, grp in pts.groupby(families, sort=True):
        if fam and len(grp) > 1:
            grp = grp.sort_values(x)
            ax.plot(grp[x], grp[y], color=family_colours[fam], lw=1.2, alpha=0.7, label=f"{fam} (varying NFE)")
    markers = "osD^vP*Xhp<>"
    with_err = y == "mIoU_mean"
    for i, r in enumerate(pts.itertuples()):
        yv = getattr(r, y)
        yerr = r.mIoU_std if with_err and np.isfinite(r.mIoU_std) else None
        # a point on a family's curve takes the curve's colour (its marker tells the method)
        colour = family_colours.get(families[r.Index]) or colours.get(r.method, "k")
        ax.errorbar(getattr(r, x), yv, yerr=yerr, fmt=markers[i % len(markers)] if crowded else "o", ms=7,
                    capsize=3, color=colour, mec="0.2", mew=0.5,
                    label=r.method if crowded else None)
        if not crowded:
            ax.annotate(r.method, (getattr(r, x), yv), textcoords="offset points", xytext=(5, 5), fontsize=8)
    if y == "mIoU_mean":
        _reference_lines(ax, sub)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    lo, hi = float(pts[x].min()) / 1.8, float(pts[x].max()) * 1.8  # room for the point labels
    mantissas = (1, 2, 5) if hi / lo < 300 else (1,)  # 1-2-5 over short ranges, decades otherwise
    ticks = [m * 10.0 ** e for e in range(-4, 5) for m in mantissas if lo <= m * 10.0 ** e <= hi]
    if len(ticks) < 2:  # a narrow range: label the measured values themselves
        ticks = sorted(set(ticks) | set(pts[x].astype(float)))
    ax.set_xlim(lo, hi)
    ax.set_xticks(ticks)
    ax.margins(y=0.12)
    label = {"nfe": "network evaluations per image (NFE, log scale)",
             "seconds_per_image": "synthesis time (seconds per image, log scale)"}[x]
    device = ",".join(sorted(set(pts.device.dropna().astype(str)))) or "unknown device"
    what = "Downstream quality" if y == "mIoU_mean" else "Generator fidelity"
    title = (f"{what} vs sampling steps" if x == "nfe" else f"{what} vs synthesis cost ({device})")
    n_seeds = int(sub.get("n_seeds", pd.Series([1])).max())
    ax.set(xlabel=label, ylabel=Y_LABELS[y]
           + (f"\n(error bars: sd over {n_seeds} seeds)" if with_err and n_seeds > 1 else ""),
           title=f"{title}\n{dataset}, {segmenter} segmenter")
    ax.grid(alpha=0.3, which="both")
    handles, labels = ax.get_legend_handles_labels()
    if handles and crowded:
        ax.legend(fontsize=8, bbox_to_anchor=(1.01, 1), loc="upper left", title="training data", title_fontsize=9)
    elif handles:
        ax.legend(fontsize=8, loc="best")
    _save(fig, out)
    return True


def make_figures(long: pd.DataFrame, eff: pd.DataFrame, methods: list[str], out_dir: Path) -> list[Path]:
    sns.set_theme(style="whitegrid", context="notebook")
    written = []
    for (dataset, segmenter), _ in long.groupby(["dataset", "segmenter"], sort=True):
        tag = f"{dataset}_{segmenter}"
        for metric in ("mIoU", "mAcc"):
            path = out_dir / f"per_category_{metric}_{tag}.png"
            per_category_bars(long, dataset, segmenter, methods, metric, path)
            written.append(path)
        for y, prefix in (("mIoU_mean", "quality"), ("fidelity_ratio", "fidelity")):
            for x, suffix in (("nfe", "vs_nfe"), ("seconds_per_image", "vs_time")):
                path = out_dir / f"{prefix}_{suffix}_{tag}.png"
                if quality_vs_cost(eff, dataset, segmenter, methods, x, path, y):
                    written.append(path)
    return written
