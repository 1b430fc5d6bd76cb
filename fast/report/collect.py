"""Gather an experiment's result files into tidy pandas tables (the input of tables and figures)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from fast.errors import FastError
from fast.methods import REFERENCE_ROWS
from fast.metrics import METRIC_KEYS

ID_COLUMNS = ["dataset", "category", "method", "segmenter", "seed"]
# The report reads the files it is handed (the workflow's report rule passes them) and takes every
# key from the files' contents, never from their paths: the path layout lives in the workflow alone.


def experiment_rows(table: pd.DataFrame, cfg: dict) -> pd.Series:
    """Which rows of a results table (columns dataset, category, method and, where present,
    segmenter and seed) belong to the experiment ``cfg`` describes: its datasets x categories,
    methods and reference rows, segmenters and seeds. A stale file handed in (a method, seed or
    category no longer configured) is left out of every table."""
    seg = cfg["segmentation"]
    cats = {(d, c) for d, e in cfg["datasets"].items() for c in e["categories"]}
    keep = pd.Series([(d, c) in cats for d, c in zip(table["dataset"], table["category"])], index=table.index,
                     dtype=bool)
    keep &= table["method"].isin([*cfg["methods"], *seg["reference_rows"]])
    if "segmenter" in table.columns:
        keep &= table["segmenter"].isin(seg["segmenters"])
    if "seed" in table.columns:
        # no seed: a synthetic set every segmenter seed shares (synthesis.per_seed false)
        seeds = pd.to_numeric(table["seed"], errors="coerce")
        keep &= seeds.isna() | seeds.isin(seg["seeds"])
    return keep


def _read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise FastError(f"cannot read {path}: {exc}") from None


TIMING_KEYS = ["nfe", "seconds_per_image", "images_per_s", "wall_seconds", "images", "device"]


def load_metrics(paths) -> pd.DataFrame:
    """Long table (one row per dataset x category x method x segmenter x seed x metric) from the
    given metrics.json files of `fast evaluate`; values are fractions, NaN where undefined."""
    rows = []
    for path in map(Path, paths):
        record = _read_json(path)
        missing = [k for k in ID_COLUMNS if k not in record]
        if missing:
            raise FastError(f"{path}: missing keys {missing} (re-run `fast evaluate`)")
        for metric in METRIC_KEYS:
            value = record.get(metric)
            rows.append({**{k: record[k] for k in ID_COLUMNS}, "metric": metric,
                         "value": np.nan if value is None else float(value)})
    if not rows:
        raise FastError("no metrics.json files given (--metrics): run the evaluate rules first")
    table = pd.DataFrame(rows)
    table["seed"] = table["seed"].astype(int)
    return table.sort_values(ID_COLUMNS + ["metric"], kind="stable").reset_index(drop=True)


def load_timings(paths) -> pd.DataFrame:
    """One row per (dataset, category, method, seed) from the given timing.json files of `fast
    synthesize`; ``seed`` is the segmenter seed whose own set it timed (its ``replicate``,
    synthesis.per_seed), None for a set every seed shares."""
    rows = []
    for path in map(Path, paths):
        record = _read_json(path)
        missing = [k for k in ("dataset", "category", "method") if k not in record]
        if missing:
            raise FastError(f"{path}: missing keys {missing} (written by an older `fast synthesize`; "
                            f"re-run that synthesis, e.g. snakemake --forcerun synthesize)")
        rows.append({k: record[k] for k in ("dataset", "category", "method")} | {"seed": record.get("replicate")}
                    | {k: record.get(k) for k in TIMING_KEYS})
    return pd.DataFrame(rows, columns=["dataset", "category", "method", "seed", *TIMING_KEYS])


def method_order(found, configured=()) -> list[str]:
    """Configured methods first (config order), then other synthesis methods, then reference rows."""
    found = list(dict.fromkeys(found))
    synth = [m for m in configured if m in found] + sorted(m for m in found if m not in configured
                                                            and m not in REFERENCE_ROWS)
    return synth + [m for m in REFERENCE_ROWS if m in found]


def load_reference(path: str | Path | None) -> pd.DataFrame:
    """Published numbers (dataset, category, segmenter, method, metric, value, source), in %;
    duplicate cells (the same number printed in two tables) are kept once."""
    cols = ["dataset", "category", "segmenter", "method", "metric", "value", "source"]
    if path is None or not Path(path).is_file():
        return pd.DataFrame(columns=cols)
    table = pd.read_csv(path)
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise FastError(f"reference file {path}: missing columns {missing}")
    return table[cols].drop_duplicates(subset=cols[:5], keep="first").reset_index(drop=True)


FIDELITY_COLUMNS = ["dataset", "category", "method", "type", "n", "n_real", "delta_syn", "delta_real",
                    "contrast_syn", "contrast_real", "grad_syn", "grad_real", "w1", "ratio"]


def load_fidelity(paths) -> pd.DataFrame:
    """The given CSV files of `fast fidelity` as one table (each row names its dataset, category
    and method)."""
    parts = []
    for path in map(Path, paths):
        try:
            table = pd.read_csv(path, dtype={"type": str, "dataset": str, "category": str, "method": str})
        except (OSError, ValueError) as exc:
            raise FastError(f"cannot read {path}: {exc}") from None
        missing = [c for c in FIDELITY_COLUMNS if c not in table.columns]
        if missing:
            raise FastError(f"{path}: missing columns {missing} (re-run `fast fidelity`)")
        parts.append(table[FIDELITY_COLUMNS])
    if not parts:
        return pd.DataFrame(columns=FIDELITY_COLUMNS)
    return pd.concat(parts, ignore_index=True)[FIDELITY_COLUMNS]
