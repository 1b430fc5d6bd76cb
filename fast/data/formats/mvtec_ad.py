"""MVTec AD (Bergmann et al., CVPR 2019 / IJCV 2021): 15 categories, MVTec layout."""

from fast.data.formats.mvtec_like import categories, scan  # noqa: F401
from fast.data.registry import HALF_MAX, DownloadInfo

# URL and checksum as in anomalib's MVTecAD datamodule (open-edge-platform/anomalib,
# src/anomalib/data/datamodules/image/mvtecad.py).
DOWNLOAD = DownloadInfo(
    url="https://www.mydrive.ch/shares/38536/3830184030e49fe74747669442f0f283/"
        "download/420938113-1629960298/mvtec_anomaly_detection.tar.xz",
    sha256="cf4313b13603bec67abb49ca959488f7eedce2a9f7795ec54446c649ac98cd3d",
    filename="mvtec_anomaly_detection.tar.xz",
)
CATEGORIES = ["bottle", "cable", "capsule", "carpet", "grid", "hazelnut", "leather", "metal_nut",
              "pill", "screw", "tile", "toothbrush", "transistor", "wood", "zipper"]
MASK_THRESHOLD = HALF_MAX
OPTIONS: dict = {}
