"""Defect paste (`defect-paste`): the practitioner's baseline, not in the papers (docs/methods.md).

Training-free. A real defect of the requested anomaly type is cut out of a ``gen_train`` image
under its own mask (one connected component, or the image's whole mask) and pasted onto the
request's ``normal_train`` background: randomly flipped and rotated by a multiple of 90 degrees,
at a random position inside the background's object region (fast.methods.mask_pool.object_region and
translate_into, exactly as the shared mask pool places real masks). So it sees exactly the real
data the generators see, and nothing else: ``prepare`` reads the ``gen_train`` rows only.

Edges: the defect pixels themselves are copied bit for bit (alpha 1 under the mask), and the
source image's own surroundings of the defect are cross-faded into the background over a few
pixels outside it (alpha falls linearly with the distance to the mask: ``feather`` px at 256 px,
scaled with the image, at least 1). So there is no hard seam around the defect, a thin scratch
keeps its full contrast, and the label is exactly the pasted mask; farther than feather + 0.5 px
from the mask the output is the background, bit for bit.

Options (``method_options.defect-paste``): ``unit`` = ``either`` (default: a coin flip per image),
``component`` or ``mask``; ``feather`` = the fade width in px at 256 px (default 3; 0: a hard-edged paste).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import cv2
import numpy as np

from fast.data.manifest import PreparedCategory
from fast.errors import FastError
from fast.methods.base import NUMBER, SynthesisMethod, SynthesisRequest, Synthesized
from fast.methods.mask_pool import object_region, resize_mask, translate_into

UNITS = ("either", "component", "mask")
REFERENCE_SIZE = 256


@dataclass
class Defect:
    """One gen_train image with its (non-empty) defect mask."""

    source: str          # manifest-relative path of the gen_train image
    image: np.ndarray    # uint8 (H, W, C)
    mask: np.ndarray     # uint8 (H, W) in {0, 1}


@dataclass
class Piece:
    """A defect cut out with ``margin`` px of its surroundings on every side."""

    image: np.ndarray    # uint8 (h + 2 margin, w + 2 margin, C)
    mask: np.ndarray     # uint8 {0, 1}: the pasted defect (the label)
    others: np.ndarray   # bool: other defects of the same image (never pasted unlabelled)
    margin: int
    desc: str


def feather_px(shape: tuple[int, int], feather_at_reference: float) -> int:
    """The fade width for an image of ``shape``: given at 256 px, scaled, at least 1 px (a fade
    that rounds to nothing at 32 px would bring the seam back); 0 only when asked for."""
    if feather_at_reference == 0:
        return 0
    return max(1, int(round(feather_at_reference * min(shape) / REFERENCE_SIZE)))


def _fit(defect: Defect, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The defect image and mask at the background's size (prepared splits normally agree)."""
    if defect.image.shape[:2] == tuple(shape):
        return defect.image, defect.mask
    h, w = shape
    shrink = h * w < defect.image.shape[0] * defect.image.shape[1]
    image = cv2.resize(defect.image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return image.reshape(h, w, defect.image.shape[2]), resize_mask(defect.mask, shape)


def _choose_unit(mask: np.ndarray, unit: str, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """The whole mask, or one connected component drawn with probability proportional to its
    area (so that annotation specks are rarely the whole synthetic defect)."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    whole = unit == "mask" or (unit == "either" and rng.random() < 0.5)
    if whole or n == 2:
        return mask.astype(bool), "mask"
    areas = stats[1:, cv2.CC_STAT_AREA].astype(np.float64)
    k = 1 + int(rng.choice(n - 1, p=areas / areas.sum()))
    return labels == k, f"component{k}of{n - 1}"


def cut_piece(defect: Defect, shape: tuple[int, int], unit: str, margin: int,
              rng: np.random.Generator) -> Piece:
    image, mask = _fit(defect, shape)
    chosen, desc = _choose_unit(mask, unit, rng)
    ys, xs = np.nonzero(chosen)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    # Reflect-pad so that a defect on the image border still has surroundings to fade out with;
    # the mirror images of defect pixels count as other defects (never pasted).
    def padded(a: np.ndarray) -> np.ndarray:
        out = cv2.copyMakeBorder(a, margin, margin, margin, margin, cv2.BORDER_REFLECT_101)
        return out.reshape(out.shape[0], out.shape[1], *a.shape[2:])[y0:y1 + 2 * margin, x0:x1 + 2 * margin]

    piece_mask = np.pad(chosen, margin)[y0:y1 + 2 * margin, x0:x1 + 2 * margin]
    return Piece(image=padded(image), mask=piece_mask.astype(np.uint8),
                 others=padded(mask).astype(bool) & ~piece_mask, margin=margin, desc=desc)


def flip_rotate(piece: Piece, shape: tuple[int, int], rng: np.random.Generator) -> tuple[Piece, str]:
    """Random flips and a quarter turn; a quarter turn only when the turned defect still fits."""
    arrays, ops = [piece.image, piece.mask, piece.others], []
    for axis, name in ((1, "hflip"), (0, "vflip")):
        if rng.random() < 0.5:
            arrays = [np.flip(a, axis=axis) for a in arrays]
            ops.append(name)
    k = int(rng.integers(0, 4))
    core_h, core_w = (s - 2 * piece.margin for s in piece.mask.shape)
    if k % 2 and (core_w > shape[0] or core_h > shape[1]):
        k -= 1
    if k:
        arrays = [np.rot90(a, k) for a in arrays]
        ops.append(f"rot{90 * k}")
    image, mask, others = (np.ascontiguousarray(a) for a in arrays)
    return Piece(image, mask, others, piece.margin, piece.desc), ",".join(ops)


def feathered_alpha(piece: Piece) -> np.ndarray:
    """1 on the defect; outside it falls linearly with the Euclidean distance d to 0 at
    d = margin + 0.5 (so every pixel the fade touches lies inside the piece's window); 0 on other
    defects of the source image (their pixels would otherwise be pasted without a label)."""
    outside = cv2.distanceTransform((1 - piece.mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    reach = piece.margin + 0.5
    alpha = np.clip((reach - outside) / reach, 0.0, 1.0).astype(np.float32)
    alpha[piece.others] = 0.0
    alpha[piece.mask == 1] = 1.0
    return alpha


def paste(background: np.ndarray, piece: Piece, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str]:
    """Place the piece inside the background's object region; returns (image, label, shift)."""
    h, w = background.shape[:2]
    m = piece.margin
    core = piece.mask[m:piece.mask.shape[0] - m, m:piece.mask.shape[1] - m]
    full = np.zeros((h, w), np.uint8)
    full[:core.shape[0], :core.shape[1]] = core
    label, (ty, tx) = translate_into(full, object_region(background), rng)
    # The piece's window in the background, clipped to the image.
    wy0, wx0 = ty - m, tx - m
    ya, yb = max(wy0, 0), min(wy0 + piece.mask.shape[0], h)
    xa, xb = max(wx0, 0), min(wx0 + piece.mask.shape[1], w)
    alpha = feathered_alpha(piece)[ya - wy0:yb - wy0, xa - wx0:xb - wx0, None]
    src = piece.image[ya - wy0:yb - wy0, xa - wx0:xb - wx0].astype(np.float32)
    out = background.copy()
    dst = out[ya:yb, xa:xb]
    blended = np.round(src * alpha + dst.astype(np.float32) * (1.0 - alpha)).astype(np.uint8)
    out[ya:yb, xa:xb] = np.where(alpha > 0, blended, dst)  # alpha 0: the background, bit for bit
    return out, label, f"shift={ty},{tx}"


class DefectPaste(SynthesisMethod):
    name = "defect-paste"
    uses_pool_masks = False  # the defects' own real masks are the labels
    OPTIONS = {"unit": UNITS, "feather": NUMBER}

    def __init__(self, cfg: dict, name: str | None = None):
        super().__init__(cfg, name)
        self.unit = str(self.options.get("unit", "either"))
        if self.unit not in UNITS:
            raise FastError(f"method_options.{self.name}.unit must be one of {list(UNITS)}, got {self.unit!r}")
        feather = self.options.get("feather", 3)
        if isinstance(feather, bool) or not isinstance(feather, (int, float)) or not feather >= 0:
            raise FastError(f"method_options.{self.name}.feather must be a number >= 0 (px at 256 px), "
                            f"got {feather!r}")
        self.feather = float(feather)
        self.defects: dict[str, list[Defect]] | None = None

    def prepare(self, train_set: PreparedCategory) -> None:
        """Read the gen_train defects of every anomaly type (the only real anomalies allowed)."""
        self.defects = {}
        for anomaly_type in train_set.anomaly_types:
            entries = []
            for _, row in train_set.rows("gen_train", anomaly_type=anomaly_type).iterrows():
                mask = train_set.load_mask(row)
                if mask.any():
                    entries.append(Defect(row["image"], train_set.load_image(row), mask))
            self.defects[anomaly_type] = entries

    def _defects_of(self, anomaly_type: str) -> list[Defect]:
        if self.defects is None:
            raise FastError(f"{self.name}: call prepare(train_set) first: it pastes the category's gen_train defects")
        entries = self.defects.get(anomaly_type)
        if not entries:
            raise FastError(f"{self.name}: no gen_train image of anomaly type {anomaly_type!r} with a non-empty "
                            f"mask to paste from")
        return entries

    def synthesize(self, requests: Sequence[SynthesisRequest], seed: int) -> Iterator[Synthesized]:
        for i, req in enumerate(requests):
            rng = np.random.default_rng([seed, i])
            entries = self._defects_of(req.anomaly_type)
            defect = entries[int(rng.integers(0, len(entries)))]
            if defect.image.shape[2] != req.background.shape[2]:
                raise FastError(f"{self.name}: {defect.source} has {defect.image.shape[2]} channels, the "
                                f"background {req.source_normal} {req.background.shape[2]}")
            shape = req.background.shape[:2]
            piece = cut_piece(defect, shape, self.unit, feather_px(shape, self.feather), rng)
            piece, ops = flip_rotate(piece, shape, rng)
            out, label, shift = paste(req.background, piece, rng)
            desc = "|".join(p for p in (defect.source, piece.desc, ops, shift) if p)
            yield out, label, {"nfe": 0, "mask_source": desc}


def build(cfg: dict, name: str) -> SynthesisMethod:
    return DefectPaste(cfg, name)
