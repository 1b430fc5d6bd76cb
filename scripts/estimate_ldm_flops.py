"""FLOPs of the paper's LDM (CompVis/ldm-text2im-large-256: UNet, KL-f8 autoencoder, LDM-BERT) at
256 px, counted with torch.utils.flop_counter on the meta device (no weights, no GPU, seconds on a
CPU). The README's cluster estimate ("Reproduce the papers on a cluster") divides these by an
assumed sustained throughput; replace it with results/<experiment>/benchmarks/*.tsv once jobs ran.

    python scripts/estimate_ldm_flops.py [--batch 8] [--tflops 25]
"""

from __future__ import annotations

import argparse

import torch
from random_ldm import ldm_modules  # scripts/: the paper's layout, one place
from torch.utils.flop_counter import FlopCounterMode

from fast.diffusion.farm import FARM


def tflop(fn) -> float:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / 1e12


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--tflops", type=float, default=25.0, help="assumed sustained TFLOP/s of one GPU")
    args = ap.parse_args()
    b = args.batch
    with torch.device("meta"):  # shapes only: no weights
        vae, bert, unet = ldm_modules("paper")
        z, x = torch.randn(b, 4, 32, 32), torch.randn(b, 3, 256, 256)
        t, h = torch.zeros(b, dtype=torch.long), torch.randn(b, 77, 1280)
        ids = torch.zeros(3, 77, dtype=torch.long)  # one prompt per class (good + 2 defect types)
    params = {n: sum(p.numel() for p in m.parameters()) / 1e6 for n, m in (("unet", unet), ("vae", vae), ("bert", bert))}
    f_unet = tflop(lambda: unet(z, t, encoder_hidden_states=h).sample)
    f_enc = tflop(lambda: vae.encode(x).latent_dist.mean)
    f_dec = tflop(lambda: vae.decode(z).sample)
    f_bert = tflop(lambda: bert(input_ids=ids)[0])
    with torch.device("meta"):
        farm = FARM(4, (32, 32), (64, 128, 256))     # the paper's FARM widths on the 32 x 32 latents
        m = torch.ones(b, 1, 32, 32)
    f_farm = tflop(lambda: farm(z, m, t))
    # a training step with the UNet frozen: encode, UNet forward + backward to its inputs (~1x the
    # forward), text encoder forward + backward; stage adds a second UNet branch, sard the decode of
    # the ~1/4 of the batch its discriminator sees (forward + backward)
    base = f_enc + 2 * f_unet + 2 * f_bert
    steps = {"base/fast/anomalydiffusion": base, "stage": base + 2 * f_unet, "sard": base + 0.25 * 2 * f_dec}
    print("parameters (M):", {k: round(v, 1) for k, v in params.items()})
    print(f"TFLOP at batch {b}: unet forward {f_unet:.2f}, vae encode {f_enc:.2f}, vae decode {f_dec:.2f}, "
          f"bert forward (3 prompts) {f_bert:.2f}")
    for name, f in steps.items():
        print(f"training step {name}: {f:.1f} TFLOP -> {f / args.tflops:.2f} s at {args.tflops:g} TFLOP/s")
    per_image, codec = f_unet / b, (f_enc + f_dec) / b
    print(f"sampling: {per_image:.2f} TFLOP per image and network evaluation, "
          f"+ {codec:.2f} to encode the background and decode (encode {f_enc / b:.2f}, decode {f_dec / b:.2f})")
    print(f"  FARM: {1000 * f_farm / b:.2f} GFLOP per image and call ({100 * f_farm / f_unet:.2f} % of a UNet forward)")
    for nfe in (12, 50, 1000):
        print(f"  NFE {nfe}: encode + decode = {100 * codec / (nfe * per_image):.1f} % of the UNet's work")


if __name__ == "__main__":
    main()
