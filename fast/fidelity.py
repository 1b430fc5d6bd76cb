"""Generator fidelity: do the synthetic defects look like the real ``gen_train`` ones?

The same per-image statistics of the in-mask pixels are computed for synthetic pairs and for the
real gen_train defects of the category, so the two are comparable:
- ``delta``: mean |x - inpaint(x, M)| inside M over pixels and channels (grey levels). cv2.inpaint
  (TELEA) on the mask dilated by DILATE_PX estimates "the image without the defect"; the dilation
  keeps a defect's soft edge out of the pixels the estimate is built from.
- ``contrast``: mean(x in M) - mean(x in a RING_PX ring around the dilated M) (signed, grey levels).
- ``grad``: mean Sobel gradient magnitude of the grey image inside M (grey levels per pixel).
Per anomaly type, ``w1`` is the Wasserstein-1 distance between the pooled in-mask residuals
(x - inpaint, channel mean) of the synthetic and the real images: 0 when their distributions agree.
``ratio`` = delta_syn / delta_real: < 1 fainter defects than the real ones, > 1 stronger.
Several synthetic directories of one method (synthesis.per_seed: one set per segmenter seed) are
pooled into one sample, so that a row still describes the method's defects, not one seed's draw.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from scipy.stats import wasserstein_distance

from fast.data.manifest import PreparedCategory
from fast.data.pair_sets import read_pair, read_set

log = logging.getLogger(__name__)

DILATE_PX = 2
INPAINT_RADIUS = 5
RING_PX = 5
COLUMNS = ["dataset", "category", "method", "type", "n", "n_real", "delta_syn", "delta_real",
           "contrast_syn", "contrast_real", "grad_syn", "grad_real", "w1", "ratio"]
STATS = ("delta", "contrast", "grad")
SOURCE = "synthetic_dir"  # synthetic_table: the directory a row's image and mask paths are relative to


# ----------------------------------------------------------------------------------- per image
def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _as_hwc(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    return (image[..., None] if image.ndim == 2 else image[..., :3]).astype(np.uint8, copy=False)


def inpaint_background(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Float (H, W, C) estimate of ``image`` without the defect under ``mask`` (TELEA inpainting of the
    mask dilated by DILATE_PX)."""
    image = _as_hwc(image)
    hole = cv2.dilate((mask > 0).astype(np.uint8), _disk(DILATE_PX))
    src = np.ascontiguousarray(image[..., 0] if image.shape[2] == 1 else image)
    filled = cv2.inpaint(src, hole * 255, INPAINT_RADIUS, cv2.INPAINT_TELEA)
    return _as_hwc(filled).astype(np.float64)


def image_stats(image: np.ndarray, mask: np.ndarray) -> tuple[dict[str, float], np.ndarray]:
    """(delta, contrast, grad) of one image and the in-mask residuals x - inpaint(x) (channel mean,
    1-D); NaN statistics and no residuals for an empty mask."""
    image, m = _as_hwc(image), np.asarray(mask) > 0
    if image.shape[:2] != m.shape:
        raise ValueError(f"image {image.shape[:2]} and mask {m.shape} sizes differ")
    if not m.any():
        return dict.fromkeys(STATS, float("nan")), np.zeros(0)
    x = image.astype(np.float64)
    residual = x - inpaint_background(image, m)
    inner = cv2.dilate(m.astype(np.uint8), _disk(DILATE_PX)) > 0
    ring = (cv2.dilate(m.astype(np.uint8), _disk(DILATE_PX + RING_PX)) > 0) & ~inner
    grey = x.mean(axis=2)
    # scale 1/8: the 3x3 Sobel kernel's gain, so that a ramp of 1 grey level per pixel gives 1.
    gx = cv2.Sobel(grey, cv2.CV_64F, 1, 0, ksize=3, scale=0.125)
    gy = cv2.Sobel(grey, cv2.CV_64F, 0, 1, ksize=3, scale=0.125)
    stats = {"delta": float(np.abs(residual[m]).mean()),
             "contrast": float(x[m].mean() - x[ring].mean()) if ring.any() else float("nan"),
             "grad": float(np.hypot(gx, gy)[m].mean())}
    return stats, residual[m].mean(axis=1)


def _summarise(pairs) -> tuple[pd.DataFrame, np.ndarray]:
    """Per-image statistics (one row per image with a non-empty mask) and pooled residuals."""
    stats, residuals = [], []
    for image, mask in pairs:
        s, r = image_stats(image, mask)
        if r.size:
            stats.append(s)
            residuals.append(r)
    table = pd.DataFrame(stats, columns=list(STATS))
    return table, (np.concatenate(residuals) if residuals else np.zeros(0))


# ----------------------------------------------------------------------------------- inputs
def _as_dirs(synthetic_dirs) -> list[Path]:
    if isinstance(synthetic_dirs, (str, Path)):
        return [Path(synthetic_dirs)]
    return [Path(d) for d in synthetic_dirs]


def synthetic_table(synthetic_dirs) -> pd.DataFrame:
    """The synthetic manifests of one directory or several (image, mask, anomaly_type; paths relative
    to their directory, which column SOURCE names), pooled in the order given: with
    synthesis.per_seed a method's sets of every segmenter seed are one sample of its defects."""
    parts = [read_set(d, require=("anomaly_type",)).assign(**{SOURCE: str(d)}) for d in _as_dirs(synthetic_dirs)]
    return pd.concat(parts, ignore_index=True)


def synthetic_pairs(rows: pd.DataFrame):
    """(image, mask) arrays of the given rows of synthetic_table (fast.data.pair_sets.read_pair; masks 0/1)."""
    for _, row in rows.iterrows():
        yield read_pair(row[SOURCE], row)


def real_pairs(cat: PreparedCategory, anomaly_type: str):
    """(image, mask) of the real gen_train defects of one type: the only real anomalies a method may see."""
    for _, r in cat.rows("gen_train", anomaly_type=anomaly_type).iterrows():
        yield cat.load_image(r), cat.load_mask(r)


# ----------------------------------------------------------------------------------- table
def fidelity_rows(synthetic_dirs, cat: PreparedCategory, dataset: str, category: str,
                  method: str, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row (COLUMNS) per anomaly type of the pooled synthetic manifests of ``synthetic_dirs``
    (one directory or several; ``table``: synthetic_table of them, already read)."""
    table = synthetic_table(synthetic_dirs) if table is None else table
    rows = []
    for anomaly_type, group in table.groupby("anomaly_type", sort=True):
        syn, syn_res = _summarise(synthetic_pairs(group))
        real, real_res = _summarise(real_pairs(cat, anomaly_type))
        if real.empty:
            log.warning("fidelity %s/%s: no gen_train image of type %r in %s", dataset, category,
                        anomaly_type, cat.manifest)
        row = {"dataset": dataset, "category": category, "method": method, "type": anomaly_type,
               "n": len(syn), "n_real": len(real)}
        for s in STATS:
            row[f"{s}_syn"], row[f"{s}_real"] = syn[s].mean(), real[s].mean()
        row["w1"] = (float(wasserstein_distance(syn_res, real_res)) if syn_res.size and real_res.size
                     else float("nan"))
        row["ratio"] = row["delta_syn"] / row["delta_real"] if row["delta_real"] > 0 else float("nan")
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)
