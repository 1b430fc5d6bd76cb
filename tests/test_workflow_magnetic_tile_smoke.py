"""The real-data smoke experiment (config/magnetic_tile_smoke.yaml) end to end with Snakemake on the
Magnetic Tile copy beside the repository: fetch (from $FAST_DATA_DIR, no download), prepare,
train, synthesize, segment, evaluate, report. Slow (a few minutes): CI runs it in its
`pytest -m slow` step."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from fast.config import load_config
from workflow_support import REPO, copy_repo, run, snakemake, tool_env

SHARED = Path(os.environ.get("FAST_DATA_DIR", REPO.parent / "shared" / "datasets"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (SHARED / "magnetic_tile" / "MT_Free").is_dir(),
                       reason=f"no Magnetic Tile copy at {SHARED}/magnetic_tile (set FAST_DATA_DIR)"),
]


def test_magnetic_tile_smoke_runs_end_to_end(tmp_path):
    repo = copy_repo(tmp_path / "repo", git=False)
    env = tool_env(FAST_DATA_DIR=str(SHARED))
    run(snakemake("--cores", "2", "--configfile", "config/magnetic_tile_smoke.yaml"), repo, timeout=1500, env=env)

    exp = repo / "results" / "magnetic_tile_smoke"
    fetched = json.loads(next((repo / "data" / "raw" / "magnetic_tile").glob("*.json")).read_text())
    assert "magnetic_tile" in json.dumps(fetched)  # copied from the local path, not downloaded
    manifest = pd.read_csv(repo / "data" / "prepared" / "magnetic_tile" / "magnetic_tile" / "manifest.csv")
    assert set(manifest["anomaly_type"]) == {"good", "blowhole", "break", "crack", "fray", "uneven"}

    summary = pd.read_csv(exp / "tables" / "summary.csv")
    assert set(summary["method"]) == {"fast", "cutpaste", "real-fewshot", "no-anomalies"}
    miou = summary[summary["metric"] == "mIoU"]
    assert len(miou) == 4 and miou["value"].between(0, 1).all()
    eff = pd.read_csv(exp / "tables" / "efficiency.csv")
    assert set(eff["method"]) >= {"fast", "cutpaste"}
    assert (exp / "figures" / "sample_grid.png").stat().st_size > 10_000
    cfg = load_config(str(repo / "config" / "magnetic_tile_smoke.yaml"))
    fast_dir = exp / "synthetic" / "magnetic_tile" / "magnetic_tile" / "fast"
    # one set per segmenter seed (synthesis.per_seed), else the one shared set
    sets = [fast_dir / f"seed{k}" for k in cfg["segmentation"]["seeds"]] if cfg["synthesis"]["per_seed"] else [fast_dir]
    for directory in sets:
        synth = pd.read_csv(directory / "manifest.csv")
        assert len(synth) == 5 * 2  # n_per_type x the five defect types
