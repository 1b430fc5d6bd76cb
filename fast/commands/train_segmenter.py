"""`fast train-segmenter`: one smp segmenter for one method x seed, fixed budget (fast.segmentation.train)."""

from __future__ import annotations

import logging
import time

import torch

from fast.config import load_config, resolve_device
from fast.data.manifest import PreparedCategory, manifest_path
from fast.errors import FastError
from fast.methods import REFERENCE_ROWS, REGISTRY
from fast.precision import Precision
from fast.segmentation.data import training_pools
from fast.segmentation.memory import keep_freed_memory
from fast.segmentation.models import SEGMENTERS
from fast.segmentation.train import save_segmenter, train_segmenter, window_record

log = logging.getLogger(__name__)


def run_train_segmenter(args) -> int:
    keep_freed_memory()   # large blocks reused, not page-faulted anew (fast.segmentation.memory)
    cfg = load_config(args.config)
    if args.method not in REGISTRY and args.method not in REFERENCE_ROWS:
        raise FastError(f"unknown method {args.method!r}; known: {', '.join([*REGISTRY, *REFERENCE_ROWS])}")
    if args.segmenter not in SEGMENTERS:
        raise FastError(f"unknown segmenter {args.segmenter!r}; known: {', '.join(SEGMENTERS)}")
    seg_cfg = cfg["segmentation"]
    size = cfg["resolution"]
    cat = PreparedCategory.load(manifest_path(args.prepared, args.dataset, args.category))
    channels = cat.channels
    t0 = time.perf_counter()
    anomalous, normal = training_pools(cat, args.method, args.synthetic, size, channels)
    load_seconds = time.perf_counter() - t0
    device = resolve_device(cfg["device"])
    log.info("%s/%s %s %s seed %d: %d anomalous + %d normal training images at %d px on %s (read in %.1f s)",
             args.dataset, args.category, args.method, args.segmenter, args.seed, len(anomalous),
             len(normal), size, device, load_seconds)
    model, record = train_segmenter(anomalous, normal, args.segmenter, args.seed, seg_cfg, device,
                                    precision=Precision.of(cfg["precision"], device))
    arch, encoder = SEGMENTERS[args.segmenter]
    train_config = {
        "dataset": args.dataset, "category": args.category, "method": args.method,
        "segmenter": args.segmenter, "architecture": arch.__name__, "encoder": encoder,
        "encoder_weights": seg_cfg["encoder_weights"], "seed": args.seed, "in_channels": channels,
        "resolution": size, "steps": seg_cfg["steps"], "batch_size": seg_cfg["batch_size"],
        "lr": seg_cfg["lr"], "optimizer": "AdamW", "loss": "focal+dice (binary)",
        **window_record(seg_cfg.get("patch"), size, seg_cfg["normal_windows"]),
        "augmentations": "per-sample rot90 k~U{0..3}, hflip p=0.5, vflip p=0.5 (seeded)",
        "n_anomalous": len(anomalous), "n_normal": len(normal),
        "synthetic": str(args.synthetic) if args.synthetic else None,
        "device": str(device), "torch": torch.__version__, **record,
    }
    save_segmenter(model, train_config, args.out)
    log.info("wrote %s (%.1f steps/s)", args.out, record["steps_per_s"] or 0)
    return 0
