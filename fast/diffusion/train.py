"""Generic, resumable training loop and the training data sampler (`fast train`: fast.commands.train).

``train_loop(model, params, loss_fn, sample_batch, out_dir, steps=..., ...)`` runs AdamW for a
fixed number of steps. Every step's randomness is derived from (seed, step) only, so a run killed
and resumed from its last checkpoint ends with exactly the weights of an uninterrupted run (CPU).
Outputs in ``out_dir``: ``train_log.csv`` (step + every scalar ``loss_fn`` returns),
``checkpoints/`` (``ckpt-<step>.safetensors`` + ``ckpt-<step>.optim.pt`` + ``last.json``, each
written atomically, ``last.json`` last) and finally ``model.safetensors`` + ``config.json``.

Extending (STAGE, SARD): build a :class:`~fast.diffusion.model.DiffusionModel` (extra modules in
``extra_modules``), write ``loss_fn(model, batch, generator) -> {"loss": tensor, ...}`` and call
``train_loop`` with a :class:`TrainData` sampler; register the generator's method in the registry
with a ``fit`` that does this. ``fast.commands.train.run_train`` dispatches ``fast train --generator G``
to ``build_method(G, cfg).fit(train_set, out_dir)``.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn

from fast.data.manifest import GOOD, PreparedCategory
from fast.errors import FastError
from fast.io import atomic_path, write_json
from fast.precision import FP32, Precision

log = logging.getLogger(__name__)


def step_rngs(seed: int, step: int) -> tuple[np.random.Generator, torch.Generator]:
    """The randomness of one training step, a function of (seed, step) only (resume-exact)."""
    rng = np.random.default_rng([int(seed), int(step)])
    g = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
    return rng, g


class TrainData:
    """Training images of one category, as tensors or windows.

    Only ``gen_train`` anomalies (with masks and their anomaly type) and ``normal_train`` normals
    (class ``good``, empty masks) are read. ``sample(rng, batch_size)`` draws a batch with
    probability ``anomalous_fraction`` per item of being anomalous, plus random flips. With a
    ``patch``, images stay at the prepared resolution and every item is a window of ``patch`` px
    (fast.data.windows): anomalous ones centred on a defect component with seeded jitter, so the
    defect is a real share of what the model sees, normal ones at random; without, whole images
    resized to ``resolution``."""

    def __init__(self, images: np.ndarray, masks: np.ndarray, labels: np.ndarray, class_names: list[str],
                 anomalous_fraction: float = 0.5, patch: int | None = None):
        self.images, self.masks, self.labels = images, masks, np.asarray(labels)  # uint8 NHWC, uint8 NHW
        self.class_names = class_names
        self.anomalous_fraction = float(anomalous_fraction)
        self.patch = int(patch) if patch else None
        good = class_names.index(GOOD)
        self.anomalous = np.flatnonzero(self.labels != good)
        self.normal = np.flatnonzero(self.labels == good)
        if len(self.anomalous) == 0 and len(self.normal) == 0:
            raise FastError("no training images (gen_train / normal_train rows) in the manifest")

    @classmethod
    def from_prepared(cls, prepared: PreparedCategory, resolution: int, anomalous_fraction: float = 0.5,
                      patch: int | None = None):
        from fast.data.prepare import resize_image, resize_mask

        class_names = [GOOD, *prepared.anomaly_types]
        rows = prepared.rows("gen_train", "normal_train")
        imgs, masks, labels = [], [], []
        for _, row in rows.iterrows():
            img, m = prepared.load_image(row), prepared.load_mask(row)
            if not patch and img.shape[:2] != (resolution, resolution):
                img, m = resize_image(img, resolution), resize_mask(m, resolution)
            imgs.append(img)
            masks.append(np.asarray(m > 0, np.uint8))
            t = row["anomaly_type"] if row["split"] == "gen_train" else GOOD
            labels.append(class_names.index(t))
        if patch and imgs and min(min(i.shape[:2]) for i in imgs) < int(patch):
            raise FastError(f"diffusion.patch {patch} is larger than the prepared images of "
                            f"{prepared.manifest}; lower it or raise resolution")
        return cls(np.stack(imgs), np.stack(masks), np.array(labels), class_names, anomalous_fraction, patch)

    def _item(self, i: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        img, m = self.images[i], self.masks[i]
        if self.patch is None:
            return img, m
        from fast.data.windows import crop, crop_mask, training_window

        win = training_window(m, self.patch, rng)
        return crop(img, win, self.patch), crop_mask(m, win, self.patch)

    def sample(self, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        pools = [p for p in (self.anomalous, self.normal) if len(p)]
        idx = []
        for _ in range(batch_size):
            pool = pools[0] if len(pools) == 1 else (
                self.anomalous if rng.random() < self.anomalous_fraction else self.normal)
            idx.append(int(pool[rng.integers(len(pool))]))
        items = [self._item(i, rng) for i in idx]
        x = torch.from_numpy(np.stack([im for im, _ in items])).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        m = torch.from_numpy(np.stack([mk for _, mk in items]).astype(np.float32))[:, None]
        flips = rng.random((batch_size, 2)) < 0.5
        for i, (fh, fv) in enumerate(flips):
            dims = [d for d, f in ((2, fh), (1, fv)) if f]
            if dims:
                x[i], m[i] = x[i].flip(dims=dims), m[i].flip(dims=dims)
        return {"x": x, "mask": m, "cond": torch.from_numpy(self.labels[idx].astype(np.int64))}


def _ckpt_dir(out_dir: Path) -> Path:
    return out_dir / "checkpoints"


def _run_key(spec: dict, **train) -> str:
    """Identifies a training run (model spec + hyper-parameters): a checkpoint of another run is
    never resumed."""
    import hashlib

    return hashlib.sha256(json.dumps([spec, train], sort_keys=True, default=str).encode()).hexdigest()[:16]


def _load_checkpoint(out_dir: Path, model: nn.Module, opt: torch.optim.Optimizer, key: str) -> int:
    from safetensors.torch import load_file

    marker = _ckpt_dir(out_dir) / "last.json"
    if not marker.is_file():
        return 0
    info = json.loads(marker.read_text())
    if info.get("run") != key:
        log.warning("%s: ignoring a checkpoint of a different configuration; training from scratch", out_dir)
        return 0
    step = int(info["step"])
    state = load_file(str(_ckpt_dir(out_dir) / f"ckpt-{step}.safetensors"))
    _load_state(model, state)
    opt.load_state_dict(torch.load(_ckpt_dir(out_dir) / f"ckpt-{step}.optim.pt", weights_only=True))
    log.info("resuming %s from step %d", out_dir, step)
    return step


def _saved_state(model: nn.Module) -> dict[str, torch.Tensor]:
    fn = getattr(model, "saved_state_dict", None)
    state = fn() if fn else model.state_dict()
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def _load_state(model: nn.Module, state) -> None:
    fn = getattr(model, "load_saved_state", None)
    if fn:
        fn(state)
    else:
        model.load_state_dict(state)


def _save_checkpoint(out_dir: Path, model: nn.Module, opt, step: int, key: str) -> None:
    from safetensors.torch import save_file

    d = _ckpt_dir(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    written = [d / f"ckpt-{step}.safetensors", d / f"ckpt-{step}.optim.pt"]
    try:
        with atomic_path(written[0]) as tmp:
            save_file(_saved_state(model), str(tmp))
        with atomic_path(written[1]) as tmp:
            torch.save(opt.state_dict(), tmp)
        write_json(d / "last.json", {"step": step, "run": key})
    except BaseException:
        # last.json still names the previous checkpoint: files of this step would be orphans
        for p in written:
            p.unlink(missing_ok=True)
        raise
    for old in d.glob("ckpt-*"):  # keep only the checkpoint last.json points to
        if old.name.split(".")[0] != f"ckpt-{step}":
            old.unlink(missing_ok=True)


def _rewrite_log(path: Path, keep_until: int) -> list[dict]:
    if not path.is_file():
        return []
    with path.open() as f:
        rows = [r for r in csv.DictReader(f) if int(r["step"]) <= keep_until]
    return rows


def make_optimizer(params, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """The generators' optimiser (AdamW)."""
    return torch.optim.AdamW(params, lr=float(lr), weight_decay=float(weight_decay))


def train_step(model: nn.Module, opt: torch.optim.Optimizer, loss_fn, batch: dict, generator: torch.Generator,
               precision: Precision = FP32, check: Callable[[torch.Tensor], None] | None = None) -> dict:
    """One optimiser step of ``train_loop``: the loss in ``precision.context()`` and in float32,
    ``check(loss)`` before the update (train_loop stops a diverged run there), backward, AdamW.
    Returns ``loss_fn``'s dict (`fast bench memory` traces this very step)."""
    with precision.context():
        out = loss_fn(model, batch, generator)
    loss = precision.cast(out["loss"])
    if check is not None:
        check(loss)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return out


def _check_finite(loss: torch.Tensor, step: int) -> None:
    if not torch.isfinite(loss):
        raise FastError(f"training diverged at step {step} (loss {loss.item()}); lower diffusion.train.lr")


def train_loop(model: nn.Module, params: list[nn.Parameter],
               loss_fn: Callable[[nn.Module, dict, torch.Generator], dict[str, torch.Tensor]],
               sample_batch: Callable[[np.random.Generator, int], dict[str, torch.Tensor]],
               out_dir: str | Path, *, steps: int, batch_size: int, lr: float, checkpoint_every: int,
               seed: int, spec: dict, device: torch.device | str = "cpu", weight_decay: float = 0.0,
               progress: bool = True, precision: Precision = FP32,
               on_step: Callable[[int], None] | None = None) -> nn.Module:
    """Train ``params`` of ``model`` for ``steps`` AdamW steps; resumable; writes the final
    ``model.safetensors`` + ``config.json`` (``spec`` plus training info) into ``out_dir``.

    ``loss_fn(model, batch_on_device, generator)`` returns a dict with the total ``"loss"`` and any
    other scalars to log; ``generator`` is a CPU torch.Generator private to that step. It runs
    inside ``precision.context()`` (fast.precision: bf16 autocasts the forward passes; the
    parameters, their gradients and AdamW's state stay float32, the loss is taken in float32 and
    the backward pass runs outside autocast). ``on_step(step)`` is called after every optimiser
    step (`fast bench training` times them)."""
    from safetensors.torch import save_file
    from tqdm import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(device)
    model.to(device)
    params = list(params)
    if not params:
        raise FastError("nothing to train: the model has no trainable parameters")
    opt = make_optimizer(params, lr, weight_decay)
    # a checkpoint of another precision is not resumed (fp32 keeps the key it always had)
    other = {} if precision.name == "fp32" else {"precision": precision.name}
    key = _run_key(spec, steps=steps, batch_size=batch_size, lr=lr, seed=seed, weight_decay=weight_decay, **other)
    start = _load_checkpoint(out_dir, model, opt, key)
    log_path = out_dir / "train_log.csv"
    rows = _rewrite_log(log_path, start)
    model.train()
    t0 = time.time()
    bar = tqdm(range(start, steps), initial=start, total=steps, desc=f"train {out_dir.name}",
               disable=not progress, mininterval=2.0)
    for step in bar:
        rng, g = step_rngs(seed, step)
        batch = {k: v.to(device) for k, v in sample_batch(rng, batch_size).items()}
        out = train_step(model, opt, loss_fn, batch, g, precision,
                         check=lambda loss: _check_finite(loss, step + 1))
        if on_step is not None:
            on_step(step + 1)
        rows.append({"step": step + 1, **{k: float(v.detach()) for k, v in out.items()}})
        bar.set_postfix(loss=f"{float(out['loss'].detach()):.4f}", refresh=False)
        if (step + 1) % checkpoint_every == 0 or step + 1 == steps:
            with atomic_path(log_path) as tmp:
                _write_rows(tmp, rows)
            if step + 1 < steps:
                _save_checkpoint(out_dir, model, opt, step + 1, key)
    model.eval()
    with atomic_path(log_path) as tmp:
        _write_rows(tmp, rows)
    with atomic_path(out_dir / "model.safetensors") as tmp:
        save_file(_saved_state(model), str(tmp))
    full = {**spec, "train": {"steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed,
                              "precision": precision.name,
                              "seconds_this_run": round(time.time() - t0, 3)}}
    write_json(out_dir / "config.json", full)
    import shutil

    shutil.rmtree(_ckpt_dir(out_dir), ignore_errors=True)  # the final model supersedes them
    return model


def _write_rows(path: Path, rows: list[dict]) -> None:
    keys = list(dict.fromkeys(k for r in rows for k in r)) or ["step", "loss"]
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) and k != "step" else v) for k, v in r.items()})


__all__ = ["TrainData", "step_rngs", "make_optimizer", "train_loop", "train_step"]
