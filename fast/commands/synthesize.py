"""`fast synthesize`: n_per_type image+mask pairs per anomaly type with one registry method.

Requests: backgrounds are the category's ``normal_train`` images, taken round-robin over a seeded
permutation (every normal used before any repeats); masks come from the shared mask pool
(fast.methods.mask_pool) unless the method defines its own footprint. Every request also carries
``extra["other_normals"]``: the other normal_train images (NSA pastes from them, DRAEM can use
them as textures). Background choice and mask draws use separate seeded streams, so every method
sees the same backgrounds for the same seed. The seed handed to make_requests and to the method is
derived from (run seed, dataset, category), so that categories do not share random draws (the
same request index would otherwise get the same rectangle / Perlin mask in every category); the
manifest records the run seed, timing.json both.

With ``--replicate K`` (the workflow passes it when ``synthesis.per_seed`` is on) the set is segmenter
seed K's own draw: the seed is child K of the category's seed sequence (numpy SeedSequence spawn
key), so backgrounds, pool masks and the method's noise all change with K while the run seed and
the category still enter; timing.json then records ``replicate``. Without it the draw is the one
set all segmenter seeds share.

Output (written into a temporary directory, renamed onto --out when complete):
``images/*.png``, ``masks/*.png`` (0/255, same file names), ``manifest.csv`` (image, mask,
source_normal, mask_source, anomaly_type, seed + the methods' meta keys such as nfe; paths relative
to --out, source_normal relative to the prepared manifest) and ``timing.json`` (method, dataset, category, device,
images, wall_seconds = time inside the method's synthesize, images_per_s, seconds_per_image, nfe per
image, total_seconds incl. PNG writing, load_seconds = building the method, loading the generator
and the requests, seed, n_per_type; a diffusion method adds precision, batch_size = requests per
network call and noise_group, fast.methods.diffusion_family). A method that returns a wrong shape, dtype or mask is a
FastError naming the request; nothing is written then. The format itself (layout, columns, writing and
reading a set) is fast.data.pair_sets.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
import zlib
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from tqdm import tqdm

from fast import methods as registry
from fast.config import load_config
from fast.data.manifest import PreparedCategory, manifest_path
from fast.errors import FastError
from fast.data.pair_sets import pair_name, pair_record, write_manifest, write_pair, writing_set, write_timing
from fast.io import ensure_dir
from fast.methods.base import SynthesisMethod, SynthesisRequest
from fast.methods.mask_pool import MaskPool

log = logging.getLogger(__name__)

# Independent random streams derived from the run seed (numpy SeedSequence spawn keys).
_STREAM_BACKGROUNDS, _STREAM_MASKS = 1, 2


def _stream(seed: int, stream: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, stream, *key]))


def category_seed(seed: int, dataset: str, category: str, replicate: int | None = None) -> int:
    """A 31-bit seed for one (dataset, category), derived from the run seed; with ``replicate``, the
    draw of that segmenter seed (synthesis.per_seed)."""
    key = zlib.crc32(f"{dataset}/{category}".encode())
    # A spawn key, not a third entropy word: SeedSequence pads entropy with zeros, so [seed, key, 0]
    # would be the shared draw [seed, key] again, and replicate 0 would not be a draw of its own.
    spawn_key = () if replicate is None else (int(replicate),)
    sequence = np.random.SeedSequence([seed, key], spawn_key=spawn_key)
    return int(sequence.generate_state(1)[0] & 0x7FFFFFFF)


def make_requests(prepared: PreparedCategory, pool_cfg: dict, n_per_type: int, seed: int,
                  use_pool_masks: bool = True) -> list[SynthesisRequest]:
    """``n_per_type`` requests per anomaly type (sorted), deterministic given ``seed``."""
    normals = prepared.rows("normal_train")
    if normals.empty:
        raise FastError(f"{prepared.manifest}: no normal_train images to synthesise on")
    types = prepared.anomaly_types
    if not types:
        raise FastError(f"{prepared.manifest}: no anomaly types (no anomalous rows) in this category")
    paths = list(normals["image"])
    images = [prepared.load_image(row) for _, row in normals.iterrows()]
    pool = MaskPool.from_prepared(prepared, pool_cfg) if use_pool_masks else None
    order = _stream(seed, _STREAM_BACKGROUNDS).permutation(len(paths))
    requests = []
    k = 0
    for ti, anomaly_type in enumerate(types):
        mask_rng = _stream(seed, _STREAM_MASKS, ti)
        for _ in range(n_per_type):
            idx = int(order[k % len(order)])
            k += 1
            bg = images[idx]
            if pool is not None:
                mask, source = pool.draw(anomaly_type, bg, mask_rng)
            else:
                mask, source = np.zeros(bg.shape[:2], np.uint8), "own"
            others = [im for j, im in enumerate(images) if j != idx]
            requests.append(SynthesisRequest(background=bg, mask=mask, anomaly_type=anomaly_type,
                                             source_normal=paths[idx], mask_source=source,
                                             extra={"other_normals": others}))
    return requests


def _check_output(method: str, i: int, req: SynthesisRequest, item) -> tuple[np.ndarray, np.ndarray, dict]:
    """A broken method gets a clear error naming what is wrong, not a crash later on."""
    where = f"method {method!r}, request {i} ({req.anomaly_type}, {req.source_normal})"
    if not (isinstance(item, tuple) and len(item) == 3):
        raise FastError(f"{where}: synthesize must yield (image, mask, meta) tuples, got {type(item).__name__}")
    image, mask, meta = item
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.shape != req.background.shape:
        got = (image.dtype, image.shape) if isinstance(image, np.ndarray) else type(image).__name__
        raise FastError(f"{where}: image must be uint8 {req.background.shape}, got {got}")
    if not isinstance(mask, np.ndarray) or mask.shape != req.background.shape[:2]:
        got = mask.shape if isinstance(mask, np.ndarray) else type(mask).__name__
        raise FastError(f"{where}: mask must be (H, W) = {req.background.shape[:2]}, got {got}")
    if mask.dtype == bool:
        mask = mask.astype(np.uint8)
    if mask.dtype != np.uint8 or not np.isin(mask, (0, 1)).all():
        raise FastError(f"{where}: mask must be uint8 with values in {{0, 1}}, got {mask.dtype} "
                        f"values {np.unique(mask)[:5].tolist()}")
    if not mask.any():
        raise FastError(f"{where}: returned an empty mask (every synthetic image must hold an anomaly)")
    if not isinstance(meta, dict):
        raise FastError(f"{where}: meta must be a dict, got {type(meta).__name__}")
    return image, mask, meta


def _device(method: SynthesisMethod, cfg: dict) -> str:
    dev = getattr(method, "device", None)
    if dev is not None:
        return str(dev)
    if cfg.get("device") == "cuda":
        return "cuda"
    # Training-free methods run in numpy; only ask torch if something already imported it.
    torch = sys.modules.get("torch")
    if cfg.get("device") == "auto" and torch is not None and torch.cuda.is_available():
        return "cuda"
    return "cpu"


def write_synthetic(out: str | Path, method: SynthesisMethod, requests: Sequence[SynthesisRequest],
                    seed: int, *, device: str = "cpu", label: str = "", extra_timing: dict | None = None,
                    manifest_seed: int | None = None) -> dict:
    """Run ``method`` on ``requests`` and write the synthetic set atomically into ``out``.
    Returns the timing record: ``wall_seconds`` is the time spent inside the method's
    synthesize (PNG writing and model loading excluded), ``total_seconds`` includes writing."""
    out = Path(out)
    t_start = time.perf_counter()
    rows = []
    gen_seconds = 0.0
    nfes = []
    with writing_set(out) as tmp, contextlib.ExitStack() as stack:
        counters: dict[str, int] = {}
        stream: Iterable = method.synthesize(requests, seed)
        it = iter(stream)
        bar = tqdm(total=len(requests), desc=label or method.name, unit="img", file=sys.stderr)
        stack.callback(bar.close)  # an error message starts on a line of its own
        for i, req in enumerate(requests):
            t0 = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                raise FastError(f"method {method.name!r} yielded {i} results for {len(requests)} requests") from None
            gen_seconds += time.perf_counter() - t0
            image, mask, meta = _check_output(method.name, i, req, item)
            k = counters.get(req.anomaly_type, 0)
            counters[req.anomaly_type] = k + 1
            image_path, mask_path = write_pair(tmp, pair_name(req.anomaly_type, k), image, mask)
            rows.append(pair_record(image_path, mask_path, req.source_normal,
                                    str(meta.get("mask_source", req.mask_source)), req.anomaly_type,
                                    seed if manifest_seed is None else manifest_seed, meta))
            nfes.append(float(meta.get("nfe", 0)))
            bar.update(1)
        bar.close()
        if next(it, None) is not None:
            raise FastError(f"method {method.name!r} yielded more results than the {len(requests)} requests")
        write_manifest(tmp, rows)
        n = len(rows)
        timing = {
            "method": method.name,
            "device": device,
            "images": n,
            "wall_seconds": gen_seconds,
            "images_per_s": n / max(gen_seconds, 1e-9),
            "seconds_per_image": gen_seconds / n if n else 0.0,
            "nfe": float(np.mean(nfes)) if nfes else 0.0,
            "total_seconds": time.perf_counter() - t_start,
            **(extra_timing or {}),
        }
        write_timing(tmp, timing)
    return timing


def _replicate_label(replicate: int | None) -> str:
    return "" if replicate is None else f" seed{replicate}"


def run_synthesize(args) -> int:
    cfg = load_config(args.config)
    seed = cfg["seed"] if args.seed is None else int(args.seed)
    n_per_type = cfg["synthesis"]["n_per_type"] if args.n_per_type is None else int(args.n_per_type)
    if n_per_type < 1:
        raise FastError(f"--n-per-type must be >= 1, got {n_per_type}")
    replicate = getattr(args, "replicate", None)
    if replicate is not None and int(replicate) < 0:
        raise FastError(f"--replicate must be a segmenter seed (>= 0), got {replicate}")
    # Cheap checks first: a bad call leaves nothing behind.
    if args.method not in registry.REGISTRY:
        raise FastError(f"unknown method {args.method!r}; known methods: {', '.join(registry.REGISTRY)}")
    prepared = PreparedCategory.load(manifest_path(args.prepared, args.dataset, args.category))
    ensure_dir(Path(args.out).parent, "--out")  # a path that cannot be written is refused first
    gen_dir = Path(args.generator_dir) if args.generator_dir else None
    needs = registry.GENERATOR_OF.get(args.method)
    if needs and gen_dir is None:
        raise FastError(f"method {args.method!r} samples from the trained generator {needs!r}: "
                        f"pass --generator-dir (run `fast train --generator {needs}` first)")
    if gen_dir is not None and not gen_dir.is_dir():
        raise FastError(f"--generator-dir {gen_dir} does not exist")
    t_load = time.perf_counter()
    module = registry.REGISTRY[args.method].split(":")[0]
    try:
        method = registry.build_method(args.method, cfg)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        raise FastError(f"method {args.method!r} is registered but its module {module} is missing") from None
    if method.generator and gen_dir is None:
        raise FastError(f"method {args.method!r} samples from the trained generator {method.generator!r}: "
                        f"pass --generator-dir")
    if method.generator:  # a diffusion method: its sampling steps and the generator's record first
        from fast.methods.diffusion_family import check_generator_record

        method.validate_sampling()
        check_generator_record(gen_dir, cfg, method.generator, args.dataset, args.category,
                               method=f"method {args.method!r}", prepared=prepared)
    method.load(gen_dir)
    method.prepare(prepared)  # e.g. defect-paste reads the gen_train defects here
    method_seed = category_seed(seed, args.dataset, args.category, replicate)
    requests = make_requests(prepared, cfg["synthesis"]["mask_pool"], n_per_type, method_seed,
                             use_pool_masks=method.uses_pool_masks)
    load_seconds = time.perf_counter() - t_load
    # the report keys timings by these contents (dataset, category, method and, per seed, replicate)
    keys = {"dataset": args.dataset, "category": args.category}
    if replicate is not None:
        keys["replicate"] = replicate
    timing = write_synthetic(args.out, method, requests, method_seed, device=_device(method, cfg),
                             label=f"{args.method} {args.dataset}/{args.category}" + _replicate_label(replicate),
                             extra_timing={**keys, "load_seconds": load_seconds, "seed": seed,
                                           "method_seed": method_seed, "n_per_type": n_per_type,
                                           **(method.synthesis_record() if method.generator else {})},
                             manifest_seed=seed)
    log.info("%s %s/%s: %d images in %.1f s (%.2f img/s, NFE %.0f) -> %s", args.method, args.dataset,
             args.category, timing["images"], timing["wall_seconds"], timing["images_per_s"],
             timing["nfe"], args.out)
    return 0
