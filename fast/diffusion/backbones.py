"""Diffusion backbones behind one interface: encode, decode, eps(z_t, t, cond), trainable_parameters().

- ``pixel``: a diffusers ``UNet2DModel`` trained from scratch in pixel space, class-conditional
  (``num_class_embeddings``; ``good`` is one of the classes). encode/decode are the identity on
  images scaled to [-1, 1]; x0 predictions may be clipped to [-1, 1].
- ``ldm``: the paper's setup, a pretrained latent diffusion model in diffusers format
  (CompVis/ldm-text2im-large-256 layout: ``vqvae/`` (AutoencoderKL or VQModel), ``bert/``
  (LDMBertModel), ``tokenizer/``, ``unet/`` (UNet2DConditionModel)), everything frozen; each class
  is taught by textual inversion: ``num_vectors`` learned embedding vectors per class placed after
  the prompt prefix "a photo of a".

``cond`` is always a LongTensor of class indices (B,) into ``class_names``. ``mask`` (B, 1, h, w)
on the z grid and ``bg`` (the clean background in z space) are the spatial condition: the pixel
backbone with ``mask_channels`` takes M and (1 - M) bg as extra input channels (as inpainting UNets
do; the from-scratch counterpart of AnomalyDiffusion's spatial embedding), so it knows where the
defect goes and what surrounds it. The ldm backbone's pretrained UNet has no such inputs.

Extending: subclass :class:`Backbone`, implement the five methods plus ``spec()`` (a JSON dict that
``build_backbone`` turns back into the same module) and ``latent_shape``, and register the kind in
``build_backbone``. Set ``frozen_prefixes`` to the state-dict prefixes that need not be saved.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn as nn

from fast.errors import FastError


class Backbone(nn.Module):
    kind: str = ""
    x0_clip: tuple[float, float] | None = None
    frozen_prefixes: tuple[str, ...] = ()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] (B, C, H, W) -> z."""
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z -> images in [-1, 1] (B, C, H, W)."""
        raise NotImplementedError

    def eps(self, z_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor,
            mask: torch.Tensor | None = None, bg: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def latent_shape(self) -> tuple[int, int, int]:
        raise NotImplementedError

    def spec(self) -> dict:
        raise NotImplementedError


def _groups(widths) -> int:
    g = 0
    for w in widths:
        g = math.gcd(g, int(w))
    return max(1, min(32, g))


class PixelBackbone(Backbone):
    kind = "pixel"
    x0_clip = (-1.0, 1.0)

    def __init__(self, channels: int, resolution: int, num_classes: int,
                 block_out_channels=(32, 64, 64), layers_per_block: int = 1, mask_channels: bool = False):
        super().__init__()
        from diffusers import UNet2DModel

        self.channels, self.resolution, self.num_classes = int(channels), int(resolution), int(num_classes)
        self.block_out_channels = [int(c) for c in block_out_channels]
        self.layers_per_block = int(layers_per_block)
        self.mask_channels = bool(mask_channels)
        n = len(self.block_out_channels)
        in_channels = 2 * self.channels + 1 if self.mask_channels else self.channels
        self.unet = UNet2DModel(
            sample_size=self.resolution, in_channels=in_channels, out_channels=self.channels,
            block_out_channels=tuple(self.block_out_channels), layers_per_block=self.layers_per_block,
            down_block_types=("DownBlock2D",) * n, up_block_types=("UpBlock2D",) * n,
            norm_num_groups=_groups(self.block_out_channels), num_class_embeds=self.num_classes,
        )

    def encode(self, x):
        return x

    def decode(self, z):
        return z

    def eps(self, z_t, t, cond, mask=None, bg=None):
        t = t.to(z_t.device).view(-1).expand(z_t.shape[0])
        if self.mask_channels:
            if mask is None or bg is None:
                raise ValueError("this pixel backbone is mask-aware: eps() needs mask and bg")
            mask = mask.to(z_t.dtype)
            z_t = torch.cat([z_t, mask, (1 - mask) * bg], dim=1)
        return self.unet(z_t, t, class_labels=cond.to(z_t.device)).sample

    def latent_shape(self):
        return (self.channels, self.resolution, self.resolution)

    def spec(self):
        return {"kind": self.kind, "channels": self.channels, "resolution": self.resolution,
                "num_classes": self.num_classes, "block_out_channels": self.block_out_channels,
                "layers_per_block": self.layers_per_block, "mask_channels": self.mask_channels}


class LDMBackbone(Backbone):
    kind = "ldm"
    frozen_prefixes = ("vae.", "bert.", "unet.")
    prompt_prefix = "a photo of a"

    def __init__(self, pretrained: str, num_classes: int, resolution: int, channels: int = 3,
                 num_vectors: int = 2, init_token: str | None = None):
        super().__init__()
        from diffusers import AutoencoderKL, UNet2DConditionModel, VQModel
        from diffusers.pipelines.latent_diffusion.pipeline_latent_diffusion import LDMBertModel
        from transformers import AutoTokenizer

        self.pretrained, self.num_classes = str(pretrained), int(num_classes)
        self.resolution, self.channels, self.num_vectors = int(resolution), int(channels), int(num_vectors)
        root = Path(self.pretrained)
        src = str(root) if root.exists() else self.pretrained
        try:
            vae_cfg = AutoencoderKL.load_config(src, subfolder="vqvae")
            vae_cls = VQModel if vae_cfg.get("_class_name") == "VQModel" else AutoencoderKL
            self.vae = vae_cls.from_pretrained(src, subfolder="vqvae")
            self.bert = LDMBertModel.from_pretrained(src, subfolder="bert")
            self.tokenizer = AutoTokenizer.from_pretrained(src, subfolder="tokenizer")
            self.unet = UNet2DConditionModel.from_pretrained(src, subfolder="unet")
        except (OSError, ValueError) as exc:
            raise FastError(f"diffusion.pretrained={self.pretrained!r}: cannot load a latent diffusion "
                            f"model in diffusers format (vqvae/, bert/, tokenizer/, unet/): {exc}") from None
        for m in (self.vae, self.bert, self.unet):
            m.requires_grad_(False)
            m.eval()
        self.scaling = float(getattr(self.vae.config, "scaling_factor", 1.0) or 1.0)
        self.is_vq = vae_cls is VQModel
        emb = self.bert.model.embed_tokens.weight
        # Textual inversion: initialise every placeholder vector from one word (or the mean token).
        ids = self.tokenizer(init_token, add_special_tokens=False)["input_ids"] if init_token else []
        init = emb[ids[0]] if ids else emb.mean(0)
        self.token_embeds = nn.Parameter(init.detach().clone().repeat(self.num_classes, self.num_vectors, 1))
        self._cache: torch.Tensor | None = None

    def train(self, mode: bool = True):
        super().train(mode)
        for m in (self.vae, self.bert, self.unet):  # frozen parts stay in eval mode
            m.eval()
        self._cache = None
        return self

    def trainable_parameters(self):
        return [self.token_embeds]

    def _prompt_ids(self) -> tuple[torch.Tensor, int]:
        tok = self.tokenizer
        prefix = tok(self.prompt_prefix, add_special_tokens=False)["input_ids"]
        length = int(self.bert.config.max_position_embeddings)
        cls_id = tok.cls_token_id if tok.cls_token_id is not None else tok.bos_token_id
        sep_id = tok.sep_token_id if tok.sep_token_id is not None else tok.eos_token_id
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
        ids = [cls_id, *prefix] if cls_id is not None else list(prefix)
        start = len(ids)
        ids += [pad_id] * self.num_vectors + ([sep_id] if sep_id is not None else [])
        ids += [pad_id] * (length - len(ids))
        return torch.tensor(ids[:length]), start

    def text_embeddings(self) -> torch.Tensor:
        """(num_classes, L, d) encoder hidden states of "a photo of a <class tokens>"."""
        if self._cache is not None and not self.training:
            return self._cache
        ids, start = self._prompt_ids()
        ids = ids.to(self.token_embeds.device)
        base = self.bert.model.embed_tokens(ids)[None].expand(self.num_classes, -1, -1)
        emb = torch.cat([base[:, :start], self.token_embeds, base[:, start + self.num_vectors:]], dim=1)
        out = self.bert(inputs_embeds=emb)[0]
        if not self.training:
            self._cache = out.detach()
        return out

    @torch.no_grad()
    def encode(self, x):
        if x.shape[1] == 1:  # grayscale data through an RGB autoencoder
            x = x.repeat(1, 3, 1, 1)
        enc = self.vae.encode(x)
        z = enc.latents if self.is_vq else enc.latent_dist.mean
        return z * self.scaling

    def decode(self, z):
        # The VAE is frozen (requires_grad False) but gradients must still flow through it to z:
        # SARD's adversarial term on decoded images trains the generator through this call.
        x = self.vae.decode(z / self.scaling).sample.clamp(-1, 1)
        return x.mean(1, keepdim=True) if self.channels == 1 else x

    def eps(self, z_t, t, cond, mask=None, bg=None):
        t = t.to(z_t.device).view(-1).expand(z_t.shape[0])
        hidden = self.text_embeddings()[cond.to(z_t.device)]
        return self.unet(z_t, t, encoder_hidden_states=hidden).sample

    def latent_shape(self):
        f = 2 ** (len(self.vae.config.block_out_channels) - 1)
        return (int(self.vae.config.latent_channels), self.resolution // f, self.resolution // f)

    def spec(self):
        return {"kind": self.kind, "pretrained": self.pretrained, "num_classes": self.num_classes,
                "resolution": self.resolution, "channels": self.channels, "num_vectors": self.num_vectors}


def build_backbone(spec: dict) -> Backbone:
    """Rebuild a backbone from its ``spec()`` dict (the ``backbone`` entry of config.json)."""
    spec = dict(spec)
    kind = spec.pop("kind")
    if kind == "pixel":
        return PixelBackbone(**spec)
    if kind == "ldm":
        return LDMBackbone(**spec)
    raise FastError(f"unknown diffusion backbone {kind!r}; expected pixel or ldm")


def model_resolution(cfg: dict) -> int:
    """The side the generator works at: the window ``diffusion.patch``, else the whole image."""
    patch = cfg["diffusion"].get("patch")
    return int(patch) if patch else int(cfg["resolution"])


def backbone_spec_from_config(cfg: dict, channels: int, num_classes: int) -> dict:
    """The backbone spec for an experiment config (diffusion.backbone, resolution/patch, unet/ldm keys)."""
    d = cfg["diffusion"]
    if d["backbone"] == "pixel":
        return {"kind": "pixel", "channels": channels, "resolution": model_resolution(cfg),
                "num_classes": num_classes, "block_out_channels": list(d["unet"]["block_out_channels"]),
                "layers_per_block": int(d["unet"]["layers_per_block"]),
                "mask_channels": bool(d["mask_channels"])}
    if not d.get("pretrained"):
        raise FastError("diffusion.backbone is 'ldm' but diffusion.pretrained is not set "
                        "(a local diffusers directory or hub id such as CompVis/ldm-text2im-large-256)")
    return {"kind": "ldm", "pretrained": d["pretrained"], "num_classes": num_classes,
            "resolution": model_resolution(cfg), "channels": channels,
            "num_vectors": int(d["ldm"]["num_vectors"])}
