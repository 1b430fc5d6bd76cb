"""`fast bench sampling`: images/s and NFE of the FAST samplers on one model, in one run.

Uses a trained `fast` generator (--generator-dir) or, without one, a freshly initialised model of
the configured size (sampling cost does not depend on the weights). Prints a table and the ratios
AIAS-10 vs DDPM-1000 and the per-step FARM overhead; --json writes them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch

from fast.errors import FastError

BENCH_METHODS = ["fast", "fast-nofarm", "fast-ddim50", "fast-dpmpp20", "fast-ddpm1000"]


def _config(path):
    from fast.config import load_config

    if path:
        return load_config(path)
    default = Path("config/config.yaml")
    if default.is_file():
        return load_config(default)
    return load_config({"experiment": "bench", "datasets": {"synthetic": {"categories": ["fabric"]}},
                        "methods": ["fast"]})


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
        m = build_method(name, cfg)
        m.model = model
        m.options["batch_size"] = n_images
        if name != "fast-ddpm1000":  # warm-up (allocations, coefficient caches)
            list(m.synthesize(reqs[:1], seed=0))
        built[name] = m
    # Interleave the repeats of the cheap methods and keep the best time of each, so that load
    # from other processes on a shared machine biases no method in particular. `fast` and
    # `fast-nofarm` run back to back (keep them adjacent in `methods`... see BENCH_METHODS).
    best = {n: float("inf") for n in methods}
    nfe, times = {}, {n: [] for n in methods}
    for r in range(repeats):
        for name, m in built.items():
            if name == "fast-ddpm1000" and r > 0:
                continue
            t0 = time.perf_counter()
            res = list(m.synthesize(reqs, seed=r))
            times[name].append(time.perf_counter() - t0)
            best[name] = min(best[name], times[name][-1])
            nfe[name] = int(res[0][2]["nfe"])
    out = {n: {"nfe": nfe[n], "images_per_s": n_images / best[n], "seconds": best[n]} for n in methods}
    f, nf = out.get("fast"), out.get("fast-nofarm")
    if f and "fast-ddpm1000" in out:
        out["ratio_aias10_vs_ddpm1000"] = f["images_per_s"] / out["fast-ddpm1000"]["images_per_s"]
    if f and nf:
        # FARM runs on the S segment steps only (not on the t_fine tail): extra time per FARM step
        # relative to the cost of one plain sampling step.
        # Median over repeats of the ratio of back-to-back runs (robust to load changes).
        s = int(cfg["aias"]["steps"])
        ratios = [a / b for a, b in zip(times["fast"], times["fast-nofarm"])]
        total = float(np.median(ratios)) - 1
        out["farm_overhead_total"] = total
        out["farm_overhead"] = total * nf["nfe"] / s
    return out


def run_bench(args) -> int:
    from fast.diffusion.backbones import backbone_spec_from_config, build_backbone
    from fast.diffusion.model import DiffusionModel
    from fast.diffusion.schedule import Schedule
    from fast.diffusion.train import resolve_device

    cfg = _config(args.config)
    if args.n_images < 1:
        raise FastError("--n-images must be >= 1")
    device = resolve_device(cfg)
    if args.generator_dir:
        model = DiffusionModel.load(args.generator_dir, device)
        if model.farm is None:
            raise FastError(f"{args.generator_dir}: not a `fast` generator (it has no FARM)")
        source = f"trained generator {args.generator_dir}"
    else:
        torch.manual_seed(int(cfg["seed"]))
        classes = ["good", "type_a", "type_b"]
        bb = build_backbone(backbone_spec_from_config(cfg, 3, len(classes)))
        model = DiffusionModel(bb, Schedule.from_config(cfg["diffusion"]), classes, "fast",
                               farm_widths=cfg["diffusion"]["farm"]["widths"],
                               adaptor=bool(cfg["diffusion"]["farm"]["adaptor"]),
                               patch=cfg["diffusion"].get("patch")).to(device).eval()
        source = "freshly initialised model of the configured size (timing does not depend on weights)"
    res = measure(cfg, model, args.n_images)
    threads = torch.get_num_threads()
    print(f"sampling benchmark: {source}; {args.n_images} images/batch at {model.backbone.resolution} px, "
          f"device {device}, torch threads {threads} (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')})")
    print(f"{'method':<16}{'NFE':>6}{'images/s':>12}{'s/batch':>10}")
    for name in BENCH_METHODS:
        r = res[name]
        print(f"{name:<16}{r['nfe']:>6}{r['images_per_s']:>12.3f}{r['seconds']:>10.3f}")
    ideal = res["fast-ddpm1000"]["nfe"] / res["fast"]["nfe"]
    print(f"AIAS-{cfg['aias']['steps']} vs DDPM-{res['fast-ddpm1000']['nfe']}: "
          f"{res['ratio_aias10_vs_ddpm1000']:.1f}x images/s (ideal NFE ratio {ideal:.1f}x)")
    print(f"FARM overhead per FARM step: {100 * res['farm_overhead']:.1f}% "
          f"(whole run fast vs fast-nofarm: {100 * res['farm_overhead_total']:.1f}%)")
    if args.json:
        from fast.io import write_json

        write_json(args.json, {k: ({"nfe": v["nfe"], "images_per_s": v["images_per_s"]} if isinstance(v, dict) else v)
                               for k, v in res.items()})
    return 0


__all__ = ["measure", "run_bench"]
