"""`fast evaluate`: a trained segmenter on ``seg_test`` + ``normal_test`` only.

Writes OUT/metrics.json (every metric of fast.metrics plus the identifying keys; NaN is written as
null) and OUT/per_image.csv (the raw per-image numbers the tables can be recomputed from).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fast.config import load_config, resolve_device
from fast.data.manifest import PreparedCategory, manifest_path
from fast.errors import FastError
from fast.io import atomic_path, write_json
from fast.metrics import per_image_stats, segmentation_metrics
from fast.segmentation.data import evaluation_set
from fast.segmentation.train import load_segmenter

log = logging.getLogger(__name__)
ID_KEYS = ("dataset", "category", "method", "segmenter", "seed")


@torch.no_grad()
def predict(model: torch.nn.Module, images: np.ndarray, device: torch.device, batch_size: int = 16) -> np.ndarray:
    """Anomaly probability maps (N, H, W) of whole images (N, C, H, W) in [0, 1].

    Always whole images, also for segmenters trained on windows (segmentation.patch): the models
    are fully convolutional, and build_segmenter's PadToMultiple reflect-pads any H, W to smp's
    multiple of 32 and crops the logits back, so the maps have the images' own size."""
    out = []
    for i in range(0, len(images), batch_size):
        x = torch.from_numpy(images[i:i + batch_size]).to(device)
        out.append(torch.sigmoid(model(x))[:, 0].float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0,) + images.shape[2:], np.float32)


def run_evaluate(args) -> int:
    cfg = load_config(args.config)
    device = resolve_device(cfg["device"])
    model, train_config = load_segmenter(args.model, device)
    if (train_config["dataset"], train_config["category"]) != (args.dataset, args.category):
        raise FastError(f"{args.model}: trained on {train_config['dataset']}/{train_config['category']}, "
                        f"asked to evaluate on {args.dataset}/{args.category}")
    cat = PreparedCategory.load(manifest_path(args.prepared, args.dataset, args.category))
    # Evaluate at the training resolution (the prepared images already are at the experiment's).
    pool, rows = evaluation_set(cat, train_config["resolution"], train_config["in_channels"])
    probs = predict(model, pool.images, device)
    masks = pool.masks.astype(np.uint8)
    metrics = segmentation_metrics(probs, masks)
    ids = {k: train_config[k] for k in ID_KEYS}
    record = {**ids, **{k: (None if math.isnan(v) else v) for k, v in metrics.items()},
              "n_images": len(rows), "n_anomalous_images": int(masks.any(axis=(1, 2)).sum()),
              "resolution": train_config["resolution"], "threshold": 0.5}
    per_image = pd.DataFrame({"image": rows["image"], "split": rows["split"],
                              "anomaly_type": rows["anomaly_type"], **per_image_stats(probs, masks)})
    out = Path(args.out)
    with atomic_path(out / "per_image.csv") as tmp:
        per_image.to_csv(tmp, index=False)
    write_json(out / "metrics.json", record)
    log.info("%s: mIoU %.4f mAcc %.4f pixel_AUROC %s", out, metrics["mIoU"], metrics["mAcc"],
             metrics["pixel_AUROC"])
    return 0
