"""The `ldm` backbone offline: a tiny randomly initialised latent diffusion model in the
CompVis/ldm-text2im-large-256 diffusers layout, built and saved by the test itself."""

from __future__ import annotations

import json

import numpy as np
import pytest
from generators import fit_generator
import torch
from safetensors.torch import load_file

from fast.config import load_config
from fast.data.manifest import PreparedCategory, manifest_path
from fast.diffusion.backbones import LDMBackbone
from fast.methods import SynthesisRequest, build_method

WORDS = ["a", "photo", "of", "defect", "scratch", "the"]


@pytest.fixture(scope="module")
def tiny_ldm(tmp_path_factory):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.pipelines.latent_diffusion.pipeline_latent_diffusion import LDMBertConfig, LDMBertModel
    from transformers import BertTokenizer

    root = tmp_path_factory.mktemp("tiny_ldm")
    torch.manual_seed(0)
    AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                  up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), latent_channels=4,
                  norm_num_groups=4, sample_size=32).save_pretrained(root / "vqvae")
    LDMBertModel(LDMBertConfig(vocab_size=len(WORDS) + 5, max_position_embeddings=12, encoder_layers=1,
                               encoder_ffn_dim=32, encoder_attention_heads=2, head_dim=8, d_model=16)
                 ).save_pretrained(root / "bert")
    vocab = root / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    BertTokenizer(str(vocab)).save_pretrained(root / "tokenizer")
    UNet2DConditionModel(sample_size=16, in_channels=4, out_channels=4, block_out_channels=(16, 32),
                         down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                         up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), layers_per_block=1,
                         cross_attention_dim=16, attention_head_dim=4, norm_num_groups=8
                         ).save_pretrained(root / "unet")
    return root


def test_ldm_backbone_loads_offline_and_trains_only_the_tokens(tiny_ldm):
    bb = LDMBackbone(str(tiny_ldm), num_classes=3, resolution=32, num_vectors=2, init_token="defect")
    assert bb.latent_shape() == (4, 16, 16)
    params = bb.trainable_parameters()
    assert len(params) == 1 and params[0].shape == (3, 2, 16)
    assert not any(p.requires_grad for p in bb.unet.parameters())
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    z = bb.encode(x)
    assert z.shape == (2, 4, 16, 16)
    assert bb.decode(z).shape == (2, 3, 32, 32)
    bb.train()
    e = bb.eps(z, torch.tensor([10, 500]), torch.tensor([0, 2]))
    e.square().mean().backward()
    assert params[0].grad is not None and params[0].grad[1].abs().sum() == 0  # class 1 unused
    assert params[0].grad[0].abs().sum() > 0 and params[0].grad[2].abs().sum() > 0
    # different classes give different text conditions
    bb.eval()
    h = bb.text_embeddings()
    with torch.no_grad():
        bb.token_embeds[1] += 1.0
    bb.train()
    bb.eval()
    assert not torch.allclose(h[1], bb.text_embeddings()[1]) and torch.allclose(h[0], bb.text_embeddings()[0])


def test_ldm_fast_fit_and_synthesize(tiny_ldm, synthetic_prepared, tmp_path):
    cfg = load_config({
        "experiment": "t", "datasets": {"synthetic": {"categories": ["brushed_metal"]}}, "methods": ["fast"],
        "resolution": 32, "device": "cpu",
        "diffusion": {"backbone": "ldm", "pretrained": str(tiny_ldm), "num_train_timesteps": 50,
                      "beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012,
                      "farm": {"widths": [8, 8, 16]},
                      "train": {"steps": 2, "finetune_steps": 2, "batch_size": 2, "checkpoint_every": 10}},
        "aias": {"steps": 4},
    })
    prepared = PreparedCategory.load(manifest_path(synthetic_prepared, "synthetic", "brushed_metal"))
    fit_generator("fast", cfg, prepared, tmp_path / "gen")   # from the shared base (textual inversion)
    state = load_file(str(tmp_path / "gen" / "model.safetensors"))
    # only the learned tokens and FARM are stored; the frozen LDM is reloaded from `pretrained`
    assert "backbone.token_embeds" in state and any(k.startswith("farm.") for k in state)
    assert not any(k.startswith(("backbone.unet.", "backbone.vae.", "backbone.bert.")) for k in state)
    spec = json.loads((tmp_path / "gen" / "config.json").read_text())
    assert spec["backbone"]["kind"] == "ldm" and spec["backbone"]["pretrained"] == str(tiny_ldm)
    m = build_method("fast", cfg)
    m.load(tmp_path / "gen")
    bg_row = prepared.rows("normal_train").iloc[0]
    m_row = prepared.rows("gen_train").iloc[0]
    req = SynthesisRequest(prepared.load_image(bg_row), prepared.load_mask(m_row), m_row["anomaly_type"], "b", "m")
    (img, mask, meta), = m.synthesize([req], seed=0)
    assert img.shape == req.background.shape == (32, 32, 1) and meta["nfe"] == 6
    assert np.array_equal(img[mask == 0], req.background[mask == 0])
    (img2, _, _), = m.synthesize([req], seed=0)
    assert np.array_equal(img, img2)
