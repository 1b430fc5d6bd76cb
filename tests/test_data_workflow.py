"""workflow/rules/data.smk: `snakemake <prepared>/synthetic/fabric/manifest.csv` runs fetch then
prepare through the CLI contract (outputs redirected to tmp_path with --config)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("snakemake") is None, reason="snakemake is not installed")
def test_snakemake_prepares_synthetic_fabric(tmp_path):
    paths = {"data": str(tmp_path / "data"), "results": str(tmp_path / "results")}
    datasets = {"synthetic": {"categories": ["fabric"], "options": {
        "image_size": 32, "n_normal_train": 3, "n_normal_test": 2, "n_anomalous_per_type": 3}}}
    target = tmp_path / "data/prepared/synthetic/fabric/manifest.csv"
    # the default config at 16 px: its 32 px generator windows would not fit such images (and
    # --config cannot set a nested number), so a config file of its own
    cfg = yaml.safe_load((REPO / "config/config.yaml").read_text())
    cfg.update(paths=paths, datasets=datasets, resolution=16)
    cfg["diffusion"]["patch"] = 16
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run(
        ["snakemake", "--cores", "1", "--nolock", "--snakefile", str(REPO / "Snakefile"),
         "--configfile", str(tmp_path / "config.yaml"), "--", str(target)],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    t = pd.read_csv(target)
    assert t.groupby("split").size().to_dict() == {"gen_train": 3, "seg_test": 6, "normal_train": 3, "normal_test": 2}
    record = json.loads((tmp_path / "data/raw/synthetic/fetch_record.json").read_text())
    assert record["options"]["image_size"] == 32 and record["seed"] == 0
    assert (tmp_path / "results/default/logs/prepare/synthetic/fabric.log").is_file()
