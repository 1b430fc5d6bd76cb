"""FARM (Foreground-Aware Reconstruction Module) and the optional epsilon adaptor.

FARM(z_t, M, t) estimates the anomaly-only clean content M * z0 (docs/methods.md, FAST/FARM):
encoder of three [conv3x3-BN-ReLU]x2 stages (``widths``), downsampling by 2 between stages;
sinusoidal tau_t (dim 128) -> Linear added to the encoder output; background-adaptive soft
mask M_soft = M_d + (1 - M_d) sigmoid(f_bg(tau_t)) with f_bg an MLP giving one value per
encoder-grid position; decoder upsampling back to the input grid, concatenating the resized
mask at every scale, output channels = z channels.

Extending: FARM only needs (z channels, z grid size, widths); a new backbone reuses it as is.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers.models.embeddings import get_timestep_embedding

from fast.diffusion.masks import resize_mask

TAU_DIM = 128


def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def timestep_embedding(t: torch.Tensor, dim: int = TAU_DIM) -> torch.Tensor:
    return get_timestep_embedding(t.float().view(-1), dim, flip_sin_to_cos=True, downscale_freq_shift=0)


class FARM(nn.Module):
    def __init__(self, channels: int, grid: tuple[int, int], widths=(64, 128, 256)):
        super().__init__()
        w1, w2, w3 = (int(w) for w in widths)
        if grid[0] % 4 or grid[1] % 4:
            raise ValueError(f"FARM needs a z grid divisible by 4, got {grid}")
        self.grid = (int(grid[0]), int(grid[1]))
        self.enc_grid = (self.grid[0] // 4, self.grid[1] // 4)
        self.enc = nn.ModuleList([
            nn.Sequential(*_conv_bn_relu(channels, w1), *_conv_bn_relu(w1, w1)),
            nn.Sequential(nn.MaxPool2d(2), *_conv_bn_relu(w1, w2), *_conv_bn_relu(w2, w2)),
            nn.Sequential(nn.MaxPool2d(2), *_conv_bn_relu(w2, w3), *_conv_bn_relu(w3, w3)),
        ])
        self.proj = nn.Linear(TAU_DIM, w3)
        n_pos = self.enc_grid[0] * self.enc_grid[1]
        self.f_bg = nn.Sequential(nn.Linear(TAU_DIM, TAU_DIM), nn.SiLU(), nn.Linear(TAU_DIM, n_pos))
        # Decoder: one conv-BN-ReLU per scale on [features, mask at that scale].
        self.dec = nn.ModuleList([
            nn.Sequential(*_conv_bn_relu(w3 + 1, w2)),
            nn.Sequential(*_conv_bn_relu(w2 + 1, w1)),
            nn.Sequential(*_conv_bn_relu(w1 + 1, w1)),
        ])
        self.out = nn.Conv2d(w1, channels, 1)

    def forward(self, z_t: torch.Tensor, mask: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """z_t (B, C, h, w), mask (B, 1, h, w) {0,1} on the z grid, t (B,) -> (B, C, h, w)."""
        t = t.to(z_t.device).view(-1).expand(z_t.shape[0])
        tau = timestep_embedding(t).to(z_t.dtype)
        f = z_t
        for stage in self.enc:
            f = stage(f)
        m_d = resize_mask(mask, self.enc_grid)
        soft = torch.sigmoid(self.f_bg(tau)).view(-1, 1, *self.enc_grid)
        m_soft = m_d + (1.0 - m_d) * soft
        d = m_soft * f + self.proj(tau)[:, :, None, None]
        sizes = [self.enc_grid, (self.grid[0] // 2, self.grid[1] // 2), self.grid]
        for i, (block, size) in enumerate(zip(self.dec, sizes)):
            if i > 0:
                d = F.interpolate(d, size=size, mode="bilinear", align_corners=False)
            d = block(torch.cat([d, resize_mask(mask, size)], dim=1))
        return self.out(d)


class Adaptor(nn.Module):
    """Optional epsilon adaptor (authors' code, not the paper): eps + g([eps, M]); the last conv
    is zero-initialised so that it starts as the identity."""

    def __init__(self, channels: int, hidden: int = 32):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(channels + 1, hidden, 3, padding=1), nn.SiLU(),
                                 nn.Conv2d(hidden, channels, 3, padding=1))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, eps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return eps + self.net(torch.cat([eps, mask.to(eps.dtype)], dim=1))
