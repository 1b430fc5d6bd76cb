"""Draw docs/synthetic_samples.png, the labelled overview of the embedded synthetic dataset:

  python scripts/synthetic_samples.py [OUT.png]

The dataset is generated as `fast fetch` makes it (fast.data.synthetic.generate, default options,
seed 0, into a temporary directory) and its first test images are shown: per category a row of the
images as generated (a normal one, then one per defect type, each titled with its type) and below it
the same images with their ground-truth masks outlined in red.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from fast.data.synthetic import DEFECT_TYPES, generate  # noqa: E402

TILE_IN = 2.1  # inches per image


def _read(path: Path) -> np.ndarray:
    image = np.asarray(Image.open(path))
    return image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)


def samples(root: Path) -> dict[str, list[tuple[str, np.ndarray, np.ndarray | None]]]:
    """Per category: ("normal", image, None), then (type, image, mask) per defect type."""
    out = {}
    for cat, types in DEFECT_TYPES.items():
        rows = [("normal", _read(root / cat / "test" / "good" / "000.png"), None)]
        rows += [(t, _read(root / cat / "test" / t / "000.png"),
                  np.asarray(Image.open(root / cat / "ground_truth" / t / "000_mask.png")) > 127) for t in types]
        out[cat] = rows
    return out


def draw(tiles: dict, out: Path) -> None:
    cols = max(len(v) for v in tiles.values())
    rows = 2 * len(tiles)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * TILE_IN + 1.4, rows * TILE_IN + 0.9), squeeze=False)
    for r, (cat, items) in enumerate(tiles.items()):
        for k, outlined in enumerate((False, True)):
            row = axes[2 * r + k]
            for c, ax in enumerate(row):
                ax.set_xticks([])
                ax.set_yticks([])
                if c >= len(items):
                    ax.set_visible(False)
                    continue
                name, image, mask = items[c]
                ax.imshow(image, interpolation="nearest")
                if outlined and mask is not None:
                    ax.contour(mask.astype(float), levels=[0.5], colors="red", linewidths=0.9)
                if not outlined:
                    ax.set_title(name, fontsize=11)
            what = "mask outlined" if outlined else "as generated"
            row[0].set_ylabel(f"{cat}\n{what}" if not outlined else what, fontsize=11,
                              fontweight="bold" if not outlined else "normal")
    fig.suptitle("The embedded synthetic dataset: one normal and one defective test image per defect type "
                 "(128 px, seed 0)", fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/synthetic_samples.png")
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp), {"n_normal_train": 0, "n_normal_test": 1, "n_anomalous_per_type": 1}, seed=0)
        draw(samples(Path(tmp)), out)
    print(out)


if __name__ == "__main__":
    main()
