"""The paper's LDM (CompVis/ldm-text2im-large-256: KL-f8 autoencoder, LDM-BERT, UNet) in the
diffusers layout with random weights, or the same layout at toy size: what the GPU check and the
FLOP estimate measure (speed, memory and FLOPs are those of the real model; samples are not).

    python scripts/random_ldm.py OUT_DIR [paper|toy]   # writes vqvae/, bert/, unet/, tokenizer/
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.pipelines.latent_diffusion.pipeline_latent_diffusion import LDMBertConfig, LDMBertModel

WORDS = ["a", "photo", "of", "defect", "crack", "hole", "stain", "scratch", "good", "the"]


def ldm_modules(size: str = "paper") -> tuple[AutoencoderKL, LDMBertModel, UNet2DConditionModel]:
    """(autoencoder, text encoder, UNet) with random weights on the current default device."""
    if size == "paper":  # the diffusers configs of CompVis/ldm-text2im-large-256
        vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                            up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(128, 256, 512, 512),
                            layers_per_block=2, latent_channels=4, sample_size=256)
        bert = LDMBertModel(LDMBertConfig(vocab_size=30522, max_position_embeddings=77, encoder_layers=32,
                                          encoder_ffn_dim=5120, encoder_attention_heads=8, head_dim=64,
                                          d_model=1280))
        unet = UNet2DConditionModel(sample_size=32, in_channels=4, out_channels=4,
                                    block_out_channels=(320, 640, 1280, 1280),
                                    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                                    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
                                    layers_per_block=2, cross_attention_dim=1280, attention_head_dim=8)
        return vae, bert, unet
    # toy size (as tests/test_diffusion_ldm.py)
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), latent_channels=4,
                        norm_num_groups=4, sample_size=32)
    bert = LDMBertModel(LDMBertConfig(vocab_size=len(WORDS) + 5, max_position_embeddings=12, encoder_layers=1,
                                      encoder_ffn_dim=32, encoder_attention_heads=2, head_dim=8, d_model=16))
    unet = UNet2DConditionModel(sample_size=16, in_channels=4, out_channels=4, block_out_channels=(16, 32),
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), layers_per_block=1,
                                cross_attention_dim=16, attention_head_dim=4, norm_num_groups=8)
    return vae, bert, unet


def main(root: Path, size: str) -> None:
    from transformers import BertTokenizer

    t0 = time.time()
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        vae, bert, unet = ldm_modules(size)
    for name, model in (("vqvae", vae), ("bert", bert), ("unet", unet)):
        model.save_pretrained(root / name)
    vocab = root / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    BertTokenizer(str(vocab)).save_pretrained(root / "tokenizer")
    params = {n: round(sum(p.numel() for p in m.parameters()) / 1e6, 1)
              for n, m in (("unet", unet), ("vae", vae), ("bert", bert))}
    print(f"random LDM ({size}) at {root}: {params} M parameters, {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "paper")
