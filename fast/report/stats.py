"""Differences to the reference rows with a 95 % paired bootstrap interval over test images.

Definition (one place; README.md "Statistics" says the same in words). Per (dataset, category) the
test images are resampled with replacement, N_RESAMPLES times, from a generator seeded with
(SEED, crc32("dataset/category")): every method, segmenter, seed and reference of that category sees
the SAME resampled image sets (paired). For each resample and each seed the dataset-level confusion
counts (per-image tp/fp/fn/tn of per_image.csv, summed over the resampled images) give mIoU and
IoU_anomaly exactly as fast.metrics computes them; the per-seed values are averaged over the seeds
both rows have (pooled over seeds) and the reference's average is subtracted. The interval is the
2.5 / 97.5 percentile of those differences; the point estimate is the same difference on the
original images (= the difference of the table's means). The category average draws each category
independently and averages the per-category differences of one resample. Values are fractions.

Minimal detectable difference (MDD). The image bootstrap does not see the segmenter's seed-to-seed
variation, so each row also states what the seeds can resolve. For a pair (A, B) with n shared
seeds, d_s = metric_A(seed s) - metric_B(seed s) on the original test images (``seed_diffs``) and
s_d is their sample SD (ddof 1, ``seed_sd``). The MDD is the difference a two-sided paired t-test
over the seeds (alpha = 0.05) detects with 80 % power:
    MDD = (t_{0.975, n-1} + t_{0.80, n-1}) * s_d / sqrt(n)      (scipy.stats.t quantiles)
``mdd`` is that of the row's own s_d; a table states one MDD per seed count n, with s_d replaced by
the root-mean-square of s_d over the pairs it shows (pooled_mdd). Below two seeds s_d and the MDD
are undefined (NaN).
"""

from __future__ import annotations

import json
import logging
import warnings
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats as sps

from fast.catalog import BASELINE, NO_ANOMALIES, REAL_FEWSHOT
from fast.errors import FastError
from fast.methods import SAMPLER_OF, SWEEP, SWEEP_SAMPLERS

log = logging.getLogger(__name__)

AVERAGE = "average"  # the category-average row (fast.report.tables renders it)
N_RESAMPLES = 2000
SEED = 0
CONFIDENCE = 0.95
METRICS = ("mIoU", "IoU_anomaly")
REFERENCES = (NO_ANOMALIES, REAL_FEWSHOT)  # the floor first, then the real few-shot ceiling
AIAS_SAMPLERS = ("aias", "aiaspaper")
# BASELINE (fast.catalog): the real-defect paste baseline; a synthesis method that does not beat it
# has not earned its cost
COUNTS = ("tp", "fp", "fn", "tn")
RUN_KEYS = ["dataset", "category", "method", "segmenter", "seed"]
COLUMNS = ["dataset", "category", "method", "segmenter", "reference", "metric", "diff", "lo", "hi",
           "significant", "n_images", "n_seeds", "seed_lo", "seed_hi", "seeds_disagree", "seed_sd", "mdd"]
MDD_ALPHA = 0.05   # two-sided level of the paired t-test over seeds
MDD_POWER = 0.80


# ----------------------------------------------------------------------------------- seed power
def mdd_factor(n_seeds: int) -> float:
    """(t_{1 - alpha/2, n-1} + t_{power, n-1}) / sqrt(n): the MDD per unit of per-seed SD; NaN below
    two seeds (no degrees of freedom)."""
    if n_seeds < 2:
        return float("nan")
    df = n_seeds - 1
    return float((sps.t.ppf(1 - MDD_ALPHA / 2, df) + sps.t.ppf(MDD_POWER, df)) / np.sqrt(n_seeds))


def seed_sd(seed_diffs) -> float:
    """Sample SD (ddof 1) of the per-seed differences; NaN below two seeds, and NaN where a seed's
    difference is undefined (NaN): a spread over fewer seeds than the row's n_seeds would be paired
    with the wrong t quantiles."""
    d = np.asarray(seed_diffs, np.float64)
    return float(np.std(d, ddof=1)) if len(d) >= 2 else float("nan")


class PooledMDD(NamedTuple):
    n_seeds: int
    n_pairs: int
    sd: float    # root-mean-square of the pairs' per-seed SDs
    mdd: float


def pooled_mdd(sds, n_seeds) -> list[PooledMDD]:
    """One MDD per seed count among the pairs of a table (the t quantiles depend on n, so pairs with
    different seed counts are not pooled together), from the root-mean-square of their per-seed SDs;
    pairs with an undefined SD (one seed) are left out. Ordered by seed count, most seeds first."""
    frame = pd.DataFrame({"sd": np.asarray(sds, np.float64), "n": np.asarray(n_seeds, np.float64)})
    frame = frame[np.isfinite(frame.sd) & (frame.n >= 2)]
    pools = []
    for n, group in sorted(frame.groupby("n"), key=lambda g: -g[0]):
        sd = float(np.sqrt(np.mean(group.sd ** 2)))
        pools.append(PooledMDD(int(n), len(group), sd, mdd_factor(int(n)) * sd))
    return pools


# ----------------------------------------------------------------------------------- input
def _run_keys(path: Path) -> dict:
    """The run keys of a per_image.csv: those of the metrics.json `fast evaluate` writes beside it."""
    record_path = path.with_name("metrics.json")
    try:
        record = json.loads(record_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise FastError(f"{path}: cannot read the metrics.json beside it ({exc}); `fast evaluate --out` "
                        f"writes the two together: re-run it") from None
    missing = [k for k in RUN_KEYS if k not in record]
    if missing:
        raise FastError(f"{record_path}: missing keys {missing} (re-run `fast evaluate`)")
    return {k: record[k] for k in RUN_KEYS} | {"seed": int(record["seed"])}


def _read_one(path: Path) -> pd.DataFrame:
    """One per_image.csv with its run keys (from the metrics.json beside it)."""
    keys = _run_keys(path)
    try:
        table = pd.read_csv(path, dtype={"image": str})
    except (OSError, ValueError) as exc:
        raise FastError(f"cannot read {path}: {exc}") from None
    missing = [c for c in ("image", *COUNTS) if c not in table.columns]
    if missing:
        raise FastError(f"{path}: missing columns {missing} (re-run `fast evaluate`)")
    if table["image"].duplicated().any():
        raise FastError(f"{path}: duplicate image rows")
    if "anomaly_type" not in table.columns:
        table["anomaly_type"] = ""
    table["anomaly_type"] = table["anomaly_type"].fillna("").astype(str)
    return table[["image", "anomaly_type", *COUNTS]].assign(**keys)


def load_per_image(paths) -> pd.DataFrame:
    """The given per_image.csv files of `fast evaluate` as one table (RUN_KEYS, image, counts);
    empty (with those columns) when there is none."""
    paths = [Path(p) for p in paths]
    if not paths:
        return pd.DataFrame(columns=[*RUN_KEYS, "image", "anomaly_type", *COUNTS])
    return pd.concat([_read_one(p) for p in paths], ignore_index=True)


def _counts_cube(runs: pd.DataFrame) -> tuple[list[tuple], np.ndarray]:
    """(run keys, float64 array (runs, images, 4)) of one (dataset, category), images aligned by name.
    Every run of a category must have evaluated the same test images, else pairing is meaningless."""
    images = sorted(set(runs["image"]))
    sizes = runs.groupby(["method", "segmenter", "seed"]).size()
    bad = sizes[sizes != len(images)]
    if len(bad):
        d, c = runs["dataset"].iloc[0], runs["category"].iloc[0]
        m, s, k = bad.index[0]
        raise FastError(f"per_image.csv of {d}/{c} {m} {s} seed {k}: {bad.iloc[0]} images, other runs of "
                        f"{d}/{c} have {len(images)} distinct ones (re-run `fast evaluate`)")
    ordered = runs.sort_values(["method", "segmenter", "seed", "image"], kind="stable")
    keys = list(ordered[["method", "segmenter", "seed"]].drop_duplicates().itertuples(index=False, name=None))
    cube = ordered[list(COUNTS)].to_numpy(np.float64).reshape(len(keys), len(images), len(COUNTS))
    return keys, cube


# ----------------------------------------------------------------------------------- bootstrap
def category_rng(dataset: str, category: str, seed: int = SEED) -> np.random.Generator:
    """The resampling generator of one category: stable across runs and independent between categories."""
    return np.random.default_rng([seed, zlib.crc32(f"{dataset}/{category}".encode())])


def resample_weights(n_images: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(1 + n_resamples, n_images) multiplicities: row 0 all ones (the original images), then one row
    per resample of ``n_images`` indices drawn with replacement by ``rng.integers(0, n, (B, n))``."""
    idx = rng.integers(0, n_images, size=(n_resamples, n_images))
    flat = (np.arange(n_resamples)[:, None] * n_images + idx).ravel()
    weights = np.bincount(flat, minlength=n_resamples * n_images).reshape(n_resamples, n_images)
    return np.vstack([np.ones((1, n_images), np.int64), weights]).astype(np.float64)


def confusion_metrics(sums: np.ndarray) -> dict[str, np.ndarray]:
    """mIoU and IoU_anomaly (as fast.metrics) of summed counts (..., 4: tp, fp, fn, tn); NaN if undefined."""
    tp, fp, fn, tn = np.moveaxis(sums, -1, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou_an = np.where(tp + fp + fn > 0, tp / (tp + fp + fn), np.nan)
        iou_bg = np.where(tn + fp + fn > 0, tn / (tn + fp + fn), np.nan)
    return {"IoU_anomaly": iou_an, "mIoU": (iou_an + iou_bg) / 2}


@contextmanager
def _quiet():
    """A mean / percentile over only-NaN values is NaN by design here (an undefined metric, e.g. a
    resample without anomalous pixels in any seed); numpy's RuntimeWarning about it is noise."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _pooled_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Seed-averaged a minus seed-averaged b, both (seeds, 1 + B) over the same seeds."""
    with _quiet():
        return np.nanmean(a, axis=0) - np.nanmean(b, axis=0)


def frontier_entries(methods, nfe: dict[str, float] | None = None,
                     coefficients: str = "exact") -> dict[str, tuple[str, int]]:
    """(sampler, NFE) of every method among ``methods`` that samples FAST's model with a sampler of
    the sweep: the sweep entries by name; the others (`fast` itself: AIAS-10 at NFE 12, or DDIM-50)
    by the NFE their synthesis recorded (``nfe``, from timing.json), AIAS under the configured
    ``coefficients`` (aias.coefficients), so the frontier compares `fast` without sampling it twice."""
    nfe = nfe or {}
    entries = {}
    for m in methods:
        sampler = SAMPLER_OF.get(m)
        if m in SWEEP:
            entries[m] = SWEEP[m]
        elif sampler in SWEEP_SAMPLERS and m in nfe:
            sampler = "aiaspaper" if sampler == "aias" and coefficients == "paper" else sampler
            entries[m] = (sampler, int(round(nfe[m])))
    return entries


def frontier_pairs(methods, entries: dict[str, tuple[str, int]] | None = None) -> dict[str, list[str]]:
    """The equal-cost comparisons of the sampler frontier: each AIAS entry (both coefficient modes)
    against every other sampler's entry at the same NFE, among ``methods``; ``entries`` as
    frontier_entries gives them (default: the sweep entries by name)."""
    entries = frontier_entries(methods) if entries is None else entries
    present = [m for m in methods if m in entries]
    pairs = {m: [o for o in present if entries[o][1] == entries[m][1] and entries[o][0] not in AIAS_SAMPLERS]
             for m in present if entries[m][0] in AIAS_SAMPLERS}
    return {m: refs for m, refs in pairs.items() if refs}


def baseline_pairs(methods) -> dict[str, list[str]]:
    """Every other synthesis method against BASELINE, when the experiment ran it."""
    methods = list(methods)
    if BASELINE not in methods:
        return {}
    return {m: [BASELINE] for m in methods if m != BASELINE and m not in REFERENCES}


def category_draws(runs: pd.DataFrame, n_resamples: int = N_RESAMPLES, seed: int = SEED,
                   compare: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """Bootstrap differences of one (dataset, category): one row per method x segmenter x reference x
    metric with ``draws`` = array (1 + B,), element 0 the point estimate, and the seeds / images used.
    ``compare`` maps a method to the rows it is compared with (default: every reference row)."""
    dataset, category = runs["dataset"].iloc[0], runs["category"].iloc[0]
    keys, cube = _counts_cube(runs)
    weights = resample_weights(cube.shape[1], n_resamples, category_rng(dataset, category, seed))
    values = confusion_metrics(weights @ cube)  # (runs, 1 + B) per metric
    index = {k: i for i, k in enumerate(keys)}
    seeds = {}
    for m, s, k in keys:
        seeds.setdefault((m, s), []).append(k)
    rows = []
    for (method, segmenter), method_seeds in seeds.items():
        against = [r for r in REFERENCES if r != method] if compare is None else compare.get(method, [])
        for reference in [r for r in against if (r, segmenter) in seeds]:
            common = sorted(set(method_seeds) & set(seeds[reference, segmenter]))
            if not common:
                log.warning("%s/%s %s: no seed shared with %s; no difference", dataset, category, method, reference)
                continue
            a = [index[method, segmenter, k] for k in common]
            b = [index[reference, segmenter, k] for k in common]
            for metric in METRICS:
                rows.append({"dataset": dataset, "category": category, "method": method, "segmenter": segmenter,
                             "reference": reference, "metric": metric, "n_images": cube.shape[1],
                             "n_seeds": len(common),
                             "draws": _pooled_difference(values[metric][a], values[metric][b]),
                             # each shared seed's own difference on the original test images
                             "seed_diffs": values[metric][a][:, 0] - values[metric][b][:, 0]})
    return pd.DataFrame(rows, columns=[*COLUMNS[:6], "n_images", "n_seeds", "draws", "seed_diffs"])


def _average_draws(draws: pd.DataFrame) -> pd.DataFrame:
    """The category average: per dataset x method x segmenter x reference x metric, the mean over
    categories of each resample's differences (categories were resampled independently)."""
    keys = ["dataset", "method", "segmenter", "reference", "metric"]
    out = (draws.groupby(keys, sort=False)
           .agg(draws=("draws", lambda d: _nanmean_rows(np.stack(list(d)))),
                seed_diffs=("seed_diffs", _seedwise_mean),
                n_images=("n_images", "sum"), n_seeds=("n_seeds", "min"))
           .reset_index().assign(category=AVERAGE))
    return out


def _seedwise_mean(per_category) -> np.ndarray:
    """Per seed, the mean over categories of that seed's difference; empty where the categories do
    not share one seed list (the seed check is then left out)."""
    arrays = list(per_category)
    if len({len(a) for a in arrays}) != 1:
        return np.zeros(0)
    return _nanmean_rows(np.stack(arrays))


def _nanmean_rows(stack: np.ndarray) -> np.ndarray:
    with _quiet():
        return np.nanmean(stack, axis=0)


def _summarise(draws: pd.DataFrame, confidence: float) -> pd.DataFrame:
    """Point estimate, percentile interval and the significance flag of each row of draws."""
    alpha = (1 - confidence) / 2 * 100
    stack = np.stack(list(draws["draws"])) if len(draws) else np.zeros((0, 2))
    with _quiet():
        lo, hi = np.nanpercentile(stack[:, 1:], [alpha, 100 - alpha], axis=1)
    out = draws.drop(columns=["draws", "seed_diffs"]).assign(diff=stack[:, 0], lo=lo, hi=hi)
    out["significant"] = (out["lo"] > 0) | (out["hi"] < 0)
    # The image bootstrap does not see the segmenter's seed-to-seed variation: where at least two
    # seeds were shared, flag a difference that one of them contradicts (its own difference has the
    # other sign), so a starred cell that the seeds do not carry is visible.
    with _quiet():
        seed_lo = np.array([np.nanmin(d) if len(d) else np.nan for d in draws["seed_diffs"]])
        seed_hi = np.array([np.nanmax(d) if len(d) else np.nan for d in draws["seed_diffs"]])
    several = np.array([len(d) >= 2 for d in draws["seed_diffs"]], bool)
    out["seed_lo"], out["seed_hi"] = seed_lo, seed_hi
    out["seeds_disagree"] = several & (seed_lo < 0) & (seed_hi > 0)
    out["seed_sd"] = [seed_sd(d) for d in draws["seed_diffs"]]
    out["mdd"] = [mdd_factor(len(d)) * sd for d, sd in zip(draws["seed_diffs"], out["seed_sd"])]
    return out[COLUMNS]


def differences(per_image: pd.DataFrame, n_resamples: int = N_RESAMPLES, seed: int = SEED,
                confidence: float = CONFIDENCE, compare: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """The rows of tables/differences.csv (COLUMNS) from load_per_image's table: per category and
    for the category average (``average``), every method (reference rows included) against each
    reference row it is not; with ``compare`` (e.g. frontier_pairs), those pairs instead."""
    if per_image.empty:
        return pd.DataFrame(columns=COLUMNS)
    parts = [category_draws(g, n_resamples, seed, compare)
             for _, g in per_image.groupby(["dataset", "category"], sort=True)]
    draws = pd.concat(parts, ignore_index=True)
    if draws.empty:
        return pd.DataFrame(columns=COLUMNS)
    both = pd.concat([draws, _average_draws(draws)], ignore_index=True)
    return _summarise(both, confidence).reset_index(drop=True)
