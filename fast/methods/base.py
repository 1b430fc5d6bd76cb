"""The synthesis-method interface shared by every entry of the registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from fast.data.manifest import PreparedCategory


@dataclass
class SynthesisRequest:
    """One image to synthesise: an anomaly of ``anomaly_type`` in ``mask`` on ``background``."""

    background: np.ndarray  # uint8 (H, W, C), a normal_train image at the experiment resolution
    mask: np.ndarray        # uint8 (H, W) in {0, 1}, drawn from the shared mask pool
    anomaly_type: str
    source_normal: str      # manifest-relative path of the background image
    mask_source: str        # where the mask came from (pool entry + augmentation), for the manifest
    extra: dict = field(default_factory=dict)


# What a method yields per request: the image (uint8, same shape as the background), exactly the
# mask that labels it (uint8 {0, 1}, (H, W)) and metadata for the manifest (e.g. {"nfe": 12}).
Synthesized = tuple[np.ndarray, np.ndarray, dict]


class SynthesisMethod(ABC):
    """A synthesis method. ``cfg`` is the full validated experiment config; method-specific
    options come from ``cfg["method_options"][name]``."""

    name: str = ""
    description: str = ""
    generator: str | None = None        # trained generator it samples from; None: training-free
    uses_pool_masks: bool = True        # False: defines its own footprint (cutpaste, draem, nsa)
    # Where this implementation departs from the method's paper, one line, shown by `fast methods`
    # (the report states it too, so that a reader knows what exactly was compared).
    departures: str = ""

    def __init__(self, cfg: dict, name: str | None = None):
        self.cfg = cfg
        if name:
            self.name = name
        self.options = dict(cfg.get("method_options", {}).get(self.name, {}))

    def fit(self, train_set: PreparedCategory, out_dir: Path) -> None:
        """Train this method's generator into ``out_dir`` (model.safetensors + config.json).
        Only called for methods whose ``generator == name``."""
        raise NotImplementedError(f"method {self.name!r} has nothing to train")

    def load(self, generator_dir: Path | None) -> None:
        """Load the trained generator (no-op for training-free methods)."""

    def prepare(self, train_set: PreparedCategory) -> None:
        """Read what the method needs from the category's training splits (gen_train /
        normal_train only, never a test split); called once before synthesize. Default: nothing."""

    @abstractmethod
    def synthesize(self, requests: Sequence[SynthesisRequest], seed: int) -> Iterator[Synthesized]:
        """Yield one (image, mask, meta) per request, deterministically given ``seed``."""
