"""Config key `precision` (fast.precision): what each value resolves to, the default (auto: fp32 on a
CPU) bit-identical to the code without a precision, and bf16 (CPU autocast here) for generator
training, sampling, segmenter training and evaluation, close to fp32 within measured tolerances.
scripts/gpu_check.sh runs this file with `device: auto` on a GPU: there auto is bf16, and two runs
of one computation are compared with a tolerance (CUDA kernels need not be bit-reproducible)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from fast.config import load_config, resolve_device
from fast.data.manifest import PreparedCategory, manifest_path
from fast.diffusion.train import train_loop
from fast.errors import FastError
from fast.methods import build_method
from fast.precision import FP32, Precision, resolve
from fast.segmentation.data import evaluation_set, training_pools
from fast.segmentation.evaluate import predict
from fast.segmentation.train import train_segmenter
from fast.commands.synthesize import make_requests

CFG = {
    "experiment": "p", "datasets": {"synthetic": {"categories": ["fabric"]}}, "methods": ["fast"],
    "resolution": 32, "device": "cpu",
    "diffusion": {"num_train_timesteps": 40, "unet": {"block_out_channels": [8, 16, 16]},
                  "farm": {"widths": [8, 8, 16]},
                  "train": {"steps": 3, "finetune_steps": 2, "batch_size": 2, "checkpoint_every": 10}},
    "aias": {"steps": 4, "t_fine": 2},
    "method_options": {"stage": {"steps": 5}, "sard": {"steps": 5}, "anomalydiffusion": {"steps": 5},
                       "fast-ddim50": {"steps": 6}},
    "segmentation": {"segmenters": ["unet"], "steps": 3, "batch_size": 2},
}


DEVICE = resolve_device(CFG["device"])
AUTO = resolve("auto", DEVICE)            # what a config without the key runs in: fp32 on a CPU


def _same_tensors(a: dict, b: dict) -> bool:
    """Equal state dicts: bit for bit on a CPU, to float tolerance on CUDA."""
    if DEVICE.type == "cpu":
        return all(torch.equal(a[k], b[k]) for k in a)
    return all(torch.allclose(a[k].float(), b[k].float(), rtol=1e-3, atol=1e-5) for k in a)


def _same_images(a: np.ndarray, b: np.ndarray) -> bool:
    return np.array_equal(a, b) if DEVICE.type == "cpu" else np.abs(a - b).max() <= 1


def _cfg(**top):
    cfg = copy.deepcopy(CFG)
    cfg.update(top)
    return load_config(cfg)


def test_resolution_rules():
    assert [resolve(p, "cpu") for p in ("auto", "fp32", "tf32", "bf16", None)] == ["fp32", "fp32", "fp32", "bf16", "fp32"]
    cuda = torch.device("cuda")
    assert [resolve(p, cuda) for p in ("auto", "fp32", "tf32", "bf16")] == ["bf16", "fp32", "tf32", "bf16"]
    with pytest.raises(FastError, match="fp16"):
        resolve("fp16", "cpu")
    assert load_config(copy.deepcopy(CFG))["precision"] == "auto"
    with pytest.raises(FastError, match="precision"):
        load_config({**copy.deepcopy(CFG), "precision": "fp16"})


def test_cuda_tf32_flags_set_inside_and_restored():
    """The flags are process globals (settable without a GPU): tf32 and bf16 switch TF32 on,
    fp32 off, and each context restores what was there."""
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    try:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = False, True
        with Precision("tf32", "cuda").context():
            assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (True, True)
            with Precision("fp32", "cuda").context():
                assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (False, False)
            assert torch.backends.cuda.matmul.allow_tf32
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (False, True)
        with Precision("fp32", "cpu").context():  # a CPU run leaves the CUDA flags alone
            assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (False, True)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def test_bf16_autocasts_forward_passes_only():
    net = torch.nn.Linear(4, 4)
    with Precision("bf16", "cpu").context():
        y = net(torch.ones(2, 4))
    assert y.dtype == torch.bfloat16 and net.weight.dtype == torch.float32
    with FP32.context():
        assert net(torch.ones(2, 4)).dtype == torch.float32
    assert Precision.cast(y).dtype == torch.float32


@pytest.fixture(scope="module")
def prepared(synthetic_prepared):
    return PreparedCategory.load(manifest_path(synthetic_prepared, "synthetic", "fabric"))


@pytest.fixture(scope="module")
def generators(prepared, tmp_path_factory):
    """base, fast, stage, sard trained with no precision key, explicitly fp32, and bf16."""
    out = tmp_path_factory.mktemp("precision_gens")
    for tag, cfg in (("unset", load_config(copy.deepcopy(CFG))), ("fp32", _cfg(precision="fp32")),
                     ("bf16", _cfg(precision="bf16"))):
        build_method("base", cfg).fit(prepared, out / tag / "base")
        for name in ("fast", "stage", "sard"):
            build_method(name, cfg).fit(prepared, out / tag / name, out / tag / "base")
    return out


@pytest.mark.parametrize("name", ["base", "fast", "stage", "sard"])
def test_generator_training_fp32_unchanged_bf16_runs(generators, name):
    unset, fp32, bf16 = (load_file(str(generators / t / name / "model.safetensors")) for t in ("unset", "fp32", "bf16"))
    assert unset.keys() == fp32.keys() == bf16.keys()
    assert _same_tensors(unset, {"fp32": fp32, "bf16": bf16}[AUTO])   # a config without the key: auto
    # fp32 master weights (and the integer BatchNorm counters as they were)
    assert all(v.dtype == fp32[k].dtype and (not v.is_floating_point() or torch.isfinite(v).all())
               for k, v in bf16.items())
    assert any(v.dtype == torch.float32 for v in bf16.values())
    assert any(not torch.equal(fp32[k], bf16[k]) for k in fp32)        # autocast did act
    record = json.loads((generators / "bf16" / name / "config.json").read_text())
    assert record["train"]["precision"] == "bf16"
    a = np.loadtxt(generators / "fp32" / name / "train_log.csv", delimiter=",", skiprows=1, usecols=1)
    b = np.loadtxt(generators / "bf16" / name / "train_log.csv", delimiter=",", skiprows=1, usecols=1)
    # measured: the losses of the first steps differ by < 2 % (the first step by ~0.1 %)
    assert b[0] == pytest.approx(a[0], rel=0.02)


def test_training_loss_is_float32_under_bf16(prepared, tmp_path):
    """The loss train_loop takes the gradient of is float32 although the networks ran in bf16."""
    cfg = _cfg(precision="bf16")
    method = build_method("base", cfg)
    from fast.diffusion.train import TrainData

    data = TrainData.from_prepared(prepared, 32)
    model = method.build_model(data.class_names, prepared.channels)
    seen = []

    def loss_fn(m, batch, g):
        out = method.loss(m, batch, g)
        t = torch.zeros(2, dtype=torch.long, device=batch["x"].device)
        seen.append((out["loss"].dtype, m.backbone.eps(batch["x"], t, batch["cond"], batch["mask"], batch["x"]).dtype))
        return out

    train_loop(model, method.trainable_parameters(model), loss_fn, data.sample, tmp_path, steps=2, batch_size=2,
               lr=1e-3, checkpoint_every=10, seed=0, spec=model.spec(), precision=method.precision,
               progress=False)
    assert seen == [(torch.float32, torch.bfloat16)] * 2


# sampling: bf16 against fp32 on the same trained generator, the images (uint8) compared inside the
# masks (outside them both are the background, bit for bit). Measured on these tiny models (CPU
# autocast, 21 requests, 40-step schedule): largest difference 3 grey levels, mean 0.2-0.6 levels.
MAX_LEVELS, MEAN_LEVELS = 8, 2.0
# segmenter maps: bf16 against fp32 inference of one model (a unet after 3 steps; measured 0.041)
PROB_TOL = 0.12


@pytest.mark.parametrize("name", ["fast", "fast-ddim50", "stage", "sard", "anomalydiffusion"])
def test_sampling_bf16_close_to_fp32_and_fp32_unchanged(generators, prepared, name):
    reqs = make_requests(prepared, load_config(copy.deepcopy(CFG))["synthesis"]["mask_pool"], 7, 123)
    images = {}
    for tag in ("unset", "fp32", "bf16"):
        cfg = load_config(copy.deepcopy(CFG)) if tag == "unset" else _cfg(precision=tag)
        method = build_method(name, cfg)
        method.load(generators / "unset" / method.generator)
        images[tag] = np.stack([img for img, _, _ in method.synthesize(reqs, seed=5)]).astype(int)
    assert _same_images(images["unset"], images[AUTO])
    masks = np.stack([r.mask > 0 for r in reqs])
    diff = np.abs(images["bf16"] - images["fp32"])
    assert diff[~masks].max() == 0
    assert 0 < diff.max() <= MAX_LEVELS
    assert diff[masks].mean() <= MEAN_LEVELS


def test_segmenter_training_and_evaluation_bf16(prepared):
    cfg = load_config(copy.deepcopy(CFG))
    anomalous, normal = training_pools(prepared, "real-fewshot", None, 32, prepared.channels)
    pool, _ = evaluation_set(prepared, 32, prepared.channels)
    fp32, bf16 = Precision("fp32", DEVICE.type), Precision("bf16", DEVICE.type)
    runs = {}
    for tag, prec in (("unset", None), ("fp32", fp32), ("bf16", bf16)):
        kw = {} if prec is None else {"precision": prec}
        model, record = train_segmenter(anomalous, normal, "unet", 0, cfg["segmentation"], DEVICE, **kw)
        runs[tag] = (model, model.state_dict(), predict(model, pool.images, DEVICE, **kw), record)
    # train_segmenter and predict without a precision: the code as it was, fp32 on a CPU (on CUDA
    # torch's defaults, cuDNN in TF32; the stages always pass the config's precision)
    _, sd_unset, p_unset, _ = runs["unset"]
    model, sd_fp32, p_fp32, rec = runs["fp32"]
    if DEVICE.type == "cpu":
        assert _same_tensors(sd_unset, sd_fp32) and np.array_equal(p_unset, p_fp32)
    assert rec["precision"] == "fp32" and runs["bf16"][3]["precision"] == "bf16"
    _, sd_bf16, p_bf16, _ = runs["bf16"]
    assert all(v.dtype == sd_fp32[k].dtype for k, v in sd_bf16.items())
    assert any(not torch.equal(sd_fp32[k], v) for k, v in sd_bf16.items())   # autocast did act
    assert p_bf16.dtype == np.float32 and np.isfinite(p_bf16).all()
    # evaluation alone: the fp32-trained model's maps in bf16 (measured: at most 0.041 apart)
    p_eval_bf16 = predict(model, pool.images, DEVICE, precision=bf16)
    assert 0 < np.abs(p_eval_bf16 - p_fp32).max() <= PROB_TOL
