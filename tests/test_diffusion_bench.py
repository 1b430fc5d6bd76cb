"""`fast bench sampling` on a tiny config: one run, the table and the JSON contract."""

from __future__ import annotations

import json

import pytest

from fast.cli import main as cli_main

TINY = {"experiment": "b", "datasets": {"synthetic": {"categories": ["fabric"]}}, "methods": ["fast"],
        "resolution": 16, "device": "cpu",
        "diffusion": {"num_train_timesteps": 100, "unet": {"block_out_channels": [8, 16]},
                      "farm": {"widths": [8, 8, 16]}},
        "aias": {"steps": 10, "t_fine": 2}}


def test_bench_sampling_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = cli_main(["bench", "sampling", "--config", json.dumps(TINY), "--n-images", "2", "--json", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    nfe = {k: v["nfe"] for k, v in res.items() if isinstance(v, dict)}
    assert nfe == {"fast": 12, "fast-ddpm1000": 100, "fast-ddim50": 50, "fast-dpmpp20": 20, "fast-nofarm": 12,
                   "fast-ddim-nfe12 (no FARM)": 12, "fast-aiaspaper-nfe12": 12, "fast-ddim-nfe12": 12,
                   "fast-dpmpp-nfe12": 12, "fast-unipc-nfe12": 12, "fast-deis-nfe12": 12}
    for v in (v for v in res.values() if isinstance(v, dict)):
        assert v["seconds_per_nfe"] == pytest.approx(v["images_per_s"] ** -1 * 2 / v["nfe"])
        assert v["per_nfe_vs_unet"] == pytest.approx(v["seconds_per_nfe"] / res["unet_forward_seconds"])
        unet_time = v["nfe"] * res["unet_forward_seconds"]
        assert v["overhead_vs_unet"] == pytest.approx(v["seconds_per_nfe"] * v["nfe"] / unet_time - 1)
        assert v["overhead_without_codec_vs_unet"] == pytest.approx(
            (v["seconds_per_nfe"] * v["nfe"] - res["codec_seconds"]) / unet_time - 1)
    assert isinstance(res["aias_step_overhead_vs_ddim"], float)
    assert all(v["images_per_s"] > 0 for v in res.values() if isinstance(v, dict))
    assert res["ratio_aias10_vs_ddpm1000"] == res["fast"]["images_per_s"] / res["fast-ddpm1000"]["images_per_s"]
    assert res["ratio_aias10_vs_ddpm1000"] > 2  # 12 vs 100 network evaluations
    assert isinstance(res["farm_overhead"], float)
    text = capsys.readouterr().out
    assert "fast-ddpm1000" in text and "FARM overhead" in text


def test_bench_with_a_trained_generator(synthetic_prepared, tmp_path, capsys):
    from fast.config import load_config
    from fast.data.manifest import PreparedCategory, manifest_path
    from fast.methods import build_method

    cfg = json.loads(json.dumps(TINY))
    cfg["resolution"] = 32
    cfg["diffusion"]["train"] = {"steps": 1, "finetune_steps": 1, "batch_size": 2}
    prepared = PreparedCategory.load(manifest_path(synthetic_prepared, "synthetic", "brushed_metal"))
    build_method("base", load_config(cfg)).fit(prepared, tmp_path / "ad")
    build_method("fast", load_config(cfg)).fit(prepared, tmp_path / "gen", tmp_path / "ad")
    rc = cli_main(["bench", "sampling", "--config", json.dumps(cfg), "--generator-dir", str(tmp_path / "gen"),
                   "--n-images", "1", "--json", str(tmp_path / "b.json")])
    assert rc == 0 and "trained generator" in capsys.readouterr().out
    assert json.loads((tmp_path / "b.json").read_text())["fast"]["nfe"] == 12
    rc = cli_main(["bench", "sampling", "--config", json.dumps(cfg), "--generator-dir", str(tmp_path / "ad")])
    assert rc == 2 and "no FARM" in capsys.readouterr().err


def test_bench_sampling_per_precision_and_batch(tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = cli_main(["bench", "sampling", "--config", json.dumps(TINY), "--precision", "fp32,bf16", "--batch", "1,3",
                   "--methods", "fast,fast-nofarm", "--repeats", "1", "--json", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    runs = res["runs"]
    assert [(r["precision"], r["batch"]) for r in runs] == [("fp32", 1), ("fp32", 3), ("bf16", 1), ("bf16", 3)]
    for r in runs:
        assert set(r["methods"]) == {"fast", "fast-nofarm"}
        assert all(m["images_per_s"] > 0 and m["nfe"] == 12 for m in r["methods"].values())
        assert r["unet_evals_per_s"] == pytest.approx(r["batch"] / r["unet_forward_seconds"])
        assert r["codec_seconds"] > 0
        assert isinstance(r["peak_memory_bytes"], int) and r["peak_memory_bytes"] > 10 * 2**20
        assert r["memory"].startswith("cpu: peak resident set size")
    # the top level is the first combination's, as without the lists
    assert res["precision"] == "fp32" and res["batch"] == 1 and res["fast"] == runs[0]["methods"]["fast"]
    assert res["peak_memory_bytes"] == runs[0]["peak_memory_bytes"] and res["device"] == "cpu"
    text = capsys.readouterr().out
    assert "precision bf16 (bf16), 3 images/batch" in text and "peak MiB" in text
    assert cli_main(["bench", "sampling", "--config", json.dumps(TINY), "--precision", "fp16"]) == 2
    assert "fp16" in capsys.readouterr().err


def test_bench_training_times_every_generator_and_segmenter(tmp_path, capsys):
    cfg = json.loads(json.dumps(TINY))
    cfg["resolution"] = 32
    cfg["diffusion"]["train"] = {"batch_size": 2}
    cfg["segmentation"] = {"segmenters": ["unet", "segformer"], "batch_size": 2}
    out = tmp_path / "train.json"
    rc = cli_main(["bench", "training", "--config", json.dumps(cfg), "--steps", "2", "--precision", "fp32,bf16",
                   "--json", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["device"] == "cpu" and res["memory"].startswith("cpu: peak resident set size")
    got = [(r["kind"], r["name"], r["precision"], r["batch"]) for r in res["runs"]]
    assert got == ([("generator", g, p, 2) for g in ("base", "fast", "stage", "sard") for p in ("fp32", "bf16")]
                   + [("segmenter", s, p, 2) for s in ("unet", "segformer") for p in ("fp32", "bf16")])
    for r in res["runs"]:
        assert r["seconds_per_step"] > 0 and r["first_step_seconds"] > 0 and r["timed_steps"] == 2
        assert isinstance(r["peak_memory_bytes"], int) and r["peak_memory_bytes"] > 10 * 2**20
    assert all(r["setup_seconds"] > 0 for r in res["runs"] if r["kind"] == "generator")
    text = capsys.readouterr().out
    assert "generator stage" in text and "segmenter segformer" in text
    # the batch list overrides the configured batch; '' leaves a family out
    rc = cli_main(["bench", "training", "--config", json.dumps(cfg), "--steps", "1", "--generators", "fast",
                   "--segmenters", "", "--batch", "3", "--json", str(out)])
    assert rc == 0
    assert [(r["name"], r["batch"]) for r in json.loads(out.read_text())["runs"]] == [("fast", 3)]
