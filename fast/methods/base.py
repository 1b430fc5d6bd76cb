"""The synthesis-method interface shared by every entry of the registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from fast import catalog
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


# Kinds of method option values (SynthesisMethod.OPTIONS), as a message says them; a tuple of
# values instead of a kind: one of those values.
NUMBER, INTEGER, BOOLEAN, TEXT, TEXT_OR_NULL, ANY = (
    "a number", "an integer", "true or false", "a string", "a string or null", "any value")


def kind_of_default(default) -> str:
    """The kind of an option whose default is ``default`` (bool before int: a bool is an int)."""
    for kind, types in ((BOOLEAN, bool), (INTEGER, int), (NUMBER, float), (TEXT, str)):
        if isinstance(default, types):
            return kind
    return ANY


def value_problem(value, kind) -> str | None:
    """What ``value`` should be instead, or None when it is of ``kind``."""
    if isinstance(kind, tuple):
        return None if value in kind else f"one of {list(kind)}"
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = {NUMBER: is_number, INTEGER: is_number and float(value).is_integer(),
          BOOLEAN: isinstance(value, bool), TEXT: isinstance(value, str),
          TEXT_OR_NULL: value is None or isinstance(value, str), ANY: True}[kind]
    return None if ok else kind


# What a method yields per request: the image (uint8, same shape as the background), exactly the
# mask that labels it (uint8 {0, 1}, (H, W)) and metadata for the manifest (e.g. {"nfe": 12}).
Synthesized = tuple[np.ndarray, np.ndarray, dict]


class SynthesisMethod(ABC):
    """A synthesis method. ``cfg`` is the full validated experiment config; method-specific
    options come from ``cfg["method_options"][name]``."""

    # name, description, generator and departures of a method in the catalog come from its record
    # (fast.catalog); a class outside the catalog sets them itself
    name: str = ""
    description: str = ""
    generator: str | None = None        # trained generator it samples from; None: training-free
    uses_pool_masks: bool = True        # False: defines its own footprint (cutpaste, draem, nsa)
    # Where this implementation departs from the method's paper, one line, shown by `fast methods`
    # (the report states it too, so that a reader knows what exactly was compared).
    departures: str = ""
    # The method_options keys this method reads and the kind of each value: a config setting
    # another key, or a value of another kind, is refused when it loads (fast.config), before any
    # job runs, instead of failing (or being cast silently) deep inside one.
    OPTIONS: dict[str, object] = {}

    def __init__(self, cfg: dict, name: str | None = None):
        self.cfg = cfg
        if name:
            self.name = name
        found = catalog.find(self.name)
        if found is not None:
            self.description, self.departures = found.description, found.departures
            self.generator = getattr(found, "generator", found.name)   # a Generator trains itself
        self.options = dict(cfg.get("method_options", {}).get(self.name, {}))

    def known_options(self) -> dict[str, object]:
        """{option: kind} this method reads (OPTIONS; diffusion methods add their sampler's)."""
        return dict(self.OPTIONS)

    def options_problem(self) -> str | None:
        """Why ``method_options.<name>`` does not fit this method, or None."""
        known = self.known_options()
        for key, value in self.options.items():
            where = f"method_options.{self.name}.{key}"
            if key not in known:
                return (f"{where}: method {self.name!r} has no option {key!r}; its options: "
                        f"{', '.join(sorted(known)) or 'none'}")
            should = value_problem(value, known[key])
            if should:
                return f"{where} {value!r}: must be {should}"
        return None

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
