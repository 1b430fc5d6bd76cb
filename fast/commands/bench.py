"""`fast bench sampling` and `fast bench training`: speed and peak memory on the configured models
(a stage driver).

**sampling**: images/s and NFE of the FAST samplers on one model, in one run. Uses a trained
`fast` generator (--generator-dir) or, without one, a freshly initialised model of the configured
size (sampling cost does not depend on the weights). Prints a table (NFE, images/s, seconds per
network evaluation and its ratio to one bare UNet forward of the same batch, so the sampler's own
overhead is visible) and the ratios: AIAS-10 vs DDPM-1000, AIAS's per-step overhead against DDIM's
at equal NFE (both without FARM), and the per-step FARM overhead; --json writes them. The frontier
solvers (DPM-Solver++ 2M, UniPC, DEIS, DDIM, AIAS with paper coefficients) run at NFE 12, AIAS-10's
own. With --precision and --batch lists it measures every combination (``runs`` in the JSON: per
method images/s, the bare UNet forward and its evaluations/s, and the peak memory); the top-level
keys are the first combination's.

**training**: seconds per optimiser step and peak memory of generator training (base, fast, stage,
sard) and of every configured segmenter, per precision and batch (default: the configured
``diffusion.train.batch_size`` and ``segmentation.batch_size``). The models, data, losses and loop
are the training code's own (DiffusionMethod.training_setup / run_training,
fast.segmentation.train.train_segmenter): one warm-up step, then --steps timed ones (the median is
reported). Data: a prepared category (--prepared/--dataset/--category) or the embedded synthetic
dataset generated at the config's resolution. Segmenters start from random weights
(encoder_weights: null; speed does not depend on them).

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` (and ``max_memory_reserved``) of the run
alone; on a CPU the peak resident set size of the process from ``resource.getrusage`` (ru_maxrss),
which is never reset, so a run's figure includes everything the process held before it.
"""

from __future__ import annotations

import copy
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from fast.catalog import BASE, BENCH, FAST, FULL_DDPM, NOFARM, REAL_FEWSHOT, sweep_name
from fast.errors import FastError

BENCH_METHODS = [*BENCH[:2], NOFARM_DDIM := f"{sweep_name('ddim', 12)} (no FARM)", *BENCH[2:]]
CUDA_MEMORY = "cuda: torch.cuda.max_memory_allocated during the run (peak_reserved_bytes: max_memory_reserved)"
CPU_MEMORY = ("cpu: peak resident set size of the process (resource.getrusage ru_maxrss), since the process "
              "started: it includes every earlier run")


def _config(path):
    from fast.config import load_config

    if path:
        return load_config(path)
    default = Path("config/config.yaml")
    if default.is_file():
        return load_config(default)
    return load_config({"experiment": "bench", "datasets": {"synthetic": {"categories": ["fabric"]}},
                        "methods": [FAST]})


def _list(text, kind=str, what="value") -> list:
    try:
        items = [kind(v.strip()) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise FastError(f"{what}: expected a comma-separated list, got {text!r}") from None
    if not items:
        raise FastError(f"{what}: empty list")
    return items


def _precisions(text, cfg) -> list[str]:
    from fast.precision import PRECISIONS

    names = _list(text, what="--precision") if text else [cfg["precision"]]
    bad = [p for p in names if p not in PRECISIONS]
    if bad:
        raise FastError(f"--precision {bad[0]!r}: expected one of {', '.join(PRECISIONS)}")
    return names


def _batches(text, default, what: str = "--batch") -> list[int]:
    batches = _list(text, int, what) if text else [int(default)]
    if min(batches) < 1:
        raise FastError(f"{what}: every batch size must be >= 1")
    return batches


# -- peak memory -------------------------------------------------------------------------------
def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: torch.device) -> dict:
    """{"peak_memory_bytes", "memory"} (+ "peak_reserved_bytes" on CUDA): see the module docstring."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return {"peak_memory_bytes": int(torch.cuda.max_memory_allocated(device)),
                "peak_reserved_bytes": int(torch.cuda.max_memory_reserved(device)), "memory": CUDA_MEMORY}
    import resource

    return {"peak_memory_bytes": int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024,
            "memory": CPU_MEMORY}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- sampling ----------------------------------------------------------------------------------
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
    """{method: {"nfe", "images_per_s", "seconds"}} plus the ratios (see module docstring), in the
    config's ``precision``, ``n_images`` per batch (one noise group)."""
    from fast.methods import build_method
    from fast.precision import Precision

    reqs = _requests(model, n_images)
    cfg = {**cfg, "synthesis": {**cfg["synthesis"], "batch_size": None}}   # one batch of n_images
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
    device = next(model.parameters()).device
    for r in range(repeats):
        for name, m in built.items():
            if name == FULL_DDPM and r > 0:
                continue
            t0 = time.perf_counter()
            res = list(m.synthesize(reqs, seed=r))
            _sync(device)
            times[name].append(time.perf_counter() - t0)
            best[name] = min(best[name], times[name][-1])
            nfe[name] = int(res[0][2]["nfe"])
    precision = Precision.of(cfg.get("precision"), device)
    unet = unet_seconds(model, n_images, repeats, precision)
    vae = codec_seconds(model, n_images, repeats, precision)
    # the sampler's own cost over its network evaluations: all of it, and without the encode of
    # the backgrounds and the decode of the samples (fixed FLOPs per image, whatever the sampler)
    out = {n: {"nfe": nfe[n], "images_per_s": n_images / best[n], "seconds": best[n],
               "seconds_per_nfe": best[n] / nfe[n], "per_nfe_vs_unet": best[n] / nfe[n] / unet,
               "overhead_vs_unet": best[n] / (nfe[n] * unet) - 1,
               "overhead_without_codec_vs_unet": (best[n] - vae) / (nfe[n] * unet) - 1} for n in methods}
    out["unet_forward_seconds"] = unet
    out["codec_seconds"] = vae
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


def _best_seconds(fn, device: torch.device, repeats: int, precision) -> float:
    """Best wall time of ``fn()`` in ``precision`` over 1 + ``repeats`` runs (CUDA synchronised)."""
    from fast.precision import FP32

    best = float("inf")
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        with torch.no_grad(), (precision or FP32).context():
            fn()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def unet_seconds(model, n_images: int, repeats: int = 5, precision=None) -> float:
    """Best time of one bare network evaluation (model.eps) on a batch of ``n_images`` on the
    latent grid the samplers run it on (a patch model's backbone works at the window size), in
    ``precision`` (default fp32)."""
    c, h, w = model.latent_shape()
    device = next(model.parameters()).device
    z = torch.randn(n_images, c, h, w, generator=torch.Generator().manual_seed(0)).to(device)
    mask = torch.ones(n_images, 1, h, w, device=device)
    t = torch.full((n_images,), model.schedule.T // 2, dtype=torch.long, device=device)
    cond = torch.zeros(n_images, dtype=torch.long, device=device)
    return _best_seconds(lambda: model.eps(z, t, cond, mask, z), device, repeats, precision)


def codec_seconds(model, n_images: int, repeats: int = 5, precision=None) -> float:
    """Best time of encoding a batch of ``n_images`` backgrounds and decoding a batch of latents
    (model.encode + model.decode, what every sampling run does once per image), in ``precision``
    (default fp32)."""
    c, h, w = model.latent_shape()
    res, channels = model.backbone.resolution, model.backbone.channels
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(n_images, channels, res, res, generator=g) * 2 - 1).to(device)
    z = torch.randn(n_images, c, h, w, generator=g).to(device)
    return _best_seconds(lambda: (model.encode(x), model.decode(z)), device, repeats, precision)


_SAMPLING_KEYS = ("nfe", "images_per_s", "seconds_per_nfe", "per_nfe_vs_unet", "overhead_vs_unet",
                  "overhead_without_codec_vs_unet")


def run_bench(args) -> int:
    """`fast bench sampling`."""
    from fast.config import resolve_device
    from fast.diffusion.backbones import backbone_spec_from_config, build_backbone
    from fast.diffusion.model import DiffusionModel
    from fast.diffusion.schedule import Schedule
    from fast.precision import resolve

    cfg = _config(args.config)
    if args.n_images < 1:
        raise FastError("--n-images must be >= 1")
    repeats = int(getattr(args, "repeats", 5) or 5)
    precisions = _precisions(getattr(args, "precision", None), cfg)
    batches = _batches(getattr(args, "batch", None), args.n_images)
    methods = BENCH_METHODS
    if getattr(args, "methods", None):
        methods = _list(args.methods, what="--methods")
        unknown = [m for m in methods if m not in BENCH_METHODS]
        if unknown:
            raise FastError(f"--methods {unknown[0]!r}: one of {', '.join(BENCH_METHODS)}")
    device = resolve_device(cfg["device"])
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
    threads = torch.get_num_threads()
    print(f"sampling benchmark: {source}; at {model.backbone.resolution} px, device {device}, torch threads "
          f"{threads} (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')})")
    runs, first = [], None
    for prec in precisions:
        for batch in batches:
            run_cfg = copy.deepcopy(cfg)
            run_cfg["precision"] = prec
            reset_peak(device)
            res = measure(run_cfg, model, batch, methods, repeats)
            mem = peak_memory(device)
            first = first or res
            runs.append({"precision": resolve(prec, device), "requested": prec, "batch": batch,
                         "methods": {n: {k: res[n][k] for k in _SAMPLING_KEYS} for n in methods},
                         "unet_forward_seconds": res["unet_forward_seconds"], "codec_seconds": res["codec_seconds"],
                         "unet_evals_per_s": batch / res["unet_forward_seconds"], **mem})
            _print_sampling(cfg, res, methods, runs[-1])
    if len(runs) > 1:
        print(f"\n{'precision':<10}{'batch':>6}{'UNet ms':>9}{'evals/s':>9}"
              + "".join(f"{n[:16]:>18}" for n in methods) + f"{'peak MiB':>10}")
        for r in runs:
            print(f"{r['precision']:<10}{r['batch']:>6}{1000 * r['unet_forward_seconds']:>9.1f}"
                  f"{r['unet_evals_per_s']:>9.1f}" + "".join(f"{r['methods'][n]['images_per_s']:>14.2f} im/s"
                                                         for n in methods)
                  + f"{r['peak_memory_bytes'] / 2**20:>10.0f}")
    print(f"peak memory: {runs[0]['memory']}")
    if args.json:
        from fast.io import write_json

        out = {k: ({key: v[key] for key in _SAMPLING_KEYS} if isinstance(v, dict) else v) for k, v in first.items()}
        out.update({"device": str(device), "precision": runs[0]["precision"], "batch": runs[0]["batch"],
                    "peak_memory_bytes": runs[0]["peak_memory_bytes"], "memory": runs[0]["memory"],
                    "torch_threads": threads, "runs": runs})
        write_json(args.json, out)
    return 0


def _print_sampling(cfg, res, methods, run) -> None:
    print(f"\nprecision {run['precision']} ({run['requested']}), {run['batch']} images/batch; peak memory "
          f"{run['peak_memory_bytes'] / 2**20:.0f} MiB")
    print(f"{'method':<28}{'NFE':>6}{'images/s':>12}{'s/batch':>10}{'ms/NFE':>9}{'/UNet':>7}{'over':>8}{'-codec':>8}")
    for name in methods:
        r = res[name]
        print(f"{name:<28}{r['nfe']:>6}{r['images_per_s']:>12.3f}{r['seconds']:>10.3f}"
              f"{1000 * r['seconds_per_nfe']:>9.2f}{r['per_nfe_vs_unet']:>7.2f}"
              f"{100 * r['overhead_vs_unet']:>7.1f}%{100 * r['overhead_without_codec_vs_unet']:>7.1f}%")
    print(f"one bare UNet forward of the batch: {1000 * res['unet_forward_seconds']:.2f} ms "
          f"(/UNet: seconds per NFE over that); encode + decode of the batch: {1000 * res['codec_seconds']:.2f} ms")
    print("over: the run's time beyond NFE bare UNet forwards, in % of them; -codec: the same without "
          "the encode + decode")
    if "aias_step_overhead_vs_ddim" in res:
        print(f"AIAS per-step overhead vs DDIM at NFE {res[NOFARM]['nfe']} (both without FARM): "
              f"{100 * res['aias_step_overhead_vs_ddim']:+.1f}%")
    if "ratio_aias10_vs_ddpm1000" in res:
        ideal = res[FULL_DDPM]["nfe"] / res[FAST]["nfe"]
        print(f"AIAS-{cfg['aias']['steps']} vs DDPM-{res[FULL_DDPM]['nfe']}: "
              f"{res['ratio_aias10_vs_ddpm1000']:.1f}x images/s (ideal NFE ratio {ideal:.1f}x)")
    if "farm_overhead" in res:
        print(f"FARM overhead per FARM step: {100 * res['farm_overhead']:.1f}% "
              f"(whole run fast vs fast-nofarm: {100 * res['farm_overhead_total']:.1f}%)")


# -- training ----------------------------------------------------------------------------------
class StepTimer:
    """``on_step`` callback: the wall time of every optimiser step (CUDA synchronised)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.marks = [time.perf_counter()]

    def __call__(self, step: int) -> None:
        _sync(self.device)
        self.marks.append(time.perf_counter())

    def record(self) -> dict:
        steps = np.diff(self.marks)
        timed = steps[1:] if len(steps) > 1 else steps
        return {"seconds_per_step": float(statistics.median(timed)), "first_step_seconds": float(steps[0]),
                "timed_steps": int(len(timed))}


def _bench_category(args, cfg, workdir: Path):
    """(prepared category, dataset, category): the one given, or the synthetic dataset generated
    at the config's resolution."""
    import argparse

    from fast.data import synthetic
    from fast.data.manifest import PreparedCategory, manifest_path
    from fast.commands.prepare import run_prepare

    if args.prepared:
        if not (args.dataset and args.category):
            raise FastError("--prepared needs --dataset and --category")
        return PreparedCategory.load(manifest_path(args.prepared, args.dataset, args.category))
    category = args.category or "washer"
    if category not in synthetic.DEFECT_TYPES:
        raise FastError(f"--category {category!r}: without --prepared, one of the synthetic dataset's "
                        f"{', '.join(synthetic.DEFECT_TYPES)}")
    res = int(cfg["resolution"])
    options = {"image_size": res, "n_normal_train": 8, "n_normal_test": 2, "n_anomalous_per_type": 4,
               "categories": [category]}
    synthetic.generate(workdir / "raw", options, seed=0)
    run_prepare(argparse.Namespace(dataset="synthetic", root=str(workdir / "raw"), out=str(workdir / "prepared"),
                                   category=[category], resolution=res, seed=0, options=None))
    return PreparedCategory.load(manifest_path(workdir / "prepared", "synthetic", category))


def bench_generators(cfg, prepared, names, precisions, batches, steps, device, workdir: Path, log=print) -> list[dict]:
    """One run per generator, precision and batch: DiffusionMethod.training_setup once per generator
    (the base model first: the others start from it; one untimed step of it when it is not asked
    for), then run_training for 1 + ``steps`` steps."""
    import gc

    from fast.methods import build_method
    from fast.precision import Precision

    runs = []
    base_dir = None
    for name in [BASE] + [n for n in names if n != BASE]:
        method = build_method(name, cfg)
        if method.starts_from_base() and base_dir is None:
            raise FastError("fast bench training: the base model's training fit none of the batches, and every "
                            "other generator starts from it")
        t0 = time.perf_counter()
        run = method.training_setup(prepared, base_dir if method.starts_from_base() else None)
        setup = time.perf_counter() - t0
        plan = [(p, b) for p in precisions for b in batches] if name in names else [(precisions[0], batches[0])]
        for prec, batch in plan:
            out = workdir / "generators" / f"{name}-{prec}-{batch}"
            precision = Precision.of(prec, device)
            timer = StepTimer(device)
            reset_peak(device)
            rec = {"kind": "generator", "name": name, "precision": precision.name, "requested": prec,
                   "batch": batch, "setup_seconds": setup}
            try:
                method.run_training(run, out, steps=steps + 1 if name in names else 1, batch_size=batch,
                                    checkpoint_every=steps + 2, precision=precision, on_step=timer, progress=False)
            except torch.cuda.OutOfMemoryError:
                runs.append(_out_of_memory(rec, device, log))
                continue
            if name == BASE and base_dir is None:
                base_dir = out
            if name not in names:
                continue
            rec.update({**timer.record(), **peak_memory(device)})
            runs.append(rec)
            log(f"generator {name:<6} {prec:<5} ({rec['precision']}) batch {batch:>4}: "
                f"{rec['seconds_per_step']:.4f} s/step, peak {rec['peak_memory_bytes'] / 2**20:.0f} MiB")
        del run, method
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return runs


def _out_of_memory(rec: dict, device: torch.device, log) -> dict:
    """A run that did not fit: recorded as such (with the memory it reached), and the next one runs."""
    import gc

    rec = {**rec, "error": "out of memory", **peak_memory(device)}
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    log(f"{rec['kind']} {rec['name']} {rec['precision']} batch {rec['batch']}: out of memory")
    return rec


def bench_segmenters(cfg, prepared, names, precisions, batches, steps, device, log=print) -> list[dict]:
    """One run per segmenter, precision and batch: train_segmenter (the real-fewshot row's data)
    for 1 + ``steps`` steps."""
    from fast.precision import Precision
    from fast.segmentation.data import training_pools
    from fast.segmentation.train import train_segmenter

    size = int(cfg["resolution"])
    anomalous, normal = training_pools(prepared, REAL_FEWSHOT, None, size, prepared.channels)
    runs = []
    for name in names:
        for prec in precisions:
            for batch in batches:
                seg_cfg = {**cfg["segmentation"], "steps": steps + 1, "batch_size": batch, "encoder_weights": None}
                timer = StepTimer(device)
                reset_peak(device)
                rec = {"kind": "segmenter", "name": name, "precision": Precision.of(prec, device).name,
                       "requested": prec, "batch": batch}
                try:
                    train_segmenter(anomalous, normal, name, 0, seg_cfg, device, log_every=10**9,
                                    precision=Precision.of(prec, device), on_step=timer)
                except torch.cuda.OutOfMemoryError:
                    runs.append(_out_of_memory(rec, device, log))
                    continue
                rec.update({**timer.record(), **peak_memory(device)})
                runs.append(rec)
                log(f"segmenter {name:<13} {prec:<5} ({rec['precision']}) batch {batch:>4}: "
                    f"{rec['seconds_per_step']:.4f} s/step, peak {rec['peak_memory_bytes'] / 2**20:.0f} MiB")
    return runs


def training_jobs(args, cfg) -> tuple[list[str], list[str]]:
    """(generators, segmenters) of ``--generators`` / ``--segmenters``: by default every generator
    `fast train` trains (the base model and each own part) and the config's segmenters; '' none."""
    from fast.methods import BASE_OF
    from fast.segmentation.models import SEGMENTERS

    trained = list(BASE_OF)
    generators = trained if args.generators is None else (
        _list(args.generators, what="--generators") if args.generators.strip() else [])
    unknown = [g for g in generators if g not in trained]
    if unknown:
        raise FastError(f"--generators {unknown[0]!r}: one of {', '.join(trained)}")
    segmenters = list(cfg["segmentation"]["segmenters"]) if args.segmenters is None else (
        _list(args.segmenters, what="--segmenters") if args.segmenters.strip() else [])
    bad = [s for s in segmenters if s not in SEGMENTERS]
    if bad:
        raise FastError(f"--segmenters {bad[0]!r}: one of {', '.join(SEGMENTERS)}")
    return generators, segmenters


def run_bench_training(args) -> int:
    """`fast bench training`."""
    from fast.config import resolve_device

    cfg = _config(args.config)
    if args.steps < 1:
        raise FastError("--steps must be >= 1")
    cfg["diffusion"]["train"]["checkpoint_every"] = 10**9
    precisions = _precisions(args.precision, cfg)
    generators, segmenters = training_jobs(args, cfg)
    device = resolve_device(cfg["device"])
    gen_batches = _batches(args.batch, cfg["diffusion"]["train"]["batch_size"])
    seg_batches = _batches(args.batch, cfg["segmentation"]["batch_size"])
    print(f"training benchmark: device {device}, torch threads {torch.get_num_threads()}, "
          f"1 warm-up + {args.steps} timed steps per run (median reported)")
    with tempfile.TemporaryDirectory(prefix="fast-bench-") as tmp:
        workdir = Path(tmp)
        prepared = _bench_category(args, cfg, workdir)
        print(f"data: {prepared.manifest.parent} at {cfg['resolution']} px")
        runs = []
        if generators:
            runs += bench_generators(cfg, prepared, generators, precisions, gen_batches, args.steps, device, workdir)
        if segmenters:
            runs += bench_segmenters(cfg, prepared, segmenters, precisions, seg_batches, args.steps, device)
    memory = CUDA_MEMORY if device.type == "cuda" else CPU_MEMORY
    print(f"peak memory: {memory}")
    if args.json:
        from fast.io import write_json

        write_json(args.json, {"device": str(device), "torch_threads": torch.get_num_threads(),
                               "resolution": int(cfg["resolution"]), "steps": args.steps, "memory": memory,
                               "runs": runs})
    return 0


__all__ = ["bench_generators", "bench_segmenters", "codec_seconds", "measure", "peak_memory", "run_bench", "run_bench_training"]
