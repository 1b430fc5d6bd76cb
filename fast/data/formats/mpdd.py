"""MPDD (Jezek et al., ICUMT 2021): 6 metal-part categories in the MVTec layout."""

from fast.data.formats.mvtec_like import categories, scan  # noqa: F401
from fast.data.registry import HALF_MAX, DownloadInfo

# anomalib's MPDD datamodule also has no download record: the data sit in a OneDrive folder.
DOWNLOAD = DownloadInfo(
    url=None, sha256=None,
    note="no stable public URL (OneDrive share https://vutbr-my.sharepoint.com/:f:/g/personal/"
         "xjezek16_vutbr_cz/EhHS_ufVigxDo3MC6Lweau0BVMuoCmhMZj6ddamiQ7-FnA?e=oHKCxI): download it "
         "by hand and pass --source PATH or set $FAST_DATA_DIR",
)
CATEGORIES = ["bracket_black", "bracket_brown", "bracket_white", "connector", "metal_plate", "tubes"]
MASK_THRESHOLD = HALF_MAX
OPTIONS: dict = {}
