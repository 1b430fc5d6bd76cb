"""synthesis.batch_size: how many requests one network call computes. The images must not depend on
it: each row's noise is its noise group's (fast.samplers.noise.GroupedNoise, checked bit for bit),
whatever batch computes it. The networks themselves are not bit-stable across batch sizes (torch
picks kernels by batch size): measured on a CPU, the decoded images of batch 1, 4 and 64 differ
from the default's by at most 1.0e-6 of the [-1, 1] range, which moved one of 64,512 uint8 values
by one grey level. So images are compared allowing one grey level on at most 0.1 % of the values."""

from __future__ import annotations

import argparse
import copy
import json

import numpy as np
import pytest
import torch
from generators import fit_generator

from fast.config import load_config
from fast.data.manifest import PreparedCategory, manifest_path
from fast.errors import FastError
from fast.io import read_png
from fast.methods import SynthesisRequest, build_method
from fast.methods.diffusion_family import group_seed, noise_groups
from fast.samplers.noise import GroupedNoise
from fast.commands.synthesize import make_requests, run_synthesize

CFG = {
    "experiment": "b", "datasets": {"synthetic": {"categories": ["fabric"]}}, "methods": ["fast", "sard"],
    "resolution": 32, "device": "cpu",
    "diffusion": {"num_train_timesteps": 40, "unet": {"block_out_channels": [8, 16, 16]},
                  "farm": {"widths": [8, 8, 16]},
                  "train": {"steps": 2, "finetune_steps": 2, "batch_size": 2, "checkpoint_every": 10}},
    "aias": {"steps": 4, "t_fine": 2},
    "synthesis": {"n_per_type": 7},          # 3 types x 7 = 21 requests: two noise groups of 16 and 5
    "method_options": {"sard": {"steps": 5}, "anomalydiffusion": {"steps": 5}},
}


def test_grouped_noise_rows_are_their_groups_rows():
    seeds, sizes = [11, 12, 13], [3, 2, 4]
    alone = {k: torch.randn((n, 2, 5), generator=torch.Generator().manual_seed(s)) for k, (s, n) in
             enumerate(zip(seeds, sizes))}
    rows = [(2, 3), (0, 1), (2, 0), (1, 1)]
    with GroupedNoise(seeds, sizes, rows) as g:
        a = torch.randn((4, 2, 5), generator=g)
        b = torch.randn(4, 2, 5, generator=g, dtype=torch.float32)
    for i, (k, j) in enumerate(rows):
        assert torch.equal(a[i], alone[k][j])
    # the second draw continues each group's own stream
    second = {}
    for k, s in enumerate(seeds):
        gen = torch.Generator().manual_seed(s)
        torch.randn((sizes[k], 2, 5), generator=gen)
        second[k] = torch.randn((sizes[k], 2, 5), generator=gen)
    for i, (k, j) in enumerate(rows):
        assert torch.equal(b[i], second[k][j])
    # one whole group in order draws what its generator draws
    with GroupedNoise(seeds, sizes, [(1, 0), (1, 1)]) as g:
        assert torch.equal(torch.randn((2, 2, 5), generator=g), alone[1])
    with GroupedNoise(seeds, sizes, rows) as g, pytest.raises(FastError, match="batch-independent"):
        torch.rand((4, 2), generator=g)
    with GroupedNoise(seeds, sizes, rows) as g, pytest.raises(FastError, match="batch of 4 rows"):
        torch.randn((3, 2), generator=g)


def test_noise_groups_chunks_and_runs_of_one_shape():
    def req(h):
        return SynthesisRequest(np.zeros((h, 8, 3), np.uint8), np.ones((h, 8), np.uint8), "t", "n", "m")

    reqs = [req(h) for h in (8, 8, 16, 16, 8, 8, 8)]
    assert noise_groups(reqs, 4) == [((0, 0), [0, 1]), ((0, 1), [2, 3]), ((4, 0), [4, 5, 6])]
    assert noise_groups(reqs, 16) == [((0, 0), [0, 1]), ((0, 1), [2, 3]), ((0, 2), [4, 5, 6])]
    assert group_seed(5, (0, 1)) == group_seed(5, (0, 1)) != group_seed(5, (1, 0))


@pytest.fixture(scope="module")
def trained(synthetic_prepared, tmp_path_factory):
    cfg = load_config(copy.deepcopy(CFG))
    prepared = PreparedCategory.load(manifest_path(synthetic_prepared, "synthetic", "fabric"))
    out = tmp_path_factory.mktemp("batching")
    build_method("base", cfg).fit(prepared, out / "base")   # anomalydiffusion samples it
    for name in ("fast", "sard"):
        fit_generator(name, cfg, prepared, out / name, out / "base")
    return prepared, out


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to the networks' float rounding by batch size (module docstring)."""
    d = np.abs(a.astype(int) - b.astype(int))
    return d.max() <= 1 and (d > 0).mean() <= 1e-3


@pytest.mark.parametrize("name", ["fast", "sard", "anomalydiffusion"])
def test_images_do_not_depend_on_the_batch_size(trained, name):
    prepared, out = trained
    reqs = make_requests(prepared, load_config(copy.deepcopy(CFG))["synthesis"]["mask_pool"], 7, 99)
    assert len(reqs) == 21
    images = {}
    for batch in (None, 1, 4, 64):   # 64: one batch of all 21
        cfg = copy.deepcopy(CFG)
        cfg["synthesis"]["batch_size"] = batch
        method = build_method(name, load_config(cfg))
        method.load(out / method.generator)
        images[batch] = np.stack([img for img, _, _ in method.synthesize(reqs, seed=3)])
    assert all(_same(images[b], images[None]) for b in (1, 4, 64))
    # the draw is the noise groups' (method_options.batch_size), not the batch's: other groups, other images
    cfg = copy.deepcopy(CFG)
    cfg["method_options"][name] = {**cfg["method_options"].get(name, {}), "batch_size": 4}
    method = build_method(name, load_config(cfg))
    method.load(out / method.generator)
    regrouped = np.stack([img for img, _, _ in method.synthesize(reqs, seed=3)])
    assert not np.array_equal(regrouped, images[None])


def test_mixed_image_sizes_batch_by_size_and_keep_request_order(trained):
    """Requests of two background sizes, interleaved: a batch holds one size only (full batches of
    pending requests), results come back in request order, and equal the default's."""
    prepared, out = trained
    reqs = make_requests(prepared, load_config(copy.deepcopy(CFG))["synthesis"]["mask_pool"], 3, 7)
    for i in range(1, len(reqs), 2):   # every second background 32 x 48 (the pixel model resizes)
        r = reqs[i]
        reqs[i] = SynthesisRequest(np.concatenate([r.background, r.background[:, :16]], axis=1),
                                   np.concatenate([r.mask, np.zeros_like(r.mask[:, :16])], axis=1),
                                   r.anomaly_type, r.source_normal, r.mask_source)
    results = {}
    for batch in (None, 3):
        cfg = copy.deepcopy(CFG)
        cfg["synthesis"]["batch_size"] = batch
        method = build_method("fast", load_config(cfg))
        method.load(out / "fast")
        results[batch] = list(method.synthesize(reqs, seed=1))
    for r, (a, _, _), (b, _, _) in zip(reqs, results[None], results[3]):
        assert a.shape == b.shape == r.background.shape
        assert _same(a, b)


def test_synthesize_cli_batch_1_and_4_write_the_same_set(trained, synthetic_prepared, tmp_path):
    _, out = trained
    for batch in (1, 4):
        cfg = copy.deepcopy(CFG)
        cfg["synthesis"]["batch_size"] = batch
        args = argparse.Namespace(config=json.dumps(cfg), seed=None, n_per_type=None, replicate=0, method="fast",
                                  prepared=str(synthetic_prepared), dataset="synthetic", category="fabric",
                                  out=str(tmp_path / f"b{batch}"), generator_dir=str(out / "fast"))
        assert run_synthesize(args) == 0
    names = sorted(p.name for p in (tmp_path / "b1" / "images").iterdir())
    assert len(names) == 21 and names == sorted(p.name for p in (tmp_path / "b4" / "images").iterdir())
    for n in names:
        assert _same(read_png(tmp_path / "b1" / "images" / n), read_png(tmp_path / "b4" / "images" / n)), n
        assert np.array_equal(read_png(tmp_path / "b1" / "masks" / n), read_png(tmp_path / "b4" / "masks" / n))
    timing = json.loads((tmp_path / "b4" / "timing.json").read_text())
    assert timing["batch_size"] == 4 and timing["precision"] == "fp32"
