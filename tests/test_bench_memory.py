"""`fast bench memory`: the tensor-memory trace agrees with a real run, counts what a step holds
(weights, activations, AdamW's state, the costly branch), frees what a step drops, and the command
traces every job kind of a config."""

from __future__ import annotations

import json

import torch

from fast.cli import main as cli_main
from fast.commands.bench_memory import BLOCK, TensorMemory, traced_peak
from fast.config import load_config
from fast.precision import Precision

TINY = {"experiment": "m", "datasets": {"synthetic": {"categories": ["fabric"]}}, "methods": ["fast"],
        "resolution": 32, "device": "cpu",
        "diffusion": {"num_train_timesteps": 100, "unet": {"block_out_channels": [8, 16]},
                      "farm": {"widths": [8, 8, 16]}, "train": {"batch_size": 2}},
        "aias": {"steps": 10, "t_fine": 2},
        "segmentation": {"segmenters": ["unet"], "batch_size": 2}}
MB = 2 ** 20


def test_counts_live_storages_in_allocator_blocks_and_frees_them():
    def work():
        for _ in range(5):                      # five 4 MiB tensors, one alive at a time
            x = torch.ones(MB)
            del x
        y = torch.ones(3)                       # 12 bytes: one 512-byte block
        return y

    peak, resident = traced_peak(work, [torch.zeros(MB // 4)])   # 1 MiB already there
    assert resident == MB
    assert peak == MB + 4 * MB


def test_views_and_in_place_ops_add_nothing():
    def work():
        x = torch.zeros(MB // 4)
        v = x.view(2, -1)[0]
        x.add_(1)
        v.mul_(2)

    peak, _ = traced_peak(work)
    assert peak == MB


def test_worst_case_takes_the_costly_branch_and_selects_every_row():
    def work():
        sel = torch.zeros(8, dtype=torch.bool)        # selects nothing when run for real
        if sel.any():
            big = torch.ones(8, MB // 4)[sel] * 2     # 8 MiB, 16 with the product
            del big

    fake_peak, _ = traced_peak(work, fake=True)
    real_peak, _ = traced_peak(work, fake=False)
    assert real_peak < BLOCK * 4
    assert fake_peak >= 16 * MB


def _tiny(tmp_path):
    from fast.commands.bench import _bench_category
    import argparse

    cfg = load_config(json.loads(json.dumps(TINY)))
    args = argparse.Namespace(prepared=None, dataset=None, category=None)
    return cfg, _bench_category(args, cfg, tmp_path)


def test_fake_trace_equals_a_real_run_of_the_training_and_sampling_steps(tmp_path):
    from fast.commands.bench_memory import generator_training, sampling, segmenter_training
    from fast.catalog import BASE
    from fast.methods import build_method

    cfg, prepared = _tiny(tmp_path)
    fp32 = Precision("fp32", "cpu")
    base = build_method(BASE, cfg).training_setup(prepared)
    fast = build_method("fast", cfg)
    run = fast.training_setup(prepared, base_model=base.model)
    # fake tensors run a few ops as decompositions (small index tensors a real kernel does not
    # allocate, or fewer intermediates): the trace agrees with a real run within 1 %
    fake = {b: generator_training(fast, run, b, fp32, fake=True) for b in (2, 4)}
    for batch in (2, 4):
        real = generator_training(fast, run, batch, fp32, fake=False)
        assert fake[batch][1] == real[1]
        assert abs(fake[batch][0] - real[0]) <= 0.01 * real[0]
    assert fake[4][0] > fake[2][0]
    # AdamW's two moments of every trainable parameter are part of the peak
    trainable = sum(p.numel() * 4 for p in run.params)
    assert fake[2][0] >= fake[2][1] + 2 * trainable
    fake, real = sampling(fast, run.model, 3, fp32, fake=True), sampling(fast, run.model, 3, fp32, fake=False)
    assert abs(fake[0] - real[0]) <= 0.01 * real[0]
    assert sampling(fast, run.model, 6, fp32)[0] > fake[0]
    seg = (cfg["segmentation"], 3, 32, 2, fp32)
    fake, real = segmenter_training("unet", *seg, fake=True), segmenter_training("unet", *seg, fake=False)
    assert abs(fake[0] - real[0]) <= 0.01 * real[0]


def test_bench_memory_traces_every_job_kind(tmp_path, capsys):
    out = tmp_path / "memory.json"
    cfg = {**TINY, "method_options": {m: {"steps": 5} for m in ("anomalydiffusion", "stage", "sard")}}
    rc = cli_main(["bench", "memory", "--config", json.dumps(cfg), "--precision", "fp32,bf16",
                   "--sample-batch", "3", "--json", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    got = [(r["kind"], r["name"], r["precision"], r["batch"]) for r in res["runs"]]
    samplers = {"base": "anomalydiffusion", "fast": "fast", "stage": "stage", "sard": "sard"}
    want = []
    for g in ("base", "fast", "stage", "sard"):
        for p in ("fp32", "bf16"):
            want += [("generator training", g, p, 2), ("sampling", samplers[g], p, 3)]
    want += [("segmenter training", "unet", p, 2) for p in ("fp32", "bf16")]
    assert got == want
    for r in res["runs"]:
        assert r["peak_bytes"] > r["resident_bytes"] > 0
        assert r["fits_24gb"] is True
    by = {(r["kind"], r["name"], r["precision"]): r["peak_bytes"] for r in res["runs"]}
    assert by[("generator training", "base", "bf16")] < by[("generator training", "base", "fp32")]
    assert res["host_peak_rss_bytes"] > 100 * MB
    assert "sampling" in capsys.readouterr().out
    # a wrong name is one line, exit 2
    assert cli_main(["bench", "memory", "--config", json.dumps(TINY), "--generators", "nope"]) == 2
    assert "--generators 'nope'" in capsys.readouterr().err
    assert cli_main(["bench", "memory", "--config", json.dumps(TINY), "--sample-batch", "0"]) == 2
    assert "--sample-batch: every batch size must be >= 1" in capsys.readouterr().err


def test_a_trace_leaves_no_fake_tensor_in_a_cache():
    from torch._subclasses.fake_tensor import FakeTensor

    from fast.diffusion.masks import resize_mask

    mask = torch.zeros(2, 1, 24, 24)
    mask[:, :, 8:16, 8:16] = 1                          # output pixels 2 and 3 of each side
    traced_peak(lambda: resize_mask(mask, (6, 6)))      # caches the overlap matrices of 24 -> 6
    out = resize_mask(mask, (6, 6))
    assert not isinstance(out, FakeTensor)
    assert out.sum().item() == 2 * 4
