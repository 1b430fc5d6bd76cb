"""The magnetic_tile experiment configs validate against the schema and say what they promise."""

from __future__ import annotations

from pathlib import Path

import pytest

from fast.config import load_config
from fast.methods import REGISTRY, SWEEP, SWEEP_SAMPLERS

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


def test_full_experiment_is_the_fair_comparison_and_cpu_sized():
    """Every paper method and baseline, both AIAS coefficient rows, the FARM and fusion ablations; at
    least 5 seeds, each its own synthetic draw of at least as many pairs per type as real-fewshot has
    real images per type (58 over 2); one own-part budget; the authors' adaptor."""
    cfg = load_config(CONFIG_DIR / "magnetic_tile.yaml")
    paper = {"fast", "anomalydiffusion", "stage", "sard", "cutpaste", "cutpaste-scar", "draem", "nsa", "defect-paste"}
    assert paper | {"fast-aiaspaper-nfe12", "fast-nofarm", "fast-fusionwindow"} <= set(cfg["methods"])
    seg, syn = cfg["segmentation"], cfg["synthesis"]
    assert len(seg["seeds"]) >= 5 and syn["n_per_type"] >= 39 and syn["per_seed"] is True
    assert cfg["diffusion"]["farm"]["adaptor"] is True and cfg["aias"]["coefficients"] == "exact"
    assert cfg["diffusion"]["train"]["finetune_steps"] >= 600 and cfg["diffusion"]["train"]["finetune_lr"] is None
    assert seg["steps"] <= 400 and seg["patch"] == 64 and seg["segmenters"] == ["segformer"]
    assert cfg["datasets"]["magnetic_tile"]["options"]["types"] == ["blowhole", "crack"]  # header: why
    assert cfg["resolution"] >= 192             # a blowhole is ~8x8 px there (PROTOCOL, sizes)


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


def test_real_data_frontier_is_the_magnetic_tile_experiment_under_every_sampler():
    """config/magnetic_tile_frontier.yaml: the same data, generators and segmenter recipe as the
    full Magnetic Tile experiment (so its points sit on the same model), every sweep sampler at
    NFE 4, 12 and 50, `fast` standing for AIAS exact at NFE 12."""
    full = load_config(CONFIG_DIR / "magnetic_tile.yaml")
    frontier = load_config(CONFIG_DIR / "magnetic_tile_frontier.yaml")
    for key in set(full) - {"experiment", "methods", "segmentation"}:
        assert frontier[key] == full[key], key
    seg_full, seg_frontier = dict(full["segmentation"]), dict(frontier["segmentation"])
    assert seg_frontier.pop("seeds") == [0] and seg_full.pop("seeds") == [0, 1, 2, 3, 4]
    assert seg_frontier == seg_full
    assert frontier["experiment"] != full["experiment"]          # its own results directory
    expected = {"fast"} | {f"fast-{s}-nfe{n}" for s in SWEEP_SAMPLERS for n in (4, 12, 50)} - {"fast-aias-nfe12"}
    assert set(frontier["methods"]) == expected and len(frontier["methods"]) == len(expected)
    assert full["aias"]["steps"] == 10 and SWEEP["fast-aiaspaper-nfe12"] == ("aiaspaper", 12)


def test_nfe12_seeds_experiment_is_the_frontier_at_aias_own_cost_with_three_seeds():
    """config/magnetic_tile_nfe12.yaml: the frontier experiment's model and recipe, only the NFE-12
    entries (AIAS exact = `fast`, AIAS paper and every solver), at the full experiment's seeds."""
    frontier = load_config(CONFIG_DIR / "magnetic_tile_frontier.yaml")
    nfe12 = load_config(CONFIG_DIR / "magnetic_tile_nfe12.yaml")
    for key in set(frontier) - {"experiment", "methods", "segmentation"}:
        assert nfe12[key] == frontier[key], key
    seg12, seg_frontier = dict(nfe12["segmentation"]), dict(frontier["segmentation"])
    assert seg12.pop("seeds") == load_config(CONFIG_DIR / "magnetic_tile.yaml")["segmentation"]["seeds"]
    seg_frontier.pop("seeds")
    assert seg12 == seg_frontier and nfe12["experiment"] not in (frontier["experiment"], "magnetic_tile")
    assert nfe12["methods"] == ["fast", *(f"fast-{s}-nfe12" for s in SWEEP_SAMPLERS if s != "aias")]
