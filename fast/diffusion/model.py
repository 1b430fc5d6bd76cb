"""DiffusionModel: what samplers and training losses see (backbone + optional FARM/adaptor + schedule).

A trained generator directory holds ``model.safetensors`` (the state dict without the frozen
pretrained parts) and ``config.json`` (``spec()``: method, backbone spec, class names, schedule,
FARM widths, adaptor, extra). ``DiffusionModel.load(dir)`` rebuilds it exactly.

Extending (e.g. STAGE/SARD): add submodules to ``extra_modules`` (an ``nn.ModuleDict``; saved and
loaded with the model) and describe how to rebuild them in ``spec["extra"]`` via a builder
registered with :func:`register_extra_builder`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from fast.diffusion.backbones import Backbone, build_backbone
from fast.diffusion.extras import BUILDERS as EXTRA_BUILDERS
from fast.diffusion.farm import FARM, Adaptor
from fast.diffusion.schedule import Schedule, q_sample
from fast.errors import FastError

# the built-in extra modules (STAGE, SARD) are known without importing their method modules
_EXTRA_BUILDERS: dict[str, Callable[[dict, "DiffusionModel"], nn.Module]] = dict(EXTRA_BUILDERS)


def register_extra_builder(name: str, builder: Callable[[dict, "DiffusionModel"], nn.Module]) -> None:
    """``builder(spec_of_that_module, model) -> nn.Module`` rebuilds ``extra_modules[name]``."""
    _EXTRA_BUILDERS[name] = builder


class DiffusionModel(nn.Module):
    def __init__(self, backbone: Backbone, schedule: Schedule, class_names: list[str], method: str,
                 farm_widths=None, adaptor: bool = False, extra: dict | None = None, patch: int | None = None):
        super().__init__()
        self.backbone, self.schedule, self.method = backbone, schedule, method
        # patch: the model works on windows of this side cut around the mask (fast.data.windows);
        # None: on whole images resized to the backbone's resolution.
        self.patch = int(patch) if patch else None
        self.class_names = list(class_names)
        c, h, w = backbone.latent_shape()
        self.farm = FARM(c, (h, w), farm_widths) if farm_widths else None
        self.farm_widths = list(farm_widths) if farm_widths else None
        self.adaptor = Adaptor(c) if adaptor else None
        self.extra_spec = dict(extra or {})
        self.extra_modules = nn.ModuleDict()
        for name, sub in self.extra_spec.items():
            if name not in _EXTRA_BUILDERS:
                raise FastError(f"config.json: no builder registered for extra module {name!r}")
            self.extra_modules[name] = _EXTRA_BUILDERS[name](sub, self)

    # -- what samplers use -------------------------------------------------------------------
    @property
    def x0_clip(self):
        return self.backbone.x0_clip

    def latent_shape(self) -> tuple[int, int, int]:
        return self.backbone.latent_shape()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.encode(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.backbone.decode(z)

    def cond_index(self, names) -> torch.Tensor:
        missing = [n for n in names if n not in self.class_names]
        if missing:
            raise FastError(f"anomaly types {sorted(set(missing))} unknown to this generator "
                            f"(trained on {self.class_names}); retrain it for this category")
        return torch.tensor([self.class_names.index(n) for n in names], dtype=torch.long)

    def eps(self, z_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, mask: torch.Tensor | None = None,
            bg: torch.Tensor | None = None):
        """Epsilon prediction given the z-grid mask and the clean background ``bg`` in z space (a
        mask-aware backbone sees M and (1 - M) bg; the adaptor sees M)."""
        t = torch.as_tensor(t, device=z_t.device).view(-1).expand(z_t.shape[0])
        e = self.backbone.eps(z_t, t, cond, mask, bg)
        if self.adaptor is not None:
            m = mask if mask is not None else torch.zeros_like(z_t[:, :1])
            e = self.adaptor(e, m)
        return e

    def inject(self, z_t: torch.Tensor, mask: torch.Tensor, t: torch.Tensor, noise: torch.Tensor,
               abar_t) -> torch.Tensor:
        """FARM injection zhat = (1 - M) z_t + M (sqrt(abar_t) F(z_t, M, t) + sqrt(1 - abar_t) noise)."""
        if self.farm is None:
            return z_t
        t = torch.as_tensor(t, device=z_t.device).view(-1).expand(z_t.shape[0])
        f = self.farm(z_t, mask, t)
        return (1 - mask) * z_t + mask * q_sample(f, noise, abar_t)

    # -- persistence ---------------------------------------------------------------------------
    def spec(self) -> dict:
        return {"method": self.method, "backbone": self.backbone.spec(), "class_names": self.class_names,
                "schedule": self.schedule.as_dict(), "farm_widths": self.farm_widths,
                "adaptor": self.adaptor is not None, "extra": self.extra_spec, "patch": self.patch}

    @classmethod
    def from_spec(cls, spec: dict) -> "DiffusionModel":
        return cls(build_backbone(spec["backbone"]), Schedule(**spec["schedule"]), spec["class_names"],
                   spec["method"], spec.get("farm_widths"), bool(spec.get("adaptor")), spec.get("extra"),
                   spec.get("patch"))

    def saved_state_dict(self) -> dict[str, torch.Tensor]:
        """State dict without the frozen pretrained parts (they are reloaded from ``pretrained``)."""
        skip = tuple("backbone." + p for p in self.backbone.frozen_prefixes)
        return {k: v.detach().contiguous() for k, v in self.state_dict().items() if not k.startswith(skip)}

    def load_saved_state(self, state: dict[str, torch.Tensor]) -> None:
        missing, unexpected = self.load_state_dict(state, strict=False)
        skip = tuple("backbone." + p for p in self.backbone.frozen_prefixes)
        missing = [k for k in missing if not k.startswith(skip)]
        if missing or unexpected:
            raise FastError(f"model state does not match its config.json (missing {missing[:3]}, "
                            f"unexpected {unexpected[:3]}); retrain the generator")

    @classmethod
    def load(cls, generator_dir: str | Path, device: str | torch.device = "cpu") -> "DiffusionModel":
        from fast.io import read_weights

        d = Path(generator_dir)
        if not (d / "config.json").is_file() or not (d / "model.safetensors").is_file():
            raise FastError(f"{d}: not a trained generator (needs model.safetensors and config.json; "
                            f"run `fast train` first)")
        spec = json.loads((d / "config.json").read_text())
        model = cls.from_spec(spec["model"] if "model" in spec else spec)
        model.load_saved_state(read_weights(d / "model.safetensors", f"`fast train ... --out {d}`"))
        return model.to(device).eval()
