"""`fast bench sampling`: images/s and NFE of the FAST samplers on one model, in one run (a stage driver).

Uses a trained `fast` generator (--generator-dir) or, without one, a freshly initialised model of
the configured size (sampling cost does not depend on the weights). Prints a table (NFE, images/s,
seconds per network evaluation and its ratio to one bare UNet forward of the same batch, so the
sampler's own overhead is visible) and the ratios: AIAS-10 vs DDPM-1000, AIAS's per-step overhead
against DDIM's at equal NFE (both without FARM), and the per-step FARM overhead; --json writes them.
The frontier solvers (DPM-Solver++ 2M, UniPC, DEIS, DDIM, AIAS with paper coefficients) run at
NFE 12, AIAS-10's own.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch

from fast.catalog import BENCH, FAST, FULL_DDPM, NOFARM, sweep_name
from fast.errors import FastError

BENCH_METHODS = [*BENCH[:2], NOFARM_DDIM := f"{sweep_name('ddim', 12)} (no FARM)", *BENCH[2:]]


def _config(path):
    from fast.config import load_config

    if path:
        return load_config(path)
    default = Path("config/config.yaml")
    if default.is_file():
        return load_config(default)
    return load_config({"experiment": "bench", "datasets": {"synthetic": {"categories": ["fabric"]}},
                        "methods": [FAST]})


def _requests(model, n: int, seed: int = 0):
    from fast.methods import SynthesisRequest

    rng = np.random.default_rng(seed)
    res, c = model.backbone.resolution, model.backbone.channels
    types = [t for t in model.class_names if t != "good"] or model.class_names
    reqs = []
    for i in range(n):
        bg = rng.integers(0, 256, (res, res, c), dtype=np.uint8)
        m = np.zeros((res, res), np.uint8)
        y, x = rng.integers(0, res // 2, 2)
        m[y:y + res // 4, x:x + res // 3] = 1
        reqs.append(SynthesisRequest(bg, m, types[i % len(types)], f"bench/{i}", "bench"))
    return reqs


def measure(cfg: dict, model, n_images: int, methods=BENCH_METHODS, repeats: int = 5) -> dict:
    """{method: {"nfe", "images_per_s", "seconds"}} plus the ratios (see module docstring)."""
    from fast.methods import build_method

    reqs = _requests(model, n_images)
    built = {}
    for name in methods:
        m = build_method(name.split(" ")[0], cfg)
        if name == NOFARM_DDIM:
            m.options["farm"] = False   # DDIM's bare per-step cost, to compare AIAS's with
        m.model = model
        m.options["batch_size"] = n_images
        if name != FULL_DDPM:  # warm-up (allocations, the samplers' cached plans)
            list(m.synthesize(reqs[:1], seed=0))
        built[name] = m
    # Interleave the repeats of the cheap methods and keep the best time of each, so that load
    # from other processes on a shared machine biases no method in particular. `fast` and
    # `fast-nofarm` run back to back (keep them adjacent in `methods`... see BENCH_METHODS).
    best = {n: float("inf") for n in methods}
    nfe, times = {}, {n: [] for n in methods}
    for r in range(repeats):
        for name, m in built.items():
            if name == FULL_DDPM and r > 0:
                continue
            t0 = time.perf_counter()
            res = list(m.synthesize(reqs, seed=r))
            times[name].append(time.perf_counter() - t0)
            best[name] = min(best[name], times[name][-1])
            nfe[name] = int(res[0][2]["nfe"])
    unet = unet_seconds(model, n_images, repeats)
    out = {n: {"nfe": nfe[n], "images_per_s": n_images / best[n], "seconds": best[n],
               "seconds_per_nfe": best[n] / nfe[n], "per_nfe_vs_unet": best[n] / nfe[n] / unet} for n in methods}
    out["unet_forward_seconds"] = unet
    if NOFARM in out and NOFARM_DDIM in out:
        # per network evaluation, both without FARM: the sampler's own cost (AIAS's segment
        # coefficients vs the diffusers DDIM step), windows, encode/decode and compositing included
        out["aias_step_overhead_vs_ddim"] = (out[NOFARM]["seconds_per_nfe"]
                                             / out[NOFARM_DDIM]["seconds_per_nfe"] - 1)
    f, nf = out.get(FAST), out.get(NOFARM)
    if f and FULL_DDPM in out:
        out["ratio_aias10_vs_ddpm1000"] = f["images_per_s"] / out[FULL_DDPM]["images_per_s"]
    if f and nf:
        # FARM runs on the S segment steps only (not on the t_fine tail): extra time per FARM step
        # relative to the cost of one plain sampling step.
        # Median over repeats of the ratio of back-to-back runs (robust to load changes).
        s = int(cfg["aias"]["steps"])
        ratios = [a / b for a, b in zip(times[FAST], times[NOFARM])]
        total = float(np.median(ratios)) - 1
        out["farm_overhead_total"] = total
        out["farm_overhead"] = total * nf["nfe"] / s
    return out


@torch.no_grad()
def unet_seconds(model, n_images: int, repeats: int = 5) -> float:
    """Best time of one bare network evaluation (model.eps) on a batch of ``n_images`` on the
    latent grid the samplers run it on (a patch model's backbone works at the window size)."""
    c, h, w = model.latent_shape()
    device = next(model.parameters()).device
    z = torch.randn(n_images, c, h, w, generator=torch.Generator().manual_seed(0)).to(device)
    mask = torch.ones(n_images, 1, h, w, device=device)
    t = torch.full((n_images,), model.schedule.T // 2, dtype=torch.long, device=device)
    cond = torch.zeros(n_images, dtype=torch.long, device=device)
    best = float("inf")
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        model.eps(z, t, cond, mask, z)
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def run_bench(args) -> int:
    from fast.diffusion.backbones import backbone_spec_from_config, build_backbone
    from fast.diffusion.model import DiffusionModel
    from fast.diffusion.schedule import Schedule
    from fast.config import resolve_device

    cfg = _config(args.config)
    if args.n_images < 1:
        raise FastError("--n-images must be >= 1")
    device = resolve_device(cfg.get("device", "auto"))
    if args.generator_dir:
        model = DiffusionModel.load(args.generator_dir, device)
        if model.farm is None:
            raise FastError(f"{args.generator_dir}: not a `fast` generator (it has no FARM)")
        source = f"trained generator {args.generator_dir}"
    else:
        torch.manual_seed(int(cfg["seed"]))
        classes = ["good", "type_a", "type_b"]
        bb = build_backbone(backbone_spec_from_config(cfg, 3, len(classes)))
        model = DiffusionModel(bb, Schedule.from_config(cfg["diffusion"]), classes, FAST,
                               farm_widths=cfg["diffusion"]["farm"]["widths"],
                               adaptor=bool(cfg["diffusion"]["farm"]["adaptor"]),
                               patch=cfg["diffusion"].get("patch")).to(device).eval()
        source = "freshly initialised model of the configured size (timing does not depend on weights)"
    res = measure(cfg, model, args.n_images)
    threads = torch.get_num_threads()
    print(f"sampling benchmark: {source}; {args.n_images} images/batch at {model.backbone.resolution} px, "
          f"device {device}, torch threads {threads} (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')})")
    print(f"{'method':<28}{'NFE':>6}{'images/s':>12}{'s/batch':>10}{'ms/NFE':>9}{'/UNet':>7}")
    for name in BENCH_METHODS:
        r = res[name]
        print(f"{name:<28}{r['nfe']:>6}{r['images_per_s']:>12.3f}{r['seconds']:>10.3f}"
              f"{1000 * r['seconds_per_nfe']:>9.2f}{r['per_nfe_vs_unet']:>7.2f}")
    print(f"one bare UNet forward of the batch: {1000 * res['unet_forward_seconds']:.2f} ms "
          f"(/UNet: seconds per NFE over that)")
    print(f"AIAS per-step overhead vs DDIM at NFE {res[NOFARM]['nfe']} (both without FARM): "
          f"{100 * res['aias_step_overhead_vs_ddim']:+.1f}%")
    ideal = res[FULL_DDPM]["nfe"] / res[FAST]["nfe"]
    print(f"AIAS-{cfg['aias']['steps']} vs DDPM-{res[FULL_DDPM]['nfe']}: "
          f"{res['ratio_aias10_vs_ddpm1000']:.1f}x images/s (ideal NFE ratio {ideal:.1f}x)")
    print(f"FARM overhead per FARM step: {100 * res['farm_overhead']:.1f}% "
          f"(whole run fast vs fast-nofarm: {100 * res['farm_overhead_total']:.1f}%)")
    if args.json:
        from fast.io import write_json

        write_json(args.json, {k: ({key: v[key] for key in ("nfe", "images_per_s", "seconds_per_nfe", "per_nfe_vs_unet")}
                                   if isinstance(v, dict) else v) for k, v in res.items()})
    return 0


__all__ = ["measure", "run_bench"]
