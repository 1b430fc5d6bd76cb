"""scripts/bench_segmenter.py runs both jobs of a row per code version, times every phase and
compares the outputs byte for byte (slow: eight processes that import torch)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_segmenter.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_segmenter", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_times_every_phase_and_finds_the_baseline_outputs_identical(synthetic_prepared, tmp_path, capsys):
    config = tmp_path / "bench.yaml"
    config.write_text(yaml.safe_dump({
        "experiment": "bench", "datasets": {"synthetic": {"categories": ["fabric"]}}, "methods": ["fast"],
        "resolution": 64, "device": "cpu",   # prepared at 32 px: brought to 64, windows of 32
        "segmentation": {"segmenters": ["segformer"], "steps": 50, "batch_size": 4, "patch": 32,
                         "encoder_weights": None}}))
    rc = _bench().main(["--config", str(config), "--prepared", str(synthetic_prepared), "--steps", "2",
                        "--baseline", "HEAD", "--keep", str(tmp_path / "runs")])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "2 steps" in out and "byte-identical to the baseline" in out
    for phase in ("startup + imports", "data", "train steps", "recalibration", "inference", "metrics"):
        assert phase in out, phase
    for version in ("baseline0", "current0"):
        for name in ("model.safetensors", "metrics.json", "per_image.csv"):
            assert (tmp_path / "runs" / version / name).is_file()
    assert list((tmp_path / "runs" / "cache").glob("*.npz"))          # the current code's warm cache
