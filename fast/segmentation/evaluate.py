"""`fast evaluate`: a trained segmenter on ``seg_test`` + ``normal_test`` only.

Writes OUT/metrics.json (every metric of fast.metrics plus the identifying keys; NaN is written as
null) and OUT/per_image.csv (the raw per-image numbers the tables can be recomputed from).
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from fast.precision import FP32, Precision

log = logging.getLogger(__name__)


@torch.inference_mode()
def predict(model: torch.nn.Module, images: np.ndarray, device: torch.device, batch_size: int = 16,
            precision: Precision = FP32) -> np.ndarray:
    """Anomaly probability maps (N, H, W) of whole images (N, C, H, W) in [0, 1].

    Always whole images, also for segmenters trained on windows (segmentation.patch): the models
    are fully convolutional, and build_segmenter's PadToMultiple reflect-pads any H, W to smp's
    multiple of 32 and crops the logits back, so the maps have the images' own size.

    ``batch_size`` is part of the result, not only of the speed: on one CPU thread torch computes
    1x1 convolutions of batches under 16 with another kernel, and matrix products block by batch,
    so other batch sizes give maps that differ in the last bits (measured: up to 2e-6, Magnetic
    Tile, segformer), enough to move a pixel across the threshold. The forward passes run in
    ``precision`` (fast.precision); the probabilities are float32."""
    out = []
    for i in range(0, len(images), batch_size):
        x = torch.from_numpy(images[i:i + batch_size]).to(device)
        with precision.context():
            logits = model(x)
        out.append(torch.sigmoid(Precision.cast(logits))[:, 0].float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0,) + images.shape[2:], np.float32)
