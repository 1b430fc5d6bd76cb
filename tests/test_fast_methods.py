"""`fast` (+ ablations) and `anomalydiffusion` as SynthesisMethods: fit, load, synthesize."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fast.config import load_config
from fast.data.manifest import PreparedCategory, manifest_path
from fast.methods import REGISTRY, SWEEP, SWEEP_SAMPLERS, SynthesisRequest, build_method

CFG = {
    "experiment": "t", "datasets": {"synthetic": {"categories": ["fabric"]}}, "methods": ["fast"],
    "resolution": 32, "device": "cpu",
    "diffusion": {"num_train_timesteps": 60, "unet": {"block_out_channels": [8, 16]},
                  "farm": {"widths": [8, 8, 16]},
                  "train": {"steps": 3, "finetune_steps": 3, "batch_size": 2, "checkpoint_every": 10}},
    "aias": {"steps": 5, "t_fine": 2},
}
# the ablations, and of the frontier sweep one entry per sampler (every entry's NFE plan:
# tests/test_samplers_frontier.py)
FAST_NAMES = ([n for n in REGISTRY if (n == "fast" or n.startswith("fast-")) and n not in SWEEP]
              + [f"fast-{s}-nfe6" for s in SWEEP_SAMPLERS])
EXPECTED_NFE = {"fast": 7, "fast-aias50": 52, "fast-nofarm": 7, "fast-fusionwindow": 7, "fast-ddpm1000": 60, "fast-ddim50": 50,
                "fast-plms50": 51, "fast-dpmpp20": 20, "anomalydiffusion": 50,
                **{name: nfe for name, (_, nfe) in SWEEP.items()}}


@pytest.fixture(scope="module")
def trained(synthetic_prepared, tmp_path_factory):
    cfg = load_config(json.loads(json.dumps(CFG)))
    prepared = PreparedCategory.load(manifest_path(synthetic_prepared, "synthetic", "fabric"))
    out = tmp_path_factory.mktemp("gens")
    build_method("base", cfg).fit(prepared, out / "base")   # anomalydiffusion samples the base model
    build_method("fast", cfg).fit(prepared, out / "fast", out / "base")
    return cfg, prepared, out


def _requests(prepared, n=3):
    normals = prepared.rows("normal_train")
    anomalies = prepared.rows("gen_train")
    reqs = []
    for i in range(n):
        bg_row, m_row = normals.iloc[i], anomalies.iloc[i % len(anomalies)]
        reqs.append(SynthesisRequest(prepared.load_image(bg_row), prepared.load_mask(m_row),
                                     m_row["anomaly_type"], bg_row["image"], m_row["mask"]))
    return reqs


@pytest.mark.parametrize("name", FAST_NAMES + ["anomalydiffusion"])
def test_synthesize_contract(trained, name):
    cfg, prepared, out = trained
    method = build_method(name, cfg)
    method.load(out / method.generator)
    reqs = _requests(prepared)
    first = list(method.synthesize(reqs, seed=5))
    assert len(first) == len(reqs)
    for (img, mask, meta), r in zip(first, reqs):
        assert img.dtype == np.uint8 and img.shape == r.background.shape
        assert np.array_equal(mask, r.mask) and mask.dtype == np.uint8
        assert np.array_equal(img[mask == 0], r.background[mask == 0])
        assert not np.array_equal(img[mask == 1], r.background[mask == 1])
        assert meta["nfe"] == EXPECTED_NFE[name]
    if name in ("fast", "anomalydiffusion"):
        again = list(method.synthesize(reqs, seed=5))
        other = list(method.synthesize(reqs, seed=6))
        assert all(np.array_equal(a[0], b[0]) for a, b in zip(first, again))
        assert not all(np.array_equal(a[0], b[0]) for a, b in zip(first, other))


def test_small_batches_keep_request_order_and_determinism(trained):
    cfg, prepared, out = trained
    reqs = _requests(prepared, n=3)
    m = build_method("fast", dict(cfg, method_options={"fast": {"batch_size": 2}}))
    m.load(out / "fast")
    got = list(m.synthesize(reqs, seed=0))
    assert len(got) == 3 and all(np.array_equal(g[1], r.mask) for g, r in zip(got, reqs))
    again = list(m.synthesize(reqs, seed=0))
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(got, again))


def test_unknown_anomaly_type_and_missing_generator_are_clear_errors(trained, tmp_path):
    from fast.errors import FastError

    cfg, prepared, out = trained
    m = build_method("fast", cfg)
    with pytest.raises(FastError, match="generator-dir"):
        m.load(None)
    with pytest.raises(FastError, match="not a trained generator"):
        m.load(tmp_path)
    m.load(out / "fast")
    r = _requests(prepared, 1)[0]
    r.anomaly_type = "nonexistent"
    with pytest.raises(FastError, match="unknown to this generator"):
        list(m.synthesize([r], 0))


def test_adaptor_switch_trains_saves_and_loads(synthetic_prepared, tmp_path):
    cfg = json.loads(json.dumps(CFG))
    cfg["diffusion"]["farm"]["adaptor"] = True
    cfg["diffusion"]["train"]["steps"] = 2
    cfg = load_config(cfg)
    prepared = PreparedCategory.load(manifest_path(synthetic_prepared, "synthetic", "washer"))
    build_method("base", cfg).fit(prepared, tmp_path / "base")
    build_method("fast", cfg).fit(prepared, tmp_path / "g", tmp_path / "base")
    from safetensors.torch import load_file

    state = load_file(str(tmp_path / "g" / "model.safetensors"))
    assert any(k.startswith("adaptor.") for k in state)
    assert state["adaptor.net.2.weight"].abs().sum() > 0  # trained away from its zero init
    m = build_method("fast", cfg)
    m.load(tmp_path / "g")
    assert m.model.adaptor is not None
    (img, mask, meta), = m.synthesize(_requests(prepared, 1), seed=0)
    assert meta["nfe"] == 7 and img.dtype == np.uint8
    # the base model (what anomalydiffusion samples) has no FARM, so the adaptor switch does not apply
    assert not any(k.startswith("adaptor.") for k in load_file(str(tmp_path / "base" / "model.safetensors")))
