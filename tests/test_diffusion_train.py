"""The generic training loop: resume after a kill, determinism, outputs; `fast train`."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from safetensors.torch import load_file

from fast.cli import main as cli_main
from fast.config import load_config
from fast.data.manifest import PreparedCategory, manifest_path
from fast.diffusion.model import DiffusionModel
from fast.methods import build_method

TINY = {
    "experiment": "t", "datasets": {"synthetic": {"categories": ["fabric"]}}, "methods": ["fast"],
    "resolution": 32, "device": "cpu",
    "diffusion": {"num_train_timesteps": 50, "unet": {"block_out_channels": [8, 16]},
                  "farm": {"widths": [8, 8, 16]},
                  "train": {"steps": 6, "finetune_steps": 2, "batch_size": 2, "checkpoint_every": 2, "lr": 0.001}},
    "aias": {"steps": 5},
}


def tiny_cfg(**over):
    cfg = json.loads(json.dumps(TINY))
    for k, v in over.items():
        cfg[k] = v
    return load_config(cfg)


class Killed(RuntimeError):
    pass


def _fit(cfg, prepared, out, kill_at=None):
    method = build_method("base", cfg)
    if kill_at is not None:
        real = method.loss
        calls = {"n": 0}

        def loss(model, batch, g):
            calls["n"] += 1
            if calls["n"] > kill_at:
                raise Killed
            return real(model, batch, g)

        method.loss = loss
    method.fit(prepared, out)


def test_resume_after_kill_gives_the_uninterrupted_weights(synthetic_prepared, tmp_path):
    cfg = tiny_cfg()
    prepared = PreparedCategory.load(manifest_path(synthetic_prepared, "synthetic", "fabric"))
    _fit(cfg, prepared, tmp_path / "full")
    with pytest.raises(Killed):
        _fit(cfg, prepared, tmp_path / "resumed", kill_at=5)  # dies during step 6; checkpoint at 4
    assert not (tmp_path / "resumed" / "model.safetensors").exists()
    assert json.loads((tmp_path / "resumed" / "checkpoints" / "last.json").read_text())["step"] == 4
    _fit(cfg, prepared, tmp_path / "resumed")
    a = load_file(str(tmp_path / "full" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "model.safetensors"))
    assert a.keys() == b.keys() and any(k.startswith("backbone.unet.") for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows = list(csv.DictReader((tmp_path / "resumed" / "train_log.csv").open()))
    assert [int(r["step"]) for r in rows] == list(range(1, 7))
    assert {"loss", "loss_eps_in", "loss_eps_out"} <= set(rows[0])   # inside / outside the mask
    full_rows = list(csv.DictReader((tmp_path / "full" / "train_log.csv").open()))
    assert [r["loss"] for r in rows] == [r["loss"] for r in full_rows]
    assert not (tmp_path / "full" / "checkpoints").exists()


def test_same_seed_same_weights_other_seed_differs(synthetic_prepared, tmp_path):
    prepared = PreparedCategory.load(manifest_path(synthetic_prepared, "synthetic", "brushed_metal"))
    cfg = tiny_cfg()
    cfg["diffusion"]["train"]["steps"] = 3
    _fit(cfg, prepared, tmp_path / "a")
    _fit(cfg, prepared, tmp_path / "b")
    cfg2 = dict(cfg, seed=1)
    _fit(cfg2, prepared, tmp_path / "c")
    a, b, c = (load_file(str(tmp_path / d / "model.safetensors")) for d in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)
    spec = json.loads((tmp_path / "a" / "config.json").read_text())
    assert spec["class_names"][0] == "good" and spec["backbone"]["channels"] == 1
    assert spec["train"]["steps"] == 3 and spec["schedule"]["num_train_timesteps"] == 50
    model = DiffusionModel.load(tmp_path / "a")
    assert model.farm is None and model.class_names == spec["class_names"]


def test_fast_train_cli(synthetic_prepared, tmp_path, capsys):
    cfg = json.dumps(TINY)
    out = tmp_path / "gen"
    rc = cli_main(["train", "--config", cfg, "--dataset", "synthetic", "--category", "washer",
                   "--generator", "base", "--prepared", str(synthetic_prepared), "--out", str(out),
                   "--steps", "2"])
    assert rc == 0
    spec = json.loads((out / "config.json").read_text())
    assert spec["method"] == "base" and spec["farm_widths"] is None and spec["train"]["steps"] == 2
    state = load_file(str(out / "model.safetensors"))
    assert not any(k.startswith("farm.") for k in state)
    rc = cli_main(["train", "--config", cfg, "--dataset", "synthetic", "--category", "washer",
                   "--generator", "fast-ddim50", "--prepared", str(synthetic_prepared), "--out", str(tmp_path / "x")])
    assert rc == 2 and "not a trainable generator" in capsys.readouterr().err
    rc = cli_main(["train", "--config", cfg, "--dataset", "synthetic", "--category", "washer",
                   "--generator", "fast", "--prepared", str(synthetic_prepared), "--out", str(tmp_path / "y")])
    assert rc == 2 and "--base-dir" in capsys.readouterr().err and not (tmp_path / "y").exists()
    rc = cli_main(["train", "--config", cfg, "--dataset", "synthetic", "--category", "washer",
                   "--generator", "fast", "--prepared", str(synthetic_prepared), "--base-dir", str(out),
                   "--out", str(tmp_path / "f"), "--steps", "2"])
    assert rc == 0
    spec = json.loads((tmp_path / "f" / "config.json").read_text())
    assert spec["started_from"]["base_dir"] == str(out) and spec["started_from"]["frozen_backbone"]


def test_a_checkpoint_of_another_configuration_is_not_resumed(synthetic_prepared, tmp_path):
    prepared = PreparedCategory.load(manifest_path(synthetic_prepared, "synthetic", "fabric"))
    cfg = tiny_cfg()
    cfg["diffusion"]["train"]["steps"] = 4
    with pytest.raises(Killed):
        _fit(cfg, prepared, tmp_path / "run", kill_at=3)  # checkpoint at step 2 with lr 1e-3
    other = json.loads(json.dumps(cfg))
    other["diffusion"]["train"]["lr"] = 0.01
    _fit(other, prepared, tmp_path / "run")
    _fit(other, prepared, tmp_path / "fresh")
    a = load_file(str(tmp_path / "run" / "model.safetensors"))
    b = load_file(str(tmp_path / "fresh" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_sigkill_and_resume_with_the_cli(synthetic_prepared, tmp_path):
    """A real `fast train` process killed (SIGKILL) after a checkpoint resumes to the same weights."""
    import os
    import signal
    import subprocess
    import sys
    import time

    cfg = json.loads(json.dumps(TINY))
    cfg["diffusion"]["train"].update(steps=60, checkpoint_every=5)
    args = ["train", "--config", json.dumps(cfg), "--dataset", "synthetic", "--category", "fabric",
            "--generator", "base", "--prepared", str(synthetic_prepared)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "fast", *args, "--out", str(tmp_path / "killed")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = tmp_path / "killed" / "checkpoints" / "last.json"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if marker.is_file() and json.loads(marker.read_text())["step"] >= 10:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "training finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = json.loads(marker.read_text())["step"]
    assert 10 <= killed_at < 60 and not (tmp_path / "killed" / "model.safetensors").exists()
    # CPU float reductions depend on the thread count: resume with the killed process's one thread.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert cli_main([*args, "--out", str(tmp_path / "killed")]) == 0
        assert cli_main([*args, "--out", str(tmp_path / "straight")]) == 0
    finally:
        torch.set_num_threads(threads)
    a = load_file(str(tmp_path / "killed" / "model.safetensors"))
    b = load_file(str(tmp_path / "straight" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows = list(csv.DictReader((tmp_path / "killed" / "train_log.csv").open()))
    assert [int(r["step"]) for r in rows] == list(range(1, 61))
