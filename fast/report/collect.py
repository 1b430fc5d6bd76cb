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
# Layout of an experiment directory's result files (what the workflow's path functions write).
METRICS_GLOB = "segmentation/*/*/*/*/seed*/metrics.json"
TIMING_GLOB = "synthetic/*/*/*/timing.json"
FIDELITY_GLOB = "fidelity/*/*/*.csv"
PER_IMAGE_GLOB = "segmentation/*/*/*/*/seed*/per_image.csv"


def result_files(source, pattern: str) -> list[Path]:
    """``source`` as a list of files: a directory is globbed with ``pattern``, a list is taken as is."""
    if isinstance(source, (str, Path)):
        return sorted(Path(source).glob(pattern))
    return [Path(p) for p in source]


def configured_files(results: str | Path, cfg: dict) -> dict[str, list[Path]]:
    """The result files of ``results`` that belong to the experiment ``cfg`` describes (its
    datasets, categories, methods and reference rows, segmenters, seeds), by kind: what
    `fast report` reads when it is not handed its files (the workflow hands them). Files of a
    method, seed or category no longer configured are left out, so stale numbers never reach a
    table."""
    seg = cfg["segmentation"]
    cats = {(d, c) for d, e in cfg["datasets"].items() for c in e["categories"]}
    methods = set(cfg["methods"])
    rows = methods | set(seg["reference_rows"])
    seeds = {f"seed{k}" for k in seg["seeds"]}
    metrics = [p for p in result_files(results, METRICS_GLOB)
               if tuple(p.parts[-6:-4]) in cats and p.parts[-4] in rows
               and p.parts[-3] in seg["segmenters"] and p.parts[-2] in seeds]
    timings = [p for p in result_files(results, TIMING_GLOB) if tuple(p.parts[-4:-2]) in cats and p.parts[-2] in methods]
    fidelity = [p for p in result_files(results, FIDELITY_GLOB) if tuple(p.parts[-3:-1]) in cats and p.stem in methods]
    return {"metrics": metrics, "timings": timings, "fidelity": fidelity}
TIMING_KEYS = ["nfe", "seconds_per_image", "images_per_s", "wall_seconds", "images", "device"]


def load_metrics(source) -> pd.DataFrame:
    """Long table (one row per dataset x category x method x segmenter x seed x metric) from the
    given metrics.json files (or every one under a results directory); values are fractions, NaN
    where undefined."""
    rows = []
    for path in result_files(source, METRICS_GLOB):
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise FastError(f"cannot read {path}: {exc}") from None
        missing = [k for k in ID_COLUMNS if k not in record]
        if missing:
            raise FastError(f"{path}: missing keys {missing} (re-run `fast evaluate`)")
        for metric in METRIC_KEYS:
            value = record.get(metric)
            rows.append({**{k: record[k] for k in ID_COLUMNS}, "metric": metric,
                         "value": np.nan if value is None else float(value)})
    if not rows:
        raise FastError(f"no metrics.json files in {source if isinstance(source, (str, Path)) else 'the inputs'}"
                        f": run the evaluate rules first")
    table = pd.DataFrame(rows)
    table["seed"] = table["seed"].astype(int)
    return table.sort_values(ID_COLUMNS + ["metric"], kind="stable").reset_index(drop=True)


def load_timings(source) -> pd.DataFrame:
    """One row per (dataset, category, method) from ``synthetic/<ds>/<cat>/<method>/timing.json``
    files (given, or every one under a results directory)."""
    rows = []
    for path in result_files(source, TIMING_GLOB):
        dataset, category, method = path.parts[-4:-1]
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise FastError(f"cannot read {path}: {exc}") from None
        rows.append({"dataset": dataset, "category": category, "method": method,
                     **{k: record.get(k) for k in TIMING_KEYS}})
    return pd.DataFrame(rows, columns=["dataset", "category", "method", *TIMING_KEYS])


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


def load_fidelity(source) -> pd.DataFrame:
    """The ``fidelity/<ds>/<cat>/<method>.csv`` files of `fast fidelity` (given, or every one under
    a results directory) as one table; dataset, category and method are taken from the path."""
    parts = []
    for path in result_files(source, FIDELITY_GLOB):
        dataset, category, method = *path.parts[-3:-1], path.stem
        try:
            table = pd.read_csv(path, dtype={"type": str})
        except (OSError, ValueError) as exc:
            raise FastError(f"cannot read {path}: {exc}") from None
        missing = [c for c in FIDELITY_COLUMNS[3:] if c not in table.columns]
        if missing:
            raise FastError(f"{path}: missing columns {missing} (re-run `fast fidelity`)")
        parts.append(table[FIDELITY_COLUMNS[3:]].assign(dataset=dataset, category=category, method=method))
    if not parts:
        return pd.DataFrame(columns=FIDELITY_COLUMNS)
    return pd.concat(parts, ignore_index=True)[FIDELITY_COLUMNS]
