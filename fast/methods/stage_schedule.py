"""STAGE's two timestep rules (docs/methods.md, STAGE), written for any schedule length T.

- Explicit mask alignment (EMA): M_t = M + a_t (1 - M), a_t = clip((t - 200) / 800, 0, 1) at
  T = 1000; the breakpoints scale with T (t - 0.2 T) / (0.8 T), so the whole image is editable at
  t = T and the editable region has shrunk to M by t = 0.2 T.
- Graded diffusion: the anomaly-only branch runs for t in [700, 800] and [300, 400] at T = 1000
  (scaled: [0.7 T, 0.8 T] and [0.3 T, 0.4 T], closed intervals); the image branch elsewhere.
"""

from __future__ import annotations

import numpy as np
import torch

PAPER_T = 1000
EMA_START = 200                          # a_t = 0 at and below this t (T = 1000)
GRADED_INTERVALS = ((700, 800), (300, 400))  # anomaly-only branch (T = 1000)


def ema_alpha(t, num_train_timesteps: int = PAPER_T):
    """a_t for a scalar, numpy array or tensor of timesteps (same type back)."""
    scale = num_train_timesteps / PAPER_T
    start, span = EMA_START * scale, (PAPER_T - EMA_START) * scale
    if isinstance(t, torch.Tensor):
        return ((t.to(torch.float64) - start) / span).clamp(0.0, 1.0)
    return np.clip((np.asarray(t, dtype=np.float64) - start) / span, 0.0, 1.0)


def ema_mask(mask: torch.Tensor, t, num_train_timesteps: int = PAPER_T) -> torch.Tensor:
    """M_t = M + a_t (1 - M). ``mask`` (B, 1, H, W) or (1, H, W); ``t`` a scalar or (B,) tensor."""
    a = ema_alpha(torch.as_tensor(t), num_train_timesteps).to(mask.dtype)
    if a.ndim == 1:
        a = a.view(-1, *([1] * (mask.ndim - 1)))
    return mask + a * (1 - mask)


def graded_intervals(num_train_timesteps: int = PAPER_T) -> list[tuple[float, float]]:
    scale = num_train_timesteps / PAPER_T
    return [(lo * scale, hi * scale) for lo, hi in GRADED_INTERVALS]


def uses_anomaly_branch(t: int, num_train_timesteps: int = PAPER_T) -> bool:
    return any(lo <= t <= hi for lo, hi in graded_intervals(num_train_timesteps))
