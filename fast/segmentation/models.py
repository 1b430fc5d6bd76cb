"""Downstream segmenters: segmentation-models-pytorch architectures by registry name.

A plain registry like smp's own: name -> (smp class, encoder). Binary output (one logit channel).
Inputs of any size are reflect-padded to the architecture's multiple of 32 and the output cropped
back, so odd sizes (e.g. 100x150) never crash the encoder-decoder skip connections.
"""

from __future__ import annotations

import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from torch import nn

from fast.errors import FastError

# name -> (architecture, encoder) (docs/protocol.md, downstream segmentation)
SEGMENTERS: dict[str, tuple[type[nn.Module], str]] = {
    "segformer": (smp.Segformer, "mit_b0"),
    "unet": (smp.Unet, "resnet18"),
    "deeplabv3plus": (smp.DeepLabV3Plus, "resnet18"),
}
SIZE_MULTIPLE = 32


class PadToMultiple(nn.Module):
    """Reflect-pad (N, C, H, W) to a multiple of ``multiple``, run ``net``, crop the output back."""

    def __init__(self, net: nn.Module, multiple: int = SIZE_MULTIPLE):
        super().__init__()
        self.net = net
        self.multiple = multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.multiple, (-w) % self.multiple
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        return self.net(x)[..., :h, :w]


def build_segmenter(name: str, in_channels: int, encoder_weights: str | None = None,
                    seed: int = 0) -> nn.Module:
    """The registered architecture with one output logit; weights initialised from ``seed``
    (inside a forked RNG, so the caller's global torch RNG state is untouched)."""
    if name not in SEGMENTERS:
        raise FastError(f"unknown segmenter {name!r} (config segmentation.segmenters); "
                        f"known: {', '.join(SEGMENTERS)}")
    arch, encoder = SEGMENTERS[name]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            net = arch(encoder_name=encoder, encoder_weights=encoder_weights,
                       in_channels=in_channels, classes=1)
        except (OSError, RuntimeError, ValueError, KeyError) as exc:
            raise FastError(f"cannot build segmenter {name} ({encoder}, encoder_weights="
                            f"{encoder_weights!r}): {exc}. Offline, set segmentation.encoder_weights: null."
                            ) from None
    return PadToMultiple(net)
