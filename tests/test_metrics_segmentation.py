"""fast.metrics against independent, deliberately naive computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from fast.metrics import METRIC_KEYS, aupro, evaluate_maps, per_image_stats, segmentation_metrics


# ---------------------------------------------------------------- naive reference computations
def naive_confusion(probs, masks, thr=0.5):
    tp = fp = fn = tn = 0
    for p, m in zip(probs.ravel(), masks.ravel()):
        pred = p >= thr
        if pred and m:
            tp += 1
        elif pred and not m:
            fp += 1
        elif not pred and m:
            fn += 1
        else:
            tn += 1
    return tp, fp, fn, tn


def naive_auroc(labels, scores):
    """P(score_pos > score_neg) + 0.5 P(tie), by enumerating all pairs."""
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    total = 0.0
    for a in pos:
        for b in neg:
            total += 1.0 if a > b else 0.5 if a == b else 0.0
    return total / (len(pos) * len(neg))


def naive_ap(labels, scores):
    """Average precision = sum over thresholds of (R_k - R_{k-1}) P_k (sklearn's definition)."""
    labels, scores = np.asarray(labels, bool), np.asarray(scores, float)
    ap, prev_recall = 0.0, 0.0
    for t in sorted(set(scores.tolist()), reverse=True):
        pred = scores >= t
        tp = (pred & labels).sum()
        precision, recall = tp / pred.sum(), tp / labels.sum()
        ap += (recall - prev_recall) * precision
        prev_recall = recall
    return ap


def naive_f1_max(labels, scores):
    labels, scores = np.asarray(labels, bool), np.asarray(scores, float)
    best = 0.0
    for t in set(scores.tolist()):
        pred = scores >= t
        tp = (pred & labels).sum()
        if tp:
            p, r = tp / pred.sum(), tp / labels.sum()
            best = max(best, 2 * p * r / (p + r))
    return best


def naive_aupro(probs, masks, limit=0.3):
    """Threshold sweep: at every distinct score, FPR over normal pixels and the mean overlap of each
    8-connected ground-truth region; trapezoid from (0, 0) and interpolation at the limit."""
    regions = []
    for i, m in enumerate(masks):
        lab, n = ndimage.label(m, structure=np.ones((3, 3)))
        regions += [(i, lab == k) for k in range(1, n + 1)]
    normal = ~masks.astype(bool)
    pts = [(0.0, 0.0)]
    for t in sorted(set(probs.ravel().tolist()), reverse=True):
        pred = probs >= t
        fpr = (pred & normal).sum() / normal.sum()
        pro = np.mean([(pred[i] & r).sum() / r.sum() for i, r in regions])
        pts.append((fpr, pro))
    area = 0.0
    for (x0, y0), (x1, y1) in zip(pts[:-1], pts[1:]):
        if x0 >= limit:
            break
        if x1 > limit:
            y1 = y0 + (y1 - y0) * (limit - x0) / (x1 - x0)
            x1 = limit
        area += (x1 - x0) * (y0 + y1) / 2
    return area / limit


def naive_image_auroc(probs, masks):
    scores = [ndimage.gaussian_filter(p, 1.0, mode="nearest").max() for p in probs]
    labels = [m.any() for m in masks]
    return naive_auroc(labels, scores)


def full_sort_curves(probs, masks, limit=0.3):
    """pixel AUROC, AP, F1_max and AUPRO as the metrics computed them before: one stable descending
    argsort of all pixels and running sums of per-pixel weights (1, 1/#normal, 1/(#regions *
    region size)) read at the last pixel of each run of equal scores. The fast path must give the
    same floats, not merely close ones: each printed digit of metrics.json stays."""
    probs, masks = np.asarray(probs, np.float64), np.asarray(masks).astype(bool)
    flat, y = probs.ravel(), masks.ravel()
    order = np.argsort(-flat, kind="stable")
    last = np.append(np.diff(flat[order]) != 0, True)
    def cumulative(w):
        return np.cumsum(w[order])[last]
    tps, fps = cumulative(y.astype(np.float64)), cumulative((~y).astype(np.float64))
    tpr, fpr = np.concatenate(([0.0], tps / tps[-1])), np.concatenate(([0.0], fps / fps[-1]))
    precision, recall = tps / (tps + fps), tps / tps[-1]
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(precision),
                   where=(precision + recall) > 0)
    out = {"pixel_AUROC": float(np.trapezoid(tpr, fpr)),
           "pixel_AP": float(np.sum(np.diff(np.concatenate(([0.0], recall))) * precision)),
           "F1_max": float(f1.max())}
    labels, n_regions = np.zeros(masks.shape, np.int64), 0
    for i, m in enumerate(masks):
        lab, n = ndimage.label(m, structure=np.ones((3, 3), int))
        labels[i] = np.where(lab > 0, lab + n_regions, 0)
        n_regions += n
    lab = labels.ravel()
    size = np.bincount(lab, minlength=n_regions + 1).astype(np.float64)
    pro_step = np.zeros(lab.size)
    pro_step[lab > 0] = 1.0 / (n_regions * size[lab[lab > 0]])
    fpr = np.concatenate(([0.0], np.minimum(cumulative(np.where(lab == 0, 1.0 / (~y).sum(), 0.0)), 1.0)))
    pro = np.concatenate(([0.0], np.minimum(cumulative(pro_step), 1.0)))
    keep = fpr <= limit
    x, v = fpr[keep], pro[keep]
    if x[-1] < limit:
        j = int(np.searchsorted(fpr, limit))
        x, v = np.append(x, limit), np.append(v, v[-1] + (pro[j] - v[-1]) * (limit - x[-1]) / (fpr[j] - x[-1]))
    out["AUPRO_0.3"] = float(np.trapezoid(v, x) / limit)
    return out


def random_case(seed, n=4, h=8, w=8, quantise=None):
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, h, w), np.uint8)
    for i in range(n - 1):  # last image stays normal
        y, x = rng.integers(0, h - 3), rng.integers(0, w - 3)
        masks[i, y:y + rng.integers(1, 4), x:x + rng.integers(1, 4)] = 1
    probs = np.clip(0.6 * masks + 0.5 * rng.random((n, h, w)), 0, 1)
    if quantise:
        probs = np.round(probs * quantise) / quantise
    return probs, masks


# ---------------------------------------------------------------- tests
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("quantise", [None, 5])
def test_all_metrics_match_naive_computations(seed, quantise):
    probs, masks = random_case(seed, quantise=quantise)
    got = segmentation_metrics(probs, masks)
    assert list(got) == list(METRIC_KEYS)
    tp, fp, fn, tn = naive_confusion(probs, masks)
    iou_a, iou_b = tp / (tp + fp + fn), tn / (tn + fp + fn)
    assert got["IoU_anomaly"] == pytest.approx(iou_a)
    assert got["mIoU"] == pytest.approx((iou_a + iou_b) / 2)
    assert got["mAcc"] == pytest.approx((tp / (tp + fn) + tn / (tn + fp)) / 2)
    assert got["aAcc"] == pytest.approx((tp + tn) / probs.size)
    y, s = masks.ravel(), probs.ravel()
    assert got["pixel_AUROC"] == pytest.approx(naive_auroc(y, s))
    assert got["pixel_AP"] == pytest.approx(naive_ap(y, s))
    assert got["F1_max"] == pytest.approx(naive_f1_max(y, s))
    assert got["AUPRO_0.3"] == pytest.approx(naive_aupro(probs, masks))
    assert got["image_AUROC"] == pytest.approx(naive_image_auroc(probs, masks))


def test_hand_made_confusion():
    masks = np.zeros((1, 4, 4), np.uint8)
    masks[0, :2, :2] = 1                       # 4 anomalous pixels
    probs = np.zeros((1, 4, 4))
    probs[0, :2, :1] = 0.9                     # 2 tp
    probs[0, 3, 3] = 0.5                       # 1 fp (>= threshold)
    got = segmentation_metrics(probs, masks)
    assert got["IoU_anomaly"] == pytest.approx(2 / 5)
    assert got["mIoU"] == pytest.approx((2 / 5 + 11 / 14) / 2)
    assert got["mAcc"] == pytest.approx((2 / 4 + 11 / 12) / 2)
    assert got["aAcc"] == pytest.approx(13 / 16)
    assert math.isnan(got["image_AUROC"])      # one image, no normal image


def test_aupro_known_regions():
    """Two regions (sizes 4 and 2) in one image: a detector that scores only the small region
    fully has PRO 1/2 at FPR 0; adding 4 false pixels of a lower score reaches PRO 1 at FPR 4/n_neg."""
    masks = np.zeros((1, 10, 10), np.uint8)
    masks[0, 0:2, 0:2] = 1
    masks[0, 8, 8:10] = 1
    probs = np.zeros((1, 10, 10))
    probs[0, 8, 8:10] = 1.0
    n_neg = 100 - 6
    # Curve: (0,0) -> (0, 0.5) -> (1, 1) [the tie at score 0]; PRO(f) = 0.5 + 0.5 f on [0, 1].
    expected = (0.5 * 0.3 + 0.5 * 0.3 ** 2 / 2) / 0.3
    assert aupro(probs, masks) == pytest.approx(expected)
    probs[0, 0:2, 0:2] = 0.8
    probs[0, 5, 0:4] = 0.7                      # 4 false positives at score 0.7
    # (0,0) -> (0,0.5) -> (0,1) -> (4/94, 1) -> ...: PRO = 1 from FPR 0 on.
    assert aupro(probs, masks) == pytest.approx(1.0)
    # Diagonal-touching pixels are one region (8-connectivity): scoring one of them gives PRO 1/2.
    masks2 = np.zeros((1, 6, 6), np.uint8)
    masks2[0, 1, 1] = masks2[0, 2, 2] = 1
    probs2 = np.zeros((1, 6, 6))
    probs2[0, 1, 1] = 1.0
    assert aupro(probs2, masks2) == pytest.approx((0.5 * 0.3 + 0.5 * 0.3 ** 2 / 2) / 0.3)
    assert n_neg == 94


def test_perfect_prediction_is_one():
    _, masks = random_case(3)
    got = segmentation_metrics(masks.astype(float), masks)
    for k in METRIC_KEYS:
        assert got[k] == pytest.approx(1.0), k


def test_all_zero_prediction():
    _, masks = random_case(4)
    got = segmentation_metrics(np.zeros(masks.shape), masks)
    assert got["IoU_anomaly"] == 0.0
    frac_bg = 1 - masks.mean()
    assert got["mIoU"] == pytest.approx(frac_bg / 2)
    assert got["mAcc"] == pytest.approx(0.5)
    assert got["pixel_AUROC"] == pytest.approx(0.5)
    assert got["pixel_AP"] == pytest.approx(masks.mean())
    assert got["AUPRO_0.3"] == pytest.approx(0.15)  # the diagonal, integrated to 0.3, / 0.3
    assert got["image_AUROC"] == pytest.approx(0.5)


def test_no_anomalous_pixels_gives_nan_not_error():
    probs = np.random.default_rng(0).random((3, 8, 8))
    got = segmentation_metrics(probs, np.zeros((3, 8, 8), np.uint8))
    for k in ("mAcc", "pixel_AUROC", "pixel_AP", "F1_max", "AUPRO_0.3", "image_AUROC"):
        assert math.isnan(got[k]), k
    # Predicted pixels with no ground truth are all false positives: IoU 0, not undefined.
    assert got["IoU_anomaly"] == 0.0
    assert got["mIoU"] == pytest.approx((probs < 0.5).mean() / 2)
    assert got["aAcc"] == pytest.approx((probs < 0.5).mean())
    # Nothing predicted and nothing there: the anomaly IoU is undefined.
    assert math.isnan(segmentation_metrics(np.zeros((2, 4, 4)), np.zeros((2, 4, 4)))["IoU_anomaly"])


def test_per_image_stats_sum_to_dataset_confusion():
    probs, masks = random_case(5)
    stats = per_image_stats(probs, masks)
    tp, fp, fn, tn = naive_confusion(probs, masks)
    assert (stats["tp"].sum(), stats["fp"].sum(), stats["fn"].sum(), stats["tn"].sum()) == (tp, fp, fn, tn)
    assert stats["label"].tolist() == [1, 1, 1, 0]
    assert stats["n_anomalous_pixels"].tolist() == masks.sum(axis=(1, 2)).tolist()
    assert stats["image_score"][0] == pytest.approx(
        ndimage.gaussian_filter(probs[0], 1.0, mode="nearest").max())


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError):
        segmentation_metrics(np.zeros((2, 4, 4)), np.zeros((2, 4, 5)))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 4), size=st.integers(4, 9),
       levels=st.sampled_from([2, 4, 10, 0]))
def test_property_ranges_and_naive_agreement(seed, n, size, levels):
    probs, masks = random_case(seed, n=n, h=size, w=size, quantise=levels or None)
    got = segmentation_metrics(probs, masks)
    for k, v in got.items():
        assert 0.0 <= v <= 1.0 + 1e-12, (k, v)
    assert got["mIoU"] <= got["mAcc"] + 1e-12   # IoU <= recall, per class
    assert got["AUPRO_0.3"] == pytest.approx(naive_aupro(probs, masks))
    assert got["pixel_AUROC"] == pytest.approx(naive_auroc(masks.ravel(), probs.ravel()))
    # Invariance: the metrics depend on the images as a set, not their order.
    perm = np.random.default_rng(seed).permutation(n)
    again = segmentation_metrics(probs[perm], masks[perm])
    assert again == pytest.approx(got)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("quantise", [None, 3, 64, 1000])
def test_curves_equal_the_full_sort_computation_bit_for_bit(seed, quantise):
    """Float32 maps (what predict returns) with many regions of different sizes, ties at every
    level of quantisation: every curve metric is the identical float, not an approximation."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((6, 24, 24), np.uint8)
    for i in range(5):                                      # last image normal
        for _ in range(rng.integers(1, 4)):
            y, x = rng.integers(0, 20, size=2)
            masks[i, y:y + rng.integers(1, 5), x:x + rng.integers(1, 5)] = 1
    probs = (0.4 * masks + 0.6 * rng.random(masks.shape)).astype(np.float32)
    if quantise:
        probs = (np.round(probs * quantise) / quantise).astype(np.float32)
    got = segmentation_metrics(probs, masks)
    want = full_sort_curves(probs, masks)
    assert {k: got[k] for k in want} == want     # exact equality


def test_evaluate_maps_is_segmentation_metrics_and_per_image_stats():
    probs, masks = random_case(7, n=5, h=12, w=12, quantise=8)
    metrics, per_image = evaluate_maps(probs, masks)
    assert metrics == segmentation_metrics(probs, masks)
    expected = per_image_stats(probs, masks)
    assert list(per_image) == list(expected)
    for k, v in expected.items():
        assert per_image[k].dtype == v.dtype and np.array_equal(per_image[k], v), k
