"""The magnetic_tile experiment configs validate against the schema and say what they promise."""

from __future__ import annotations

from pathlib import Path

import pytest

from fast.config import load_config
from fast.methods import REGISTRY, SWEEP

# every method of the comparison tables (the NFE sweep entries belong to the frontier experiment)
COMPARED = sorted(m for m in REGISTRY if m not in SWEEP)

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"


@pytest.mark.parametrize("name", ["magnetic_tile.yaml", "magnetic_tile_smoke.yaml", "magnetic_tile_gpu.yaml"])
def test_magnetic_tile_configs_validate(name):
    cfg = load_config(CONFIG_DIR / name)
    assert list(cfg["datasets"]) == ["magnetic_tile"]
    ds = cfg["datasets"]["magnetic_tile"]
    assert ds["root"] is None and ds["categories"] == ["magnetic_tile"]
    if name != "magnetic_tile_gpu.yaml":
        assert cfg["segmentation"]["encoder_weights"] is None  # offline
    assert cfg["segmentation"]["reference_rows"] == ["real-fewshot", "no-anomalies"]


def test_full_experiment_has_every_method_and_is_cpu_sized():
    cfg = load_config(CONFIG_DIR / "magnetic_tile.yaml")
    assert sorted(cfg["methods"]) == COMPARED
    seg = cfg["segmentation"]
    runs = (len(cfg["methods"]) + 2) * len(seg["segmenters"]) * len(seg["seeds"])
    assert runs == 51 and seg["steps"] <= 400 and seg["patch"] == 64 and seg["segmenters"] == ["segformer"]
    assert cfg["datasets"]["magnetic_tile"]["options"]["types"] == ["blowhole", "crack"]  # header: why
    assert cfg["resolution"] >= 192             # a blowhole is ~8x8 px there (PROTOCOL, sizes)
    assert len(seg["seeds"]) >= 3                # mean +- std over seeds for a ranking table


def test_cluster_variant_is_paper_scale():
    cfg = load_config(CONFIG_DIR / "magnetic_tile_gpu.yaml")
    assert sorted(cfg["methods"]) == COMPARED
    assert cfg["diffusion"]["backbone"] == "ldm" and cfg["diffusion"]["farm"]["widths"] == [64, 128, 256]
    assert cfg["segmentation"]["segmenters"] == ["segformer", "unet"]
    assert cfg["segmentation"]["encoder_weights"] == "imagenet" and cfg["resources"]["gpu"]["gpu"] == 1


def test_smoke_is_tiny():
    cfg = load_config(CONFIG_DIR / "magnetic_tile_smoke.yaml")
    assert cfg["methods"] == ["fast", "cutpaste"]
    assert cfg["diffusion"]["train"]["steps"] <= 50 and cfg["segmentation"]["steps"] <= 50
    assert cfg["resolution"] == 32 and cfg["synthesis"]["n_per_type"] <= 2
