"""Does the downstream segmenter learn a category's real defects, and which types? (the check
behind config/magnetic_tile.yaml's header).

Trains the `real-fewshot` row's segmenter (fast.segmentation.train's recipe: the config's
segmentation section) on the prepared gen_train anomalies, optionally restricted to some defect
types, and every --eval-every steps prints the training loss and, on every --subsample-th test
image, mIoU, anomaly IoU and the anomaly IoU per defect type (BatchNorm re-estimated as after
training). One thread, CPU.

  python scripts/segmenter_learning_curve.py --config config/magnetic_tile.yaml \\
      --dataset magnetic_tile --category magnetic_tile --steps 2000 --eval-every 400 [--types blowhole]
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import numpy as np
import torch
from scipy import ndimage

import fast.segmentation.data as seg_data
from fast.config import load_config
from fast.data.manifest import PreparedCategory, manifest_path
from fast.data.windows import Window, random_window
from fast.metrics import confusion_counts
from fast.segmentation.data import MixedBatches, Pool, evaluation_set, prepared_pool, training_pools
from fast.segmentation.evaluate import predict
from fast.segmentation.models import build_segmenter
from fast.segmentation.train import recalibrate_batchnorm, segmentation_loss


def native_window(mask, patch, rng, anomalous=True):
    """A patch window at native scale centred on a random pixel of a random defect component (a
    large defect is shown in part, never resized); replaces defect_window (anomalous windows)."""
    if anomalous and np.any(mask):
        labels, n = ndimage.label(mask > 0)
        ys, xs = np.nonzero(labels == int(rng.integers(1, n + 1)))
        j = int(rng.integers(len(ys)))
        h, w = mask.shape
        side = min(patch, h, w)
        return Window(int(np.clip(ys[j] - side // 2, 0, h - side)), int(np.clip(xs[j] - side // 2, 0, w - side)), side)
    return random_window(mask.shape, patch, rng)


def iou_by_type(model, pool, rows, an, no, batch_size):
    model = copy.deepcopy(model)
    recalibrate_batchnorm(model, [an.images, no.images], torch.device("cpu"), batch_size)
    probs = predict(model, pool.images, torch.device("cpu"))
    counts = confusion_counts(probs >= 0.5, pool.masks.astype(bool))
    out = {}
    for kind in ["all", *sorted(set(rows.anomaly_type) - {"good"})]:
        sel = np.ones(len(rows), bool) if kind == "all" else (rows.anomaly_type == kind).to_numpy()
        tp, fp, fn, tn = (int(counts[k][sel].sum()) for k in ("tp", "fp", "fn", "tn"))
        iou = tp / max(1, tp + fp + fn)
        out[kind] = round(100 * iou, 1)
        if kind == "all":
            out["mIoU"] = round(50 * (iou + tn / max(1, tn + fp + fn)), 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--prepared", default="data/prepared")
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--category", required=True)
    ap.add_argument("--segmenter", default="unet")
    ap.add_argument("--steps", type=int, default=None, help="default: the config's segmentation.steps")
    ap.add_argument("--eval-every", type=int, default=None)
    ap.add_argument("--types", nargs="*", default=None, help="train on these defect types only")
    ap.add_argument("--subsample", type=int, default=3, help="evaluate on every n-th test image")
    ap.add_argument("--native-windows", action="store_true", help="native_window instead of the package's rule")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = load_config(args.config)
    seg = cfg["segmentation"]
    steps = args.steps or seg["steps"]
    if args.native_windows:
        seg_data.defect_window = native_window
    cat = PreparedCategory.load(manifest_path(args.prepared, args.dataset, args.category))
    size, channels = cfg["resolution"], cat.channels
    an, no = training_pools(cat, "real-fewshot", None, size, channels)
    if args.types:
        _, rows_tr = prepared_pool(cat, ("gen_train",), size, channels)
        keep = rows_tr.anomaly_type.isin(args.types).to_numpy()
        an = Pool(an.images[keep], an.masks[keep])
    pool, rows = evaluation_set(cat, size, channels)
    sub = np.arange(0, len(rows), args.subsample)
    pool, rows = Pool(pool.images[sub], pool.masks[sub]), rows.iloc[sub].reset_index(drop=True)
    torch.manual_seed(args.seed)
    model = build_segmenter(args.segmenter, channels, seg["encoder_weights"], args.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=seg["lr"])
    loss_fn = segmentation_loss()
    batches = MixedBatches(an, no, seg["batch_size"], args.seed, seg.get("patch"), seg["normal_windows"])
    print(f"{len(an)} anomalous ({', '.join(args.types or ['all types'])}) + {len(no)} normal training images, "
          f"{len(rows)} test images, {steps} steps", flush=True)
    losses, start = [], time.perf_counter()
    every = args.eval_every or steps
    for step in range(1, steps + 1):
        x, y = batches.next()
        loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if step % every == 0 or step == steps:
            res = iou_by_type(model, pool, rows, an, no, seg["batch_size"])
            print(json.dumps({"step": step, "loss": round(float(np.mean(losses[-100:])), 3),
                              "train_s": round(time.perf_counter() - start), "IoU": res}), flush=True)
            model.train()


if __name__ == "__main__":
    main()
