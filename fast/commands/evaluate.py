"""`fast evaluate`: a trained segmenter on seg_test + normal_test; metrics.json + per_image.csv."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fast.config import load_config, resolve_device
from fast.data.manifest import PreparedCategory, manifest_path
from fast.errors import FastError
from fast.io import atomic_path, write_json
from fast.metrics import evaluate_maps
from fast.precision import Precision
from fast.segmentation.data import evaluation_set
from fast.segmentation.evaluate import predict
from fast.segmentation.memory import keep_freed_memory
from fast.segmentation.train import load_segmenter

log = logging.getLogger(__name__)
ID_KEYS = ("dataset", "category", "method", "segmenter", "seed")


def run_evaluate(args) -> int:
    keep_freed_memory()   # large blocks reused, not page-faulted anew (fast.segmentation.memory)
    cfg = load_config(args.config)
    device = resolve_device(cfg["device"])
    model, train_config = load_segmenter(args.model, device)
    if (train_config["dataset"], train_config["category"]) != (args.dataset, args.category):
        raise FastError(f"{args.model}: trained on {train_config['dataset']}/{train_config['category']}, "
                        f"asked to evaluate on {args.dataset}/{args.category}")
    cat = PreparedCategory.load(manifest_path(args.prepared, args.dataset, args.category))
    t0 = time.perf_counter()
    # Evaluate at the training resolution (the prepared images already are at the experiment's).
    pool, rows = evaluation_set(cat, train_config["resolution"], train_config["in_channels"])
    t1 = time.perf_counter()
    probs = predict(model, pool.images, device, precision=Precision.of(cfg["precision"], device))
    t2 = time.perf_counter()
    masks = pool.masks.astype(np.uint8)
    metrics, per_image_stats = evaluate_maps(probs, masks)
    t3 = time.perf_counter()
    ids = {k: train_config[k] for k in ID_KEYS}
    record = {**ids, **{k: (None if math.isnan(v) else v) for k, v in metrics.items()},
              "n_images": len(rows), "n_anomalous_images": int(masks.any(axis=(1, 2)).sum()),
              "resolution": train_config["resolution"], "threshold": 0.5}
    per_image = pd.DataFrame({"image": rows["image"], "split": rows["split"],
                              "anomaly_type": rows["anomaly_type"], **per_image_stats})
    out = Path(args.out)
    with atomic_path(out / "per_image.csv") as tmp:
        per_image.to_csv(tmp, index=False)
    write_json(out / "metrics.json", record)
    log.info("%d test images: data %.1f s, inference %.1f s, metrics %.1f s", len(rows), t1 - t0, t2 - t1, t3 - t2)
    log.info("%s: mIoU %.4f mAcc %.4f pixel_AUROC %s", out, metrics["mIoU"], metrics["mAcc"],
             metrics["pixel_AUROC"])
    return 0
