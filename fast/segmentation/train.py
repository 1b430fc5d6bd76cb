"""`fast train-segmenter`: one smp segmenter for one (dataset, category, method, seed), fixed budget.

Identical for every method (docs/protocol.md): segmentation.steps iterations of AdamW(lr), batches mixed
50/50 from the method's anomalous pairs and the normal_train images, seeded flips/rot90, loss
focal + dice (binary). The last checkpoint is the model (no selection on test data).
With segmentation.patch set, training batches are windows (anomalous: around a defect; normal:
by segmentation.normal_windows; fast.segmentation.data.window_rule); inference is always on whole images, so the
BatchNorm statistics are then re-estimated on the whole training images (anomalous and normal
pools, no test data) after the last step: statistics gathered on windows do not hold on whole
images (measured: a segmenter that fit its windows predicted anomaly on ~93 % of every test pixel
with window statistics and reached 61 mIoU with recalibrated ones, fabric, sard).
Forward passes run in the config's ``precision`` (fast.precision: bf16 autocasts them; weights,
gradients and AdamW's state stay float32 and the loss is taken on float32 logits).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from fast.errors import FastError
from fast.io import atomic_path, read_weights, write_json
from fast.precision import FP32, Precision
from fast.segmentation.data import MixedBatches, effective_patch, window_rule
from fast.segmentation.models import build_segmenter

log = logging.getLogger(__name__)


def segmentation_loss():
    """Focal + dice on logits, binary mode (smp.losses)."""
    from segmentation_models_pytorch.losses import DiceLoss, FocalLoss

    focal, dice = FocalLoss("binary"), DiceLoss("binary", from_logits=True)
    return lambda logits, target: focal(logits, target) + dice(logits, target)


def segmenter_step(model: torch.nn.Module, optimiser: torch.optim.Optimizer, loss_fn, x: torch.Tensor,
                   y: torch.Tensor, precision: Precision = FP32) -> torch.Tensor:
    """One optimiser step of ``train_segmenter`` (`fast bench memory` traces this very step): the
    forward pass in ``precision.context()``, the loss on float32 logits, backward, AdamW."""
    with precision.context():
        logits = model(x)
    loss = loss_fn(Precision.cast(logits), y)
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
    return loss


def train_segmenter(anomalous, normal, segmenter: str, seed: int, seg_cfg: dict,
                    device: torch.device, log_every: int = 25, precision: Precision = FP32,
                    on_step=None) -> tuple[torch.nn.Module, dict]:
    """Train and return (model, record of the run). ``on_step(step)`` is called after every
    optimiser step (`fast bench training` times them)."""
    channels = normal.images.shape[1]
    # Seeded global RNG inside a fork: covers init and any stochastic layers (e.g. drop path)
    # without leaking state to the caller.
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        model = build_segmenter(segmenter, channels, seg_cfg["encoder_weights"], seed).to(device)
        optimiser = torch.optim.AdamW(model.parameters(), lr=seg_cfg["lr"])
        loss_fn = segmentation_loss()
        batches = MixedBatches(anomalous, normal, seg_cfg["batch_size"], seed, seg_cfg.get("patch"),
                               seg_cfg["normal_windows"])
        model.train()
        losses, start = [], time.perf_counter()
        for step in range(1, seg_cfg["steps"] + 1):
            x, y = batches.next()
            loss = segmenter_step(model, optimiser, loss_fn, x.to(device), y.to(device), precision)
            if on_step is not None:
                on_step(step)
            losses.append(float(loss.detach()))
            if step % log_every == 0 or step == seg_cfg["steps"]:
                log.info("step %d/%d loss %.4f", step, seg_cfg["steps"], np.mean(losses[-log_every:]))
        steps_done = time.perf_counter()
        if effective_patch(seg_cfg.get("patch"), normal.images.shape[-1]):
            recalibrate_batchnorm(model, [anomalous.images, normal.images], device, seg_cfg["batch_size"],
                                  precision=precision)
        wall = time.perf_counter() - start
    record = {"precision": precision.name, "wall_seconds": wall,
              "steps_per_s": seg_cfg["steps"] / wall if wall > 0 else None,
              "recalibration_seconds": start + wall - steps_done,
              "final_loss": float(np.mean(losses[-10:])),
              "loss_curve": [float(np.mean(losses[i:i + log_every])) for i in range(0, len(losses), log_every)]}
    return model, record


@torch.no_grad()
def recalibrate_batchnorm(model: torch.nn.Module, image_sets, device: torch.device, batch_size: int,
                          max_per_set: int = 96, precision: Precision = FP32) -> None:
    """Re-estimate every BatchNorm's running mean/var as the plain average over the given whole
    images (at most ``max_per_set`` of each set, evenly spaced; train-mode forward passes, no
    gradient, no weight change)."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    for m in norms:
        m.reset_running_stats()
        m.momentum = None          # cumulative average over all batches
    model.train()
    # an evenly spaced subset of each set bounds the cost on large categories (762 normals)
    images = np.concatenate([s[np.linspace(0, len(s) - 1, min(len(s), max_per_set)).round().astype(int)]
                             for s in image_sets if len(s)])
    for i in range(0, len(images), batch_size):
        with precision.context():
            model(torch.from_numpy(images[i:i + batch_size]).to(device))
    for m in norms:
        m.momentum = 0.1           # the torch default, as the model is saved
    model.eval()


def window_record(patch: int | None, size: int, normal_windows: str = "covering") -> dict:
    """train_config keys saying what the segmenter saw in training (and that inference is whole)."""
    used = effective_patch(patch, size)
    return {"patch": patch, "train_window": used or size, "normal_windows": normal_windows if used else None,
            "window_sampling": window_rule(normal_windows) if used else "whole images (no windows)",
            "inference": "whole images (reflect-padded to a multiple of 32, output cropped back)"}


def save_segmenter(model: torch.nn.Module, train_config: dict, out: str | Path) -> None:
    """OUT/model.safetensors then OUT/train_config.json, each written atomically."""
    out = Path(out)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(out / "model.safetensors") as tmp:
        save_file(state, str(tmp))
    write_json(out / "train_config.json", train_config)


def load_segmenter(model_dir: str | Path, device: torch.device) -> tuple[torch.nn.Module, dict]:
    model_dir = Path(model_dir)
    cfg_path, weights = model_dir / "train_config.json", model_dir / "model.safetensors"
    if not cfg_path.is_file() or not weights.is_file():
        raise FastError(f"{model_dir}: needs model.safetensors and train_config.json "
                        f"(run `fast train-segmenter --out {model_dir}` first)")
    train_config = json.loads(cfg_path.read_text())
    model = build_segmenter(train_config["segmenter"], train_config["in_channels"], None)
    model.load_state_dict(read_weights(weights, f"`fast train-segmenter ... --out {model_dir}`"))
    return model.to(device).eval(), train_config
