"""`defect-paste`: real gen_train defects under their own masks, pasted onto normal_train images.

A hand-made prepared category makes provenance visible in the pixels: gen_train defects are pure
red with R in [200, 227] on green surroundings, the seg_test defect is red with R in [228, 255],
normal images are blue-ish noise (never red). So "a labelled pixel is red with R <= 227" proves
where it came from.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fast.config import load_config
from fast.data.manifest import PreparedCategory, manifest_path
from fast.errors import FastError
from fast.methods import build_method
from fast.methods.defect_paste import feather_px
from fast.commands.synthesize import make_requests

SIZE = 64


def _cfg(options=None):
    cfg = {"experiment": "t", "datasets": {"synthetic": {"categories": ["a"]}}, "methods": ["defect-paste"]}
    if options is not None:
        cfg["method_options"] = {"defect-paste": options}
    return load_config(cfg)


def _save(root: Path, rel: str, array: np.ndarray) -> str:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(root / rel)
    return hashlib.sha256((root / rel).read_bytes()).hexdigest()


def _defect_image(rng, red_range, boxes):
    """Green surroundings with red defects in ``boxes`` (y0, y1, x0, x1); returns (image, mask)."""
    img = np.zeros((SIZE, SIZE, 3), np.uint8)
    img[..., 1] = rng.integers(150, 200, (SIZE, SIZE))
    mask = np.zeros((SIZE, SIZE), np.uint8)
    for y0, y1, x0, x1 in boxes:
        mask[y0:y1, x0:x1] = 1
    img[mask == 1] = 0
    img[..., 0][mask == 1] = rng.integers(*red_range, int(mask.sum()))
    return img, mask


def _normal(rng):
    img = np.zeros((SIZE, SIZE, 3), np.uint8)
    img[..., 1] = rng.integers(20, 90, (SIZE, SIZE))
    img[..., 2] = rng.integers(120, 255, (SIZE, SIZE))
    return img


@pytest.fixture(scope="module")
def category(tmp_path_factory) -> PreparedCategory:
    root = tmp_path_factory.mktemp("defect_paste") / "prepared" / "hand" / "c"
    rng = np.random.default_rng(0)
    rows = []

    def add(rel, image, split, mask=None, anomaly_type="good"):
        row = {"image": rel, "mask": "", "category": "c", "anomaly_type": anomaly_type, "split": split,
               "sha256": _save(root, rel, image), "mask_sha256": ""}
        if mask is not None:
            row["mask"] = rel.replace("images/", "masks/")
            row["mask_sha256"] = _save(root, row["mask"], mask * 255)
        rows.append(row)

    for i in range(3):
        add(f"images/normal_{i}.png", _normal(rng), "normal_train")
    add("images/normal_test_0.png", _normal(rng), "normal_test")
    # Two components in the first image (a blob and a thin scratch), one touching the border in the second.
    gen = [_defect_image(rng, (200, 228), [(10, 18, 12, 22), (40, 42, 20, 50)]),
           _defect_image(rng, (200, 228), [(0, 9, 50, 64)])]
    for i, (img, mask) in enumerate(gen):
        add(f"images/spot_{i}.png", img, "gen_train", mask, "spot")
    img, mask = _defect_image(rng, (228, 256), [(20, 40, 20, 40)])
    add("images/spot_9.png", img, "seg_test", mask, "spot")
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    return PreparedCategory.load(root / "manifest.csv")


def _synthesize(category, seed=0, n=12, options=None):
    method = build_method("defect-paste", _cfg(options))
    method.prepare(category)
    requests = make_requests(category, {}, n, seed, use_pool_masks=method.uses_pool_masks)
    return requests, list(method.synthesize(requests, seed))


def _gen_train_areas(category):
    areas = set()
    for _, row in category.rows("gen_train").iterrows():
        mask = category.load_mask(row)
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        areas.update(int(a) for a in stats[1:, cv2.CC_STAT_AREA])
        areas.add(int(mask.sum()))
    return areas


def _is_gen_train_red(image):
    return (image[..., 1] == 0) & (image[..., 2] == 0) & (image[..., 0] >= 200) & (image[..., 0] < 228)


def test_label_is_the_pasted_defect_and_the_rest_is_the_background(category):
    requests, outputs = _synthesize(category)
    areas = _gen_train_areas(category)
    f = feather_px((SIZE, SIZE), 3)
    for req, (image, label, meta) in zip(requests, outputs):
        assert image.dtype == np.uint8 and image.shape == req.background.shape
        assert label.dtype == np.uint8 and set(np.unique(label)) == {0, 1}
        # The labelled pixels are exactly the pasted defect pixels (copied bit for bit) ...
        assert np.array_equal(_is_gen_train_red(image), label == 1)
        # No defect pixel outside the label, not even faded (normals and surroundings have R = 0).
        assert not image[..., 0][label == 0].any()
        # ... of one gen_train component or one whole gen_train mask (same size: no resampling).
        assert int(label.sum()) in areas, meta["mask_source"]
        # Beyond the feather ring (f + 0.5 px) the output is the background, bit for bit.
        dist = cv2.distanceTransform((1 - label).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        far = dist >= f + 0.5
        assert np.array_equal(image[far], req.background[far])
        assert meta["nfe"] == 0 and meta["mask_source"].startswith("images/spot_")
        assert not np.shares_memory(image, req.background)


def test_pasted_pixels_come_from_gen_train_only(category, monkeypatch):
    """Only gen_train rows are read (recorded at the loader) and no pixel of the seg_test defect
    (red with R >= 228) appears anywhere in an output."""
    read = []
    real_image, real_mask = PreparedCategory.load_image, PreparedCategory.load_mask
    monkeypatch.setattr(PreparedCategory, "load_image", lambda self, row: read.append(row["split"]) or real_image(self, row))
    monkeypatch.setattr(PreparedCategory, "load_mask", lambda self, row: read.append(row["split"]) or real_mask(self, row))
    method = build_method("defect-paste", _cfg())
    method.prepare(category)
    assert read and set(read) == {"gen_train"}
    monkeypatch.setattr(PreparedCategory, "load_image", real_image)
    monkeypatch.setattr(PreparedCategory, "load_mask", real_mask)
    requests = make_requests(category, {}, 12, 0, use_pool_masks=False)
    for image, label, _ in method.synthesize(requests, 0):
        red = (image[..., 1] == 0) & (image[..., 2] == 0) & (image[..., 0] >= 228)
        assert not red.any()
        assert _is_gen_train_red(image)[label == 1].all()


def test_edges_are_feathered_not_cut(category):
    """The ring around the defect fades from the source's green surroundings to the background:
    the pixel next to the defect is a mix of both, never the background's own value alone."""
    requests, outputs = _synthesize(category, n=12, options={"feather": 8})  # 2 px at 64 px
    assert feather_px((SIZE, SIZE), 8) == 2
    means = {1: [], 2: []}
    for req, (image, label, meta) in zip(requests, outputs):
        if not meta["mask_source"].startswith("images/spot_0.png"):
            continue  # spot_1's defect is cut by the image border: no surroundings on that side
        dist = cv2.distanceTransform((1 - label).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        green_gain = image[..., 1].astype(float) - req.background[..., 1]
        for d in means:
            ring = np.isclose(dist, d)
            means[d].append(green_gain[ring].mean())
    # Source surroundings G ~ 175 vs background G ~ 55: alpha 0.6 at 1 px, 0.2 at 2 px.
    assert len(means[1]) >= 3
    assert np.mean(means[1]) > 50 and 15 < np.mean(means[2]) < np.mean(means[1])


def test_flips_rotations_and_both_units_occur(category):
    _, outputs = _synthesize(category, n=40)
    sources = [meta["mask_source"] for _, _, meta in outputs]
    assert any("rot90" in s or "rot270" in s for s in sources) and any("flip" in s for s in sources)
    assert any("|mask|" in s for s in sources) and any("|component" in s for s in sources)
    _, outputs = _synthesize(category, n=10, options={"unit": "component"})
    assert all("|component" in meta["mask_source"] or "|mask|" in meta["mask_source"] for _, _, meta in outputs)


def test_deterministic_per_seed(category):
    _, a = _synthesize(category, seed=3, n=6)
    _, b = _synthesize(category, seed=3, n=6)
    _, c = _synthesize(category, seed=4, n=6)
    for (ia, ma, _), (ib, mb, _) in zip(a, b):
        assert ia.tobytes() == ib.tobytes() and ma.tobytes() == mb.tobytes()
    assert any(ia.tobytes() != ic.tobytes() for (ia, _, _), (ic, _, _) in zip(a, c))


def test_defects_land_on_the_object(synthetic_prepared):
    """On the synthetic washer (an object on a plain background) the pasted defects lie on the
    object region, as the shared mask pool places real masks."""
    from fast.methods.mask_pool import object_region

    cat = PreparedCategory.load(manifest_path(synthetic_prepared, "synthetic", "washer"))
    requests, outputs = _synthesize(cat, n=6)
    inside = []
    for req, (image, label, _) in zip(requests, outputs):
        region = object_region(req.background)
        assert label.any() and image.shape == req.background.shape
        inside.append(float(label[region].sum()) / float(label.sum()))
    assert np.mean(inside) > 0.8


def test_bad_options_and_missing_prepare_are_clear_errors(category):
    with pytest.raises(FastError, match="unit"):
        build_method("defect-paste", _cfg({"unit": "blob"}))
    with pytest.raises(FastError, match="feather"):
        build_method("defect-paste", _cfg({"feather": -1}))
    method = build_method("defect-paste", _cfg())
    requests = make_requests(category, {}, 1, 0, use_pool_masks=False)
    with pytest.raises(FastError, match="prepare"):
        list(method.synthesize(requests, 0))
    method.prepare(category)
    requests[0].anomaly_type = "crack"
    with pytest.raises(FastError, match="crack"):
        list(method.synthesize(requests, 0))
