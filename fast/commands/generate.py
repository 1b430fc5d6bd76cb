"""`fast generate FOLDER --out OUT`: defect/mask pairs on your own normal images, in one command.

FOLDER is one category in the ``folder`` layout (fast/data/formats/folder.py): ``images/[<type>/]``,
``masks/[<type>/]`` and ``normal/`` (or images with empty masks). The stages, each with its progress bar:

1. prepare: ``fast prepare``'s code (fast.data.prepare.prepare_category) into ``WORK/prepared``.
   No segmenter is evaluated here, so nothing is held out: every defect and every normal image is
   put in the training splits (gen_train, normal_train). Reused while ``source.json`` (folder,
   resolution, seed and a fingerprint of the folder's files) matches;
2. train: the shared ``base`` generator, then the method's own part (``fast train``'s code), in
   ``WORK/generators/<generator>``. A finished generator whose record matches the config
   (check_generator_record plus its training steps) is reused; an interrupted one resumes from its
   checkpoint. Hand-crafted methods skip this stage;
3. synthesize: ``n_per_type`` pairs per defect type on the normal images (fast.commands.synthesize),
   with the pool's augmented real masks or, with ``--masks DIR``, the given masks (cycling, per type);
4. OUT: ``images/``, ``masks/``, ``manifest.csv``, ``timing.json``, ``preview.png`` (real defects
   beside synthetic ones, zoomed around the mask, one block per type) and one folder per
   ``--export`` layout (fast.commands.export). OUT is written under a temporary name and renamed when
   complete; bad input is refused before anything is written (a WORK made by the failing run is removed).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
from pathlib import Path

import numpy as np
from tqdm import tqdm

from fast import methods as registry
from fast.config import load_config, validate_config
from fast.data.manifest import GOOD, SPLITS, PreparedCategory, manifest_path
from fast.data.pair_sets import read_set
from fast.data.prepare import prepare_category, read_mask, resize_mask
from fast.data.registry import HALF_MAX, get_format, resolve_options
from fast.errors import FastError
from fast.io import atomic_dir, ensure_dir, read_table, write_json
from fast.report.grid import Block, render, tiles_of
from fast.commands.export import export
from fast.commands.synthesize import _device, category_seed, make_requests, write_synthetic

log = logging.getLogger(__name__)

DATASET = "folder"
DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "config" / "folder_example.yaml"
PREVIEW_SAMPLES = 4
# the benchmark's held-out splits, handed to the generators instead (nothing is evaluated here)
TO_TRAINING = {"seg_test": "gen_train", "normal_test": "normal_train"}
LAYOUT = "FOLDER/images/<type>/, FOLDER/masks/<type>/ (same file names) and FOLDER/normal/"


# -- input checks (before anything is written) ---------------------------------------------------


def _config(path: str | None, method: str) -> dict:
    """The validated config, with ``methods`` set to the chosen method so that its generator
    geometry and sampling steps are checked now rather than after training."""
    if method not in registry.REGISTRY:  # before the config's own check of `methods`, which says less
        raise FastError(f"--method {method!r}: unknown method; known methods: {', '.join(registry.REGISTRY)}")
    if path is None and not DEFAULT_CONFIG.is_file():
        raise FastError(f"default config {DEFAULT_CONFIG} not found: pass --config FILE")
    cfg = load_config(path or DEFAULT_CONFIG)
    return validate_config({**cfg, "methods": [method]}, str(path or DEFAULT_CONFIG))


def _category(folder: Path) -> str:
    """FOLDER's category name (the folder's own name); a folder of several categories is refused."""
    if not folder.is_dir():
        raise FastError(f"FOLDER {folder}: directory not found; lay your images out as {LAYOUT}")
    if (folder / "images").is_dir():
        return folder.name
    fmt = get_format(DATASET)
    found = fmt.categories(folder, resolve_options(fmt, {}))
    if found:
        raise FastError(f"FOLDER {folder} holds several categories ({', '.join(found)}): pass one of them, "
                        f"e.g. `fast generate {folder / found[0]}`")
    raise FastError(f"FOLDER {folder}: no images/ folder of defects; lay your images out as {LAYOUT}")


def _types(folder: Path, category: str) -> list[str]:
    """FOLDER's defect types, from its file names alone (the order prepared data lists them in)."""
    fmt = get_format(DATASET)
    return sorted({s.anomaly_type for s in fmt.scan(folder, category, resolve_options(fmt, {}))} - {GOOD})


def _user_masks(directory: Path) -> dict[str | None, list[tuple[str, np.ndarray]]]:
    """``--masks DIR``: binary PNGs per defect type (subfolder name; None for files directly in DIR)."""
    if not directory.is_dir():
        raise FastError(f"--masks {directory}: directory not found")
    groups = {None: directory, **{p.name: p for p in sorted(directory.iterdir())
                                  if p.is_dir() and not p.name.startswith(".")}}
    out: dict[str | None, list[tuple[str, np.ndarray]]] = {}
    for key, folder in groups.items():
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".png")
        entries = [(p.relative_to(directory).as_posix(), read_mask(p, HALF_MAX)) for p in files]
        for rel, mask in entries:
            if not mask.any():
                raise FastError(f"--masks {directory / rel}: empty mask (no defect pixel); draw the defect "
                                f"in white or remove the file")
        if entries:
            out[key] = entries
    if not out:
        raise FastError(f"--masks {directory}: no PNG masks found; put binary PNG masks there (one subfolder "
                        f"per defect type, or directly in it for the first defect type)")
    return out


def _method(name: str, cfg: dict, masks: dict | None) -> registry.SynthesisMethod:
    method = registry.build_method(name, cfg)
    if method.generator:  # its sampling steps against the schedule, before any training
        method.validate_sampling()
    if masks is not None and not method.uses_pool_masks:
        raise FastError(f"--masks: method {name!r} draws its own defect footprint and ignores given masks; "
                        f"drop --masks or choose a method that paints into a mask (e.g. fast)")
    return method


def _inside(path: Path, other: Path) -> bool:
    path, other = path.resolve(), other.resolve()
    return path == other or path.is_relative_to(other)


def _check_paths(folder: Path, out: Path, work: Path, masks: Path | None) -> None:
    """OUT is replaced whole on every run: it must hold neither the inputs nor WORK, and writing
    into FOLDER (or WORK into OUT) would feed outputs back in as data."""
    inputs = [("FOLDER", folder)] + ([("--masks", masks)] if masks is not None else []) + [("--work", work)]
    for what, path in inputs:
        if _inside(path, out):
            raise FastError(f"--out {out} would replace {what} {path}, which lies inside it: choose another --out")
    for what, path in (("--out", out), ("--work", work)):
        if _inside(path, folder) or _inside(folder, path):
            raise FastError(f"{what} {path} overlaps FOLDER {folder}: put it outside your data folder")


@contextlib.contextmanager
def _removed_on_error(work: Path):
    """A WORK directory this run created is removed again when the input turns out to be bad, so
    that a refused call leaves nothing behind (an interrupted training keeps its checkpoints)."""
    created = not work.exists()
    try:
        yield
    except FastError:
        if created:
            shutil.rmtree(work, ignore_errors=True)
        raise


@contextlib.contextmanager
def _bar(desc: str, total: int, unit: str):
    """A stage's progress bar that clears itself when the stage fails, so that a refusal stays the
    one line of the CLI's error."""
    bar = tqdm(total=total, desc=desc, unit=unit)
    try:
        yield bar
    except BaseException:
        bar.leave = False
        raise
    finally:
        bar.close()


# -- 1. prepare ------------------------------------------------------------------------------------


def _fingerprint(folder: Path) -> str:
    """Names, sizes and modification times of the files the layout reads: changes when the data
    does (and not when, say, OUT was put inside FOLDER)."""
    h = hashlib.sha256()
    options = resolve_options(get_format(DATASET), {})
    files = [p for key in ("images", "masks", "normal") for p in (folder / options[key]).rglob("*")]
    for p in sorted(files):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.relative_to(folder).as_posix()}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _all_for_training(manifest: Path) -> None:
    table = read_table(manifest, "`fast generate`")
    table["split"] = table["split"].replace(TO_TRAINING)
    rank = {s: i for i, s in enumerate(SPLITS)}
    table = table.sort_values(["split", "anomaly_type", "image"], key=lambda c: c.map(rank) if c.name == "split" else c)
    table.to_csv(manifest, index=False, lineterminator="\n")


def prepare(folder: Path, category: str, prepared_root: Path, cfg: dict) -> tuple[PreparedCategory, bool]:
    """(prepared category, whether it was (re)prepared by this call)."""
    target = prepared_root / DATASET / category
    record = {"source": str(folder.resolve()), "resolution": int(cfg["resolution"]), "seed": int(cfg["seed"]),
              "files": _fingerprint(folder)}
    stamp = target / "source.json"
    if stamp.is_file() and (target / "manifest.csv").is_file() and json.loads(stamp.read_text()) == record:
        log.info("prepare: reusing %s", target)
        return PreparedCategory.load(target), False
    fmt = get_format(DATASET)
    with _bar("prepare", 1, "folder") as bar, atomic_dir(target) as tmp:
        prepare_category(fmt, folder, category, tmp, int(cfg["resolution"]), int(cfg["seed"]),
                         resolve_options(fmt, {}))
        _all_for_training(tmp / "manifest.csv")
        write_json(tmp / stamp.name, record)
        bar.update(1)
    return PreparedCategory.load(manifest_path(prepared_root, DATASET, category)), True


# -- 2. train --------------------------------------------------------------------------------------


def generator_chain(method: str) -> list[str]:
    """The generators ``method`` needs, in training order (the shared base first); [] if none."""
    chain, g = [], registry.GENERATOR_OF[method]
    while g:
        chain.insert(0, g)
        g = registry.BASE_OF[g]
    return chain


def finished(directory: Path, cfg: dict, generator: str, category: str) -> bool:
    """A trained generator of this config and category (the record check of `fast synthesize`,
    plus the training budget, which that check leaves to the workflow)."""
    from fast.methods.diffusion_family import check_generator_record

    if not (directory / "model.safetensors").is_file():
        return False
    try:
        check_generator_record(directory, cfg, generator, DATASET, category)
        trained = json.loads((directory / "config.json").read_text()).get("train", {})
    except (FastError, ValueError):
        return False
    tr = cfg["diffusion"]["train"]
    steps = tr["steps"] if registry.BASE_OF[generator] is None else tr["finetune_steps"]
    return (trained.get("steps"), trained.get("batch_size"), trained.get("seed")) == (
        int(steps), int(tr["batch_size"]), int(cfg["seed"]))


def train(method: str, cfg: dict, prepared: PreparedCategory, root: Path, fresh_data: bool) -> Path | None:
    """The directory of the generator ``method`` samples from, trained or reused; None if none."""
    chain = generator_chain(method)
    if not chain:
        return None
    if fresh_data and root.exists():  # trained on other data
        shutil.rmtree(root)
    base_dir, retrained = None, False
    for g in chain:
        d = root / g
        if not retrained and finished(d, cfg, g, prepared.category):
            log.info("train: reusing the %s generator in %s", g, d)
        else:
            if retrained and d.exists():  # its base has just changed: nothing of it stays valid
                shutil.rmtree(d)
            registry.build_method(g, cfg).fit(prepared, d, base_dir)
            retrained = True
        base_dir = d
    return base_dir


# -- 3. synthesize -------------------------------------------------------------------------------


def masks_by_type(masks: dict[str | None, list[tuple[str, np.ndarray]]], types: list[str],
                  directory: Path) -> dict[str, list[tuple[str, np.ndarray]]]:
    """The given masks per defect type of FOLDER (flat ones: the first type); checked before anything
    is written, since the generator only knows FOLDER's types."""
    by_type: dict[str, list[tuple[str, np.ndarray]]] = {}
    if not types:  # a folder without defects: prepare refuses it, naming what is missing
        return by_type
    for key, entries in masks.items():
        t = types[0] if key is None else key
        if t not in types:
            raise FastError(f"--masks {directory / key}: {key!r} is not a defect type of FOLDER (its types: "
                            f"{', '.join(types)}); name the subfolder after one of them")
        by_type.setdefault(t, []).extend(entries)
    return by_type


def apply_masks(requests: list, by_type: dict[str, list[tuple[str, np.ndarray]]]) -> None:
    """Give each request of a type with given masks the next of them (cycling), resized to its
    background; types without given masks keep their pool masks."""
    used: dict[str, int] = {}
    for req in requests:
        entries = by_type.get(req.anomaly_type)
        if not entries:
            continue
        k = used.get(req.anomaly_type, 0)
        used[req.anomaly_type] = k + 1
        rel, mask = entries[k % len(entries)]
        req.mask = resize_mask(mask, req.background.shape[:2])
        req.mask_source = f"given:{rel}"


# -- 4. preview and exports --------------------------------------------------------------------


def write_preview(path: Path, synthetic: Path, prepared: PreparedCategory, method: str) -> None:
    """One block per defect type: the real defects, then the synthetic ones (fast.report.grid)."""
    synth = read_set(synthetic, require=("anomaly_type",))
    real = prepared.rows("gen_train")
    blocks = [Block(f"{prepared.category}: {t}",
                    [("real", tiles_of(prepared.root, real[real["anomaly_type"] == t], PREVIEW_SAMPLES)),
                     (method, tiles_of(synthetic, synth[synth["anomaly_type"] == t], PREVIEW_SAMPLES,
                                       synthetic=True))])
              for t in prepared.anomaly_types]
    render(blocks, PREVIEW_SAMPLES).save(path, format="png")


def run_generate(args) -> int:
    # cheap checks first: a bad call leaves nothing behind
    cfg = _config(args.config, args.method)
    n_per_type = cfg["synthesis"]["n_per_type"] if args.n_per_type is None else int(args.n_per_type)
    if n_per_type < 1:
        raise FastError(f"--n-per-type must be >= 1, got {n_per_type}")
    exports = list(dict.fromkeys(args.export or []))
    folder = Path(args.folder)
    category = _category(folder)
    masks = _user_masks(Path(args.masks)) if args.masks else None
    given = masks_by_type(masks, _types(folder, category), Path(args.masks)) if masks is not None else None
    method = _method(args.method, cfg, masks)
    out = Path(args.out)
    work = Path(args.work) if args.work else out.with_name(out.name + ".work")
    _check_paths(folder, out, work, Path(args.masks) if args.masks else None)
    ensure_dir(out.parent, "--out")
    with _removed_on_error(work):
        prepared, fresh = prepare(folder, category, work / "prepared", cfg)
        gen_dir = train(args.method, cfg, prepared, work / "generators", fresh)
        method.load(gen_dir)
        method.prepare(prepared)
        seed = category_seed(int(cfg["seed"]), DATASET, category)
        requests = make_requests(prepared, cfg["synthesis"]["mask_pool"], n_per_type, seed,
                                 use_pool_masks=method.uses_pool_masks)
        if given is not None:
            apply_masks(requests, given)
    normals = [prepared.root / p for p in prepared.rows("normal_train")["image"]]
    with atomic_dir(out) as tmp:
        timing = write_synthetic(tmp, method, requests, seed, device=_device(method, cfg),
                                 label=f"synthesize {args.method}",
                                 extra_timing={"dataset": DATASET, "category": category, "seed": int(cfg["seed"]),
                                               "method_seed": seed, "n_per_type": n_per_type},
                                 manifest_seed=int(cfg["seed"]))
        with _bar("preview + exports", 1 + len(exports), "file") as bar:
            write_preview(tmp / "preview.png", tmp, prepared, args.method)
            bar.update(1)
            for fmt in exports:
                export(tmp / fmt, fmt, tmp, normals)
                bar.update(1)
    log.info("generate: %d pairs of %s (%s) -> %s%s", timing["images"], args.method, ", ".join(prepared.anomaly_types),
             out, f" (exports: {', '.join(exports)})" if exports else "")
    return 0


__all__ = ["DEFAULT_CONFIG", "apply_masks", "finished", "generator_chain", "masks_by_type", "prepare",
           "run_generate", "train", "write_preview"]
