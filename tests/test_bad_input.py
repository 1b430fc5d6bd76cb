"""Bad input and faults, one table (issue 13): every case ends in ONE line naming the file or key
and what to do (exit 2), never a traceback, or in the correct result; and the output directory is
empty (no file, no temporary), unchanged, or holds exactly the correct result.

Add a case = one ``Case(...)`` line in CASES (and, if it needs new input, one small setup
function above it). A setup gets the shared ``World`` (a prepared synthetic set and tiny trained
generators), a fresh directory and pytest's monkeypatch, and returns a :class:`Run`: the CLI argv
and the output directory to check. A full disk is real where it can be: a small tmpfs, filled
(:func:`small_full_disk`; mounting needs root, else those cases are skipped). Other faults of the
machine (a read-only file system, a full disk in one chosen call) are simulated by patching the one
call that would fail (the suite runs as root, so chmod cannot).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import ndimage

from archives import make_zip, mt_source_dir

from fast.cli import main
from dummy_data import write_dummy

# ---------------------------------------------------------------------------------------------
# the shared world: one prepared synthetic set (fabric, washer at 32 px) and tiny generators of fabric

TINY = {"experiment": "bad", "device": "cpu", "seed": 0,
        "datasets": {"synthetic": {"categories": ["fabric"]}}, "resolution": 32,
        "diffusion": {"num_train_timesteps": 50, "unet": {"block_out_channels": [8, 16]},
                      "farm": {"widths": [4, 8, 8]}, "train": {"steps": 2, "finetune_steps": 1, "batch_size": 2}},
        "aias": {"steps": 2, "t_fine": 1}, "synthesis": {"n_per_type": 1}, "methods": ["fast", "cutpaste"]}
SYNTH_OPTIONS = {"categories": ["fabric", "washer"], "image_size": 32, "n_normal_train": 4,
                 "n_normal_test": 1, "n_anomalous_per_type": 2}


def cfg_json(**over) -> str:
    """TINY with dotted overrides: cfg_json(**{"diffusion.train.stepz": 3})."""
    cfg = json.loads(json.dumps(TINY))
    for dotted, value in over.items():
        *parents, last = dotted.split(".")
        cur = cfg
        for p in parents:
            cur = cur.setdefault(p, {})
        cur[last] = value
    return json.dumps(cfg)


@dataclass
class World:
    root: Path
    raw: Path        # raw synthetic (fabric, washer)
    prepared: Path   # prepared root: synthetic/{fabric,washer}
    base: Path       # trained `base` generator of fabric
    fast: Path       # trained `fast` generator of fabric


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("world")
    assert main(["fetch", "synthetic", "--out", str(root / "raw"), "--options", json.dumps(SYNTH_OPTIONS)]) == 0
    raw, prepared = root / "raw" / "synthetic", root / "prepared"
    assert main(["prepare", "synthetic", "--root", str(raw), "--out", str(prepared), "--resolution", "32"]) == 0
    common = ["--config", cfg_json(), "--dataset", "synthetic", "--category", "fabric", "--prepared", str(prepared)]
    assert main(["train", *common, "--generator", "base", "--out", str(root / "gen" / "base")]) == 0
    assert main(["train", *common, "--generator", "fast", "--base-dir", str(root / "gen" / "base"),
                 "--out", str(root / "gen" / "fast")]) == 0
    return World(root, raw, prepared, root / "gen" / "base", root / "gen" / "fast")


# ---------------------------------------------------------------------------------------------
# the table's machinery


@dataclass
class Run:
    argv: list[str] | None  # None: the setup ran the command itself and gives ``result``
    out: Path               # the output directory whose state is checked
    result: tuple[int, str] | None = None
    check: Callable[[Path], None] | None = None  # extra check of a correct result


EMPTY, UNCHANGED, RESULT = "empty", "unchanged", "result"


@dataclass
class Case:
    id: str
    setup: Callable[[World, Path, pytest.MonkeyPatch], Run]
    code: int
    says: tuple[str, ...] | str
    out: str = EMPTY               # EMPTY | UNCHANGED | RESULT (then Run.check holds the check)
    not_says: tuple[str, ...] = ()
    origin: str = "issue"          # "issue": one of the 27 reported; "passing": one of the 10 that passed; "more"

    def __post_init__(self):
        if isinstance(self.says, str):
            self.says = (self.says,)


def snapshot(out: Path) -> dict[str, str]:
    if not out.exists():
        return {}
    if out.is_file():
        return {".": hashlib.sha256(out.read_bytes()).hexdigest()}
    return {p.relative_to(out).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir")
            for p in sorted(out.rglob("*"))}


def temporaries(out: Path) -> list[str]:
    """Hidden entries (temporaries of fast.io are ``.<name>.<host>.<pid>-<x>.tmp``) under ``out``."""
    if not out.is_dir():
        return []
    return sorted(p.relative_to(out).as_posix() for p in out.rglob(".*"))


def assert_empty(out: Path) -> None:
    """Nothing written: no file and no temporary (empty parent folders may exist)."""
    files = [k for k, v in snapshot(out).items() if v != "dir"] if out.is_dir() else (["."] if out.exists() else [])
    assert files == [] and temporaries(out) == [], (files, temporaries(out))


def cmd(argv: list[str]) -> str:
    return next(a for a in argv if not a.startswith("-"))


def write_noise(path: Path, size: int = 32, rgb: bool = True, seed: int = 0, fmt: str | None = None) -> None:
    rng = np.random.default_rng(seed)
    arr = rng.integers(30, 220, (size, size, 3) if rgb else (size, size), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, format=fmt)


def rect(size: int = 32, i: int = 0) -> np.ndarray:
    m = np.zeros((size, size), bool)
    m[4 + i:14 + i, 6:20] = True
    return m


def save_mask(path: Path, m: np.ndarray, kind: str = "L255") -> None:
    """A mask as the formats store them: L 0/255, L 0/1, mode 1, palette index 1, JPEG 0/255."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "L255":
        Image.fromarray(m.astype(np.uint8) * 255).save(path)
    elif kind == "L01":
        Image.fromarray(m.astype(np.uint8)).save(path)
    elif kind == "mode1":
        Image.fromarray(m).convert("1").save(path)
    elif kind == "palette":
        im = Image.fromarray(m.astype(np.uint8), mode="L").convert("P")
        im.putpalette([0, 0, 0, 255, 0, 0] + [0] * (256 * 3 - 6))
        im.save(path)
    elif kind == "jpeg255":
        Image.fromarray(m.astype(np.uint8) * 255).save(path, format="JPEG", quality=60)
    else:
        raise ValueError(kind)


def folder_dataset(root: Path, n_normal: int = 4, n_defect: int = 3, mask_kind: str = "L255",
                   mask_ext: str = ".png", types=("dent",)) -> Path:
    """A `folder` dataset ``root/parts/{normal,images/<type>,masks/<type>}``; returns root."""
    cat = root / "parts"
    for i in range(n_normal):
        write_noise(cat / "normal" / f"n{i:02d}.png", seed=100 + i)
    for t in types:
        for i in range(n_defect):
            write_noise(cat / "images" / t / f"{t}{i:02d}.png", seed=200 + i)
            save_mask(cat / "masks" / t / f"{t}{i:02d}{mask_ext}", rect(i=i), mask_kind)
    return root


def prep_argv(dataset: str, root: Path, out: Path, *extra: str) -> list[str]:
    return ["prepare", dataset, "--root", str(root), "--out", str(out), "--resolution", "32", *extra]


def synth_argv(w: World, out: Path, method: str = "fast", category: str = "fabric", gen: Path | None = None,
               config: str | None = None) -> list[str]:
    argv = ["synthesize", "--config", config or cfg_json(), "--dataset", "synthetic", "--category", category,
            "--method", method, "--prepared", str(w.prepared), "--out", str(out)]
    if method not in ("cutpaste", "cutpaste-scar", "draem", "nsa", "defect-paste"):
        argv += ["--generator-dir", str(gen or w.fast)]
    return argv


def train_argv(w: World, out: Path, config: str, generator: str = "base", category: str = "fabric",
               base: Path | None = None) -> list[str]:
    argv = ["train", "--config", config, "--dataset", "synthetic", "--category", category, "--generator", generator,
            "--prepared", str(w.prepared), "--out", str(out)]
    return argv + (["--base-dir", str(base)] if base else [])


def manifest(out: Path, dataset: str, category: str) -> pd.DataFrame:
    return pd.read_csv(out / dataset / category / "manifest.csv", dtype=str, keep_default_na=False)


def refuse_model_load(mp):
    """The case must be decided before any generator weights load."""
    from fast.diffusion.model import DiffusionModel

    def boom(*a, **k):
        raise AssertionError("the generator was loaded before the bad input was refused")

    mp.setattr(DiffusionModel, "load", classmethod(boom))


def fail_under(mp, out: Path, err: int, target: str = "save") -> None:
    """Simulate a full disk (ENOSPC) / read-only file system (EROFS) for writes under ``out``."""
    reason = os.strerror(err)
    if target == "save":      # every PNG written (prepare, synthesize)
        orig = Image.Image.save

        def save(self, fp, *a, **k):
            if str(fp).startswith(str(out)):
                raise OSError(err, reason, str(fp))
            return orig(self, fp, *a, **k)

        mp.setattr(Image.Image, "save", save)
    elif target == "mkdir":   # a read-only mount: no directory can be made
        orig_mkdir = os.mkdir

        def mkdir(path, mode=0o777, *a, **k):
            if str(path).startswith(str(out)):
                raise OSError(err, reason, str(path))
            return orig_mkdir(path, mode, *a, **k)

        mp.setattr(os, "mkdir", mkdir)
    elif target == "copyfileobj":  # archive extraction (zipfile copies every member with it)
        def copy(*a, **k):
            raise OSError(err, reason)

        mp.setattr(shutil, "copyfileobj", copy)
    elif target == "copyfile":   # copying a local source directory (shutil.copy2 calls it)
        def copyfile(src, dst, *a, **k):
            raise OSError(err, reason, str(dst))

        mp.setattr(shutil, "copyfile", copyfile)
    elif target == "safetensors":
        import safetensors.torch

        def save_file(tensors, filename, *a, **k):
            raise OSError(err, reason, str(filename))

        mp.setattr(safetensors.torch, "save_file", save_file)


def mt_source(tmp: Path) -> Path:
    return mt_source_dir(tmp)


def fetch_argv(source: Path, out: Path, *extra: str) -> list[str]:
    return ["fetch", "magnetic_tile", "--out", str(out), "--source", str(source), *extra]


# ---------------------------------------------------------------------------------------------
# setups: config


def s_config(**over):
    def setup(w, tmp, mp):
        refuse_model_load(mp)
        return Run(train_argv(w, tmp / "gen", cfg_json(**over)), tmp / "gen")
    return setup


def s_config_synth(**over):
    def setup(w, tmp, mp):
        refuse_model_load(mp)
        return Run(synth_argv(w, tmp / "syn", config=cfg_json(**over)), tmp / "syn")
    return setup


def s_config_file(content: bytes):
    """`fast train --config FILE` with FILE holding ``content``."""
    def setup(w, tmp, mp):
        refuse_model_load(mp)
        path = tmp / "experiment.yaml"
        path.write_bytes(content)
        return Run(train_argv(w, tmp / "gen", str(path)), tmp / "gen")
    return setup


def s_method_steps(method: str, steps: int):
    def setup(w, tmp, mp):
        refuse_model_load(mp)
        cfg = cfg_json(**{"methods": [method], f"method_options.{method}": {"steps": steps}})
        gen = w.fast if method.startswith("fast") else w.base
        return Run(synth_argv(w, tmp / "syn", method=method, gen=gen, config=cfg), tmp / "syn")
    return setup


# setups: generators


def s_synth(method="fast", category="fabric", gen="fast", **over):
    def setup(w, tmp, mp):
        refuse_model_load(mp)
        return Run(synth_argv(w, tmp / "syn", method, category, getattr(w, gen), cfg_json(**over)), tmp / "syn")
    return setup


def s_synth_ok(w, tmp, mp):
    def check(out):
        t = pd.read_csv(out / "manifest.csv")
        assert len(t) == 3 and all((out / p).is_file() for p in t["image"])
    return Run(synth_argv(w, tmp / "syn"), tmp / "syn", check=check)


def s_synth_generator_patch(patch):
    """A generator recorded as trained on ``patch`` windows (its config.json says so), sampled by a
    run whose diffusion.patch is null."""
    def setup(w, tmp, mp):
        refuse_model_load(mp)
        gen = tmp / "gen"
        shutil.copytree(w.fast, gen)
        record = json.loads((gen / "config.json").read_text())
        record["patch"] = patch
        (gen / "config.json").write_text(json.dumps(record))
        return Run(synth_argv(w, tmp / "syn", gen=gen), tmp / "syn")
    return setup


def s_synth_prepared_other_resolution(w, tmp, mp):
    """The generator and the config at 32 px, the data prepared again at 64 px."""
    refuse_model_load(mp)
    prepared = tmp / "prepared64"
    assert main(prep_argv("synthetic", w.raw, prepared, "--category", "fabric", "--resolution", "64")) == 0
    argv = synth_argv(w, tmp / "syn")
    argv[argv.index("--prepared") + 1] = str(prepared)
    return Run(argv, tmp / "syn")


def s_train_base_mismatch(w, tmp, mp):
    return Run(train_argv(w, tmp / "gen", cfg_json(), "fast", "washer", w.base), tmp / "gen")


def s_train_full_disk(w, tmp, mp):
    fail_under(mp, tmp / "gen", errno.ENOSPC, "safetensors")

    def check(out):  # nothing that looks finished, no temporary
        assert not (out / "model.safetensors").exists() and not (out / "config.json").exists()
        assert temporaries(out) == []
    return Run(train_argv(w, tmp / "gen", cfg_json(**{"diffusion.train.steps": 1})), tmp / "gen", check=check)


# setups: output paths and faults


def s_under_file(command: str):
    def setup(w, tmp, mp):
        blocker = tmp / "afile"
        blocker.write_text("not a directory\n")
        out = blocker / "sub"
        if command == "prepare":
            argv = prep_argv("synthetic", w.raw, out)
        elif command == "synthesize":
            argv = synth_argv(w, out, "cutpaste")
        elif command == "train":
            refuse_model_load(mp)
            argv = train_argv(w, out, cfg_json(), "fast", base=w.base)
        else:
            argv = ["fetch", "synthetic", "--out", str(out), "--options", json.dumps(SYNTH_OPTIONS)]
        return Run(argv, blocker)
    return setup


def s_prepare_fault(err: int, target: str):
    def setup(w, tmp, mp):
        out = tmp / "prep"
        fail_under(mp, out, err, target)
        return Run(prep_argv("synthetic", w.raw, out, "--category", "fabric"), out)
    return setup


def s_synth_full_disk(w, tmp, mp):
    fail_under(mp, tmp, errno.ENOSPC)  # (the temporary is a sibling of --out)
    return Run(synth_argv(w, tmp / "syn", "cutpaste"), tmp / "syn")


def s_synth_replaces_nothing_on_fault(w, tmp, mp):
    """A failed rerun leaves the previous complete output exactly as it was."""
    out = tmp / "syn"
    assert main(synth_argv(w, out, "cutpaste")) == 0
    fail_under(mp, tmp, errno.ENOSPC)
    return Run(synth_argv(w, out, "cutpaste"), out)


def s_fetch_full_disk_archive(w, tmp, mp):
    archive = make_zip(mt_source(tmp), tmp / "master.zip")
    fail_under(mp, tmp, errno.ENOSPC, "copyfileobj")
    return Run(fetch_argv(archive, tmp / "raw"), tmp / "raw")


def s_fetch_full_disk_copy(w, tmp, mp):
    src = mt_source(tmp)
    fail_under(mp, tmp, errno.ENOSPC, "copyfile")
    return Run(fetch_argv(src, tmp / "raw"), tmp / "raw")


# setups: damaged files written by an earlier step


def _damage(path: Path, how: str) -> None:
    """An empty file, or the first half of it (a copy cut short)."""
    data = path.read_bytes()
    path.write_bytes(b"" if how == "empty" else data[: len(data) // 2])


def s_synth_damaged_weights(how: str):
    def setup(w, tmp, mp):
        gen = tmp / "gen"
        shutil.copytree(w.fast, gen)
        _damage(gen / "model.safetensors", how)
        return Run(synth_argv(w, tmp / "syn", gen=gen), tmp / "syn")
    return setup


def s_train_damaged_base(w, tmp, mp):
    base = tmp / "base"
    shutil.copytree(w.base, base)
    _damage(base / "model.safetensors", "empty")
    return Run(train_argv(w, tmp / "gen", cfg_json(), "fast", base=base), tmp / "gen")


def _segmenter_dir(d: Path) -> Path:
    """What train-segmenter leaves (train_config.json + model.safetensors), weights cut short."""
    import torch
    from safetensors.torch import save_file

    d.mkdir(parents=True)
    (d / "train_config.json").write_text(json.dumps({"segmenter": "unet", "in_channels": 3, "dataset": "synthetic",
                                                     "category": "fabric", "resolution": 32}))
    save_file({"w": torch.zeros(64)}, str(d / "model.safetensors"))
    _damage(d / "model.safetensors", "half")
    return d


def s_evaluate_damaged_weights(w, tmp, mp):
    model = _segmenter_dir(tmp / "seg")
    return Run(["evaluate", "--config", cfg_json(), "--dataset", "synthetic", "--category", "fabric",
                "--prepared", str(w.prepared), "--model", str(model), "--out", str(tmp / "eval")], tmp / "eval")


def s_synth_empty_prepared_manifest(w, tmp, mp):
    prepared = tmp / "prepared"
    shutil.copytree(w.prepared, prepared)
    (prepared / "synthetic/fabric/manifest.csv").write_bytes(b"")
    argv = synth_argv(w, tmp / "syn", "cutpaste")
    argv[argv.index("--prepared") + 1] = str(prepared)
    return Run(argv, tmp / "syn")


def seg_argv(w: World, out: Path, method: str, synthetic: Path | None = None, config: str | None = None) -> list[str]:
    argv = ["train-segmenter", "--config", config or cfg_json(**{"segmentation.steps": 1}), "--dataset", "synthetic",
            "--category", "fabric", "--method", method, "--segmenter", "unet", "--seed", "0",
            "--prepared", str(w.prepared), "--out", str(out)]
    return argv + (["--synthetic", str(synthetic)] if synthetic else [])


def s_segmenter_empty_synthetic_manifest(w, tmp, mp):
    syn = tmp / "syn"
    syn.mkdir()
    (syn / "manifest.csv").write_bytes(b"")
    return Run(seg_argv(w, tmp / "seg", "cutpaste", syn), tmp / "seg")


# setups: a real full disk (a small tmpfs, filled)


def small_full_disk(tmp: Path, size_kib: int, free_kib: int) -> Path:
    """Mount a tmpfs of ``size_kib`` at tmp/disk and fill it up to ``free_kib``; skip without root."""
    disk = tmp / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {mounted.stderr.strip()}")
    filler = disk / "filler"
    filler.write_bytes(b"\0" * ((size_kib - free_kib) * 1024))
    return disk


@pytest.fixture
def unmount(tmp_path):
    """Unmount tmp/disk after the case, whatever happened."""
    yield
    disk = tmp_path / "disk"
    if disk.is_dir() and os.path.ismount(disk):
        import gc

        gc.collect()  # a failed torch.save keeps its file open until collected
        if subprocess.run(["umount", str(disk)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(disk)], check=False)  # still busy: detach it


def _assert_no_partial_training(out: Path) -> None:
    """No final weights or record, no temporary, no checkpoint without the last.json that names it."""
    assert not (out / "model.safetensors").exists() and not (out / "config.json").exists()
    assert temporaries(out) == []
    ckpt = out / "checkpoints"
    files = sorted(p.name for p in ckpt.glob("ckpt-*")) if ckpt.is_dir() else []
    if files:
        step = json.loads((ckpt / "last.json").read_text())["step"]
        assert files == [f"ckpt-{step}.optim.pt", f"ckpt-{step}.safetensors"], files


def s_train_real_full_disk(free_of_weights: float):
    """Train on a full tmpfs with room for ``free_of_weights`` x the generator's weights: 0.5 fails
    on the first weights (SafetensorError), 1.5 fits the checkpoint's weights but not its optimiser
    state (torch.save's RuntimeError)."""
    def setup(w, tmp, mp):
        weights_kib = (w.base / "model.safetensors").stat().st_size // 1024
        disk = small_full_disk(tmp, 4096, 16 + int(weights_kib * free_of_weights))
        config = cfg_json(**{"diffusion.train.steps": 2, "diffusion.train.checkpoint_every": 1})
        return Run(train_argv(w, disk / "gen", config), disk / "gen", check=_assert_no_partial_training)
    return setup


def s_segmenter_real_full_disk(w, tmp, mp):
    disk = small_full_disk(tmp, 1024, 64)

    def check(out):
        assert not (out / "model.safetensors").exists() and not (out / "train_config.json").exists()
        assert temporaries(out) == []
    return Run(seg_argv(w, disk / "seg", "no-anomalies"), disk / "seg", check=check)


# setups: data


def s_folder(mask_kind="L255", mask_ext=".png", **kw):
    def setup(w, tmp, mp):
        root = folder_dataset(tmp / "raw", mask_kind=mask_kind, mask_ext=mask_ext, **kw)

        def check(out):
            t = manifest(out, "folder", "parts")
            anom = t[t["anomaly_type"] == "dent"]
            assert len(anom) == 3 and (anom["mask"] != "").all()
            for _, row in anom.iterrows():
                got = np.asarray(Image.open(out / "folder" / "parts" / row["mask"])) > 0
                want = rect(i=int(Path(row["source"]).stem[-2:]))
                assert got.sum() > 0 and (got & want).sum() / (got | want).sum() >= 0.9, row["source"]
                near = ndimage.binary_dilation(want, iterations=2)  # JPEG noise is no anomaly
                assert not (got & ~near).any(), row["source"]
        return Run(prep_argv("folder", root, tmp / "prep"), tmp / "prep", check=check)
    return setup


def s_folder_empty_mask(w, tmp, mp):
    root = folder_dataset(tmp / "raw", n_defect=4)
    save_mask(root / "parts/masks/dent/dent03.png", np.zeros((32, 32), bool))

    def check(out):
        t = manifest(out, "folder", "parts")
        row = t[t["source"] == "images/dent/dent03.png"].iloc[0]
        assert row["anomaly_type"] == "good" and row["mask"] == "" and row["split"] in ("normal_train", "normal_test")
        assert (t["anomaly_type"] == "dent").sum() == 3
        info = json.loads((out / "folder/parts/prepare.json").read_text())
        assert info["empty_masks_as_normals"] == ["images/dent/dent03.png"]
    return Run(prep_argv("folder", root, tmp / "prep"), tmp / "prep", check=check)


def s_folder_all_masks_empty(w, tmp, mp):
    root = folder_dataset(tmp / "raw", n_defect=2)
    for p in (root / "parts/masks/dent").iterdir():
        save_mask(p, np.zeros((32, 32), bool))
    return Run(prep_argv("folder", root, tmp / "prep"), tmp / "prep")


def s_no_normals(w, tmp, mp):
    root = folder_dataset(tmp / "raw", n_normal=0)
    return Run(prep_argv("folder", root, tmp / "prep"), tmp / "prep")


def s_no_anomalies(w, tmp, mp):
    root = folder_dataset(tmp / "raw", n_defect=0, types=())
    (root / "parts/images").mkdir(parents=True)
    return Run(prep_argv("folder", root, tmp / "prep"), tmp / "prep")


def s_no_train_normals(w, tmp, mp):
    write_dummy("mvtec_ad", tmp / "raw", categories=["bottle"], n_train_good=2, n_test_good=1, n_anomalous=2, size=32)
    shutil.rmtree(tmp / "raw/bottle/train")
    return Run(prep_argv("mvtec_ad", tmp / "raw", tmp / "prep"), tmp / "prep")


def s_folder_counts(**kw):
    def setup(w, tmp, mp):
        return Run(prep_argv("folder", folder_dataset(tmp / "raw", **kw), tmp / "prep"), tmp / "prep")
    return setup


def s_no_test_normals(w, tmp, mp):
    write_dummy("mvtec_ad", tmp / "raw", categories=["bottle"], n_train_good=2, n_test_good=0, n_anomalous=2, size=32)
    return Run(prep_argv("mvtec_ad", tmp / "raw", tmp / "prep"), tmp / "prep")


def s_empty_type_folder(w, tmp, mp):
    write_dummy("mvtec_ad", tmp / "raw", categories=["bottle"], n_train_good=2, n_test_good=1, n_anomalous=2, size=32)
    (tmp / "raw/bottle/test/scratch").mkdir()

    def check(out):
        assert set(manifest(out, "mvtec_ad", "bottle")["anomaly_type"]) == {"good", "broken", "crack"}
    return Run(prep_argv("mvtec_ad", tmp / "raw", tmp / "prep"), tmp / "prep", check=check)


def s_symlink_out(w, tmp, mp):
    src = mt_source(tmp)
    outside = tmp / "elsewhere" / "secret.jpg"
    write_noise(outside, rgb=False, fmt="JPEG")
    (src / "MT_Crack" / "Imgs" / "linked.jpg").symlink_to(outside)
    return Run(fetch_argv(src, tmp / "raw"), tmp / "raw")


def s_symlink_loop(w, tmp, mp):
    src = mt_source(tmp)
    (src / "MT_Crack" / "loop").symlink_to(src / "MT_Crack")
    return Run(fetch_argv(src, tmp / "raw"), tmp / "raw")


def s_symlink_inside_ok(w, tmp, mp):
    src = mt_source(tmp)
    (src / "notes.md").symlink_to(src / "README.md")

    def check(out):
        assert (out / "magnetic_tile/notes.md").read_text() == (src / "README.md").read_text()
    return Run(fetch_argv(src, tmp / "raw"), tmp / "raw", check=check)


# setups: left behind


SLOW_PREPARE = textwrap.dedent("""
    import sys, time
    import fast.data.prepare as p
    write = p.write_png
    def slow(path, arr):
        write(path, arr)
        time.sleep(120)          # killed here, with a temporary category directory on disk
    p.write_png = slow
    from fast.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def _start_and_signal(w: World, out: Path, sig: int) -> tuple[int, str]:
    argv = prep_argv("synthetic", w.raw, out, "--category", "fabric")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-c", SLOW_PREPARE, *argv], stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.time() + 60
        while not list((out / "synthetic").glob(".fabric.*.tmp/*/*.png")):
            assert proc.poll() is None and time.time() < deadline, "prepare did not start writing"
            time.sleep(0.05)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err


def s_sigkill_then_rerun(w, tmp, mp):
    out = tmp / "prep"
    code, _ = _start_and_signal(w, out, signal.SIGKILL)
    assert code == -signal.SIGKILL and temporaries(out), "the kill left no temporary: nothing tested"

    def check(out):
        assert temporaries(out) == [] and (out / "synthetic/fabric/manifest.csv").is_file()
    return Run(prep_argv("synthetic", w.raw, out, "--category", "fabric"), out, check=check)


def s_legacy_temporary(w, tmp, mp):
    """A temporary named as before pids were in the names (``.<name>.<8 chars>.tmp``)."""
    out = tmp / "prep"
    stale = out / "synthetic" / ".fabric.k2x_9abc.tmp"
    (stale / "images").mkdir(parents=True)
    (stale / "images" / "x.png").write_bytes(b"partial")

    def check(out):
        assert temporaries(out) == [] and (out / "synthetic/fabric/manifest.csv").is_file()
    return Run(prep_argv("synthetic", w.raw, out, "--category", "fabric"), out, check=check)


def s_sigterm(w, tmp, mp):
    out = tmp / "prep"
    return Run(None, out, result=_start_and_signal(w, out, signal.SIGTERM))


def s_umask(w, tmp, mp):
    os.umask(0o002)  # a shared data directory: group-writable (the runner restores the umask)

    def check(out):
        cat = out / "synthetic" / "fabric"
        assert oct(cat.stat().st_mode & 0o777) == oct(0o775)
        assert oct((cat / "images").stat().st_mode & 0o777) == oct(0o775)
        assert oct((cat / "manifest.csv").stat().st_mode & 0o777) == oct(0o664)
        assert oct((cat / "prepare.json").stat().st_mode & 0o777) == oct(0o664)  # an atomic_path file
    return Run(prep_argv("synthetic", w.raw, tmp / "prep", "--category", "fabric"), tmp / "prep", check=check)


def s_umask_synth(w, tmp, mp):
    os.umask(0o022)

    def check(out):
        assert oct(out.stat().st_mode & 0o777) == oct(0o755)
        assert oct((out / "timing.json").stat().st_mode & 0o777) == oct(0o644)
    return Run(synth_argv(w, tmp / "syn", "cutpaste"), tmp / "syn", check=check)


def s_umask_train(w, tmp, mp):
    """Weights follow the umask like every other output (safetensors alone writes them 0600)."""
    os.umask(0o002)

    def check(out):
        for name in ("model.safetensors", "config.json", "train_log.csv"):
            assert oct((out / name).stat().st_mode & 0o777) == oct(0o664), name
    return Run(train_argv(w, tmp / "gen", cfg_json(**{"diffusion.train.steps": 1})), tmp / "gen", check=check)


# setups: the ten that already passed (and their kin)


def s_mvtec(mutate: Callable[[Path], None], *extra: str):
    def setup(w, tmp, mp):
        write_dummy("mvtec_ad", tmp / "raw", categories=["bottle", "grid"], n_train_good=2, n_test_good=1,
                    n_anomalous=2, size=40)
        mutate(tmp / "raw")
        return Run(prep_argv("mvtec_ad", tmp / "raw", tmp / "prep", *extra), tmp / "prep")
    return setup


def _corrupt(raw):
    (raw / "grid/test/crack/001.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)


def _mask_size(raw):
    Image.fromarray(np.zeros((20, 24), np.uint8)).save(raw / "bottle/ground_truth/broken/001_mask.png")


def _no_mask(raw):
    (raw / "grid/ground_truth/crack/001_mask.png").unlink()


def s_truncated_jpeg(w, tmp, mp):
    write_dummy("magnetic_tile", tmp / "raw", n_anomalous=2, n_train_good=2, n_test_good=1)
    jpg = sorted((tmp / "raw/MT_Crack/Imgs").glob("*.jpg"))[0]
    jpg.write_bytes(jpg.read_bytes()[:200])
    return Run(prep_argv("magnetic_tile", tmp / "raw", tmp / "prep"), tmp / "prep")


def s_checksum(w, tmp, mp):
    archive = make_zip(mt_source(tmp), tmp / "master.zip")
    return Run(fetch_argv(archive, tmp / "raw", "--sha256", "0" * 64), tmp / "raw")


def s_corrupt_archive(w, tmp, mp):
    (tmp / "master.zip").write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    return Run(fetch_argv(tmp / "master.zip", tmp / "raw"), tmp / "raw")


def s_unsafe_member(kind: str):
    def setup(w, tmp, mp):
        archive = tmp / "evil.tar"
        (tmp / "payload.txt").write_text("x")
        with tarfile.open(archive, "w") as tf:
            if kind == "dotdot":
                tf.add(tmp / "payload.txt", arcname="../escape.txt")
            else:
                info = tarfile.TarInfo("MT_Free/link")
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tf.addfile(info)
        return Run(fetch_argv(archive, tmp / "raw"), tmp / "raw")
    return setup


def s_white_background_masks(w, tmp, mp):
    """Masks drawn the other way round: the defect black on white."""
    root = folder_dataset(tmp / "raw")
    for i in range(3):
        save_mask(root / f"parts/masks/dent/dent{i:02d}.png", ~rect(i=i))

    def check(out):
        assert len(manifest(out, "folder", "parts").query("anomaly_type == 'dent'")) == 3
    return Run(prep_argv("folder", root, tmp / "prep"), tmp / "prep", check=check)


def _broken_link(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(path.parent / "gone.png")


def s_dangling_link(what: str):
    def setup(w, tmp, mp):
        root = folder_dataset(tmp / "raw")
        if what == "image":
            _broken_link(root / "parts/images/dent/ghost.png")
        else:  # the mask of dent01
            (root / "parts/masks/dent/dent01.png").unlink()
            _broken_link(root / "parts/masks/dent/dent01.png")
        return Run(prep_argv("folder", root, tmp / "prep"), tmp / "prep")
    return setup


ORIENTATION_90 = 6  # EXIF: the camera was turned; a viewer rotates the stored pixels 90 degrees clockwise


def s_exif_orientation(mask_exif: bool):
    """A photo stored sideways with its EXIF orientation; its mask drawn on the photo as shown
    (upright, no EXIF) or stored sideways with the same EXIF."""
    def setup(w, tmp, mp):
        root = folder_dataset(tmp / "raw", n_defect=2)
        upright = np.zeros((32, 48), bool)
        upright[2:10, 4:30] = True  # asymmetric: a wrong rotation cannot match
        rng = np.random.default_rng(7)
        shown = rng.integers(30, 220, (32, 48, 3), dtype=np.uint8)
        exif = Image.Exif()
        exif[0x0112] = ORIENTATION_90
        stored = np.rot90(shown, 1)  # what a viewer turns 90 degrees clockwise to show `shown`
        Image.fromarray(np.ascontiguousarray(stored)).save(root / "parts/images/dent/photo.jpg", exif=exif, quality=95)
        if mask_exif:
            m = Image.fromarray(np.ascontiguousarray(np.rot90(upright, 1)).astype(np.uint8) * 255)
            m.save(root / "parts/masks/dent/photo.png", exif=exif)
        else:
            save_mask(root / "parts/masks/dent/photo.png", upright)

        def check(out):
            from fast.data.prepare import resize_mask

            t = manifest(out, "folder", "parts").set_index("source")
            got = np.asarray(Image.open(out / "folder/parts" / t.loc["images/dent/photo.jpg", "mask"])) > 0
            assert (got == resize_mask(upright.astype(np.uint8), 32).astype(bool)).all()
        return Run(prep_argv("folder", root, tmp / "prep"), tmp / "prep", check=check)
    return setup


def s_mixed_extensions(w, tmp, mp):
    root = folder_dataset(tmp / "raw", n_defect=0, types=())
    cat = root / "parts"
    write_noise(cat / "images/dent/a.JPG", seed=1, fmt="JPEG")
    save_mask(cat / "masks/dent/a.png", rect())
    write_noise(cat / "images/dent/b.jpeg", seed=2, fmt="JPEG")
    save_mask(cat / "masks/dent/b.bmp", rect(i=1))
    write_noise(cat / "images/dent/c.png", seed=3)
    save_mask(cat / "masks/dent/c.PNG", rect(i=2))

    def check(out):
        t = manifest(out, "folder", "parts")
        anom = t[t["anomaly_type"] == "dent"]
        assert sorted(anom["source"]) == ["images/dent/a.JPG", "images/dent/b.jpeg", "images/dent/c.png"]
        assert (anom["mask"] != "").all()
    return Run(prep_argv("folder", root, tmp / "prep"), tmp / "prep", check=check)


def s_unicode(w, tmp, mp):
    root = folder_dataset(tmp / "raw", n_defect=0, types=())
    cat = root / "parts"
    for i, stem in enumerate(["défaut_é01", "傷_02", "Ölfleck 03"]):
        write_noise(cat / "images/dent" / f"{stem}.png", seed=10 + i)
        save_mask(cat / "masks/dent" / f"{stem}.png", rect(i=i))

    def check(out):
        t = manifest(out, "folder", "parts")
        assert (t["anomaly_type"] == "dent").sum() == 3
        assert all((out / "folder/parts" / p).is_file() for p in t["image"])
        assert any("défaut" in s for s in t["source"])
    return Run(prep_argv("folder", root, tmp / "prep"), tmp / "prep", check=check)


def s_same_stem(w, tmp, mp):
    root = folder_dataset(tmp / "raw")
    write_noise(root / "parts/images/dent/dent00.jpg", seed=9, fmt="JPEG")
    return Run(prep_argv("folder", root, tmp / "prep"), tmp / "prep")


def s_argv(argv_of: Callable[[World, Path], list[str]], out_of: Callable[[Path], Path]):
    def setup(w, tmp, mp):
        return Run(argv_of(w, tmp), out_of(tmp))
    return setup


def s_existing_output_kept(w, tmp, mp):
    """A failed re-run of prepare leaves the previous complete category exactly as it was."""
    out = tmp / "prep"
    raw = tmp / "raw"
    shutil.copytree(w.raw, raw)
    assert main(prep_argv("synthetic", raw, out, "--category", "fabric")) == 0
    bad = sorted((raw / "fabric/train/good").iterdir())[0]
    bad.write_bytes(b"broken")
    return Run(prep_argv("synthetic", raw, out, "--category", "fabric"), out)


# ---------------------------------------------------------------------------------------------
# THE TABLE: one line per case

CASES = [
    # -- tracebacks before (issue) --
    Case("config-resolution-30", s_config(resolution=30), 2, ("resolution 30", "divisible by 4", "use resolution: 28 or 32")),
    Case("train-patch-larger-than-images", s_config(**{"diffusion.patch": 64}), 2,
         ("diffusion.patch 64 is larger than resolution 32", "or raise resolution"), origin="more"),
    Case("config-unet-levels-vs-patch", s_config(**{"diffusion.patch": 12, "diffusion.unet.block_out_channels": [8, 8, 8, 8]}), 2,
         ("diffusion.patch 12", "divisible by 8", "4 levels"), origin="more"),
    Case("synthesize-stage-with-fast-generator", s_synth("stage"), 2,
         ("holds a 'fast' generator", "method 'stage' needs a 'stage' generator", "fast train --generator stage")),
    Case("synthesize-anomalydiffusion-with-fast-generator", s_synth("anomalydiffusion"), 2,
         ("holds a 'fast' generator", "needs a 'base' generator"), origin="more"),
    Case("prepare-out-under-a-file", s_under_file("prepare"), 2, ("afile is a regular file, not a directory",), UNCHANGED),
    Case("synthesize-out-under-a-file", s_under_file("synthesize"), 2, ("afile is a regular file, not a directory",), UNCHANGED),
    Case("train-out-under-a-file", s_under_file("train"), 2, ("afile is a regular file, not a directory",), UNCHANGED, origin="more"),
    Case("fetch-out-under-a-file", s_under_file("fetch"), 2, ("afile is a regular file, not a directory",), UNCHANGED, origin="more"),
    Case("prepare-read-only-mount", s_prepare_fault(errno.EROFS, "mkdir"), 2,
         ("Read-only file system", "choose a writable output directory", "prep")),
    Case("prepare-full-disk", s_prepare_fault(errno.ENOSPC, "save"), 2,
         ("cannot write", "No space left on device", "free space"), not_says=("Traceback",)),
    Case("synthesize-full-disk", s_synth_full_disk, 2, ("No space left on device", "free space"), origin="more"),
    Case("synthesize-full-disk-keeps-previous", s_synth_replaces_nothing_on_fault, 2, ("No space left on device",),
         UNCHANGED, origin="more"),
    Case("train-full-disk", s_train_full_disk, 2, ("model.safetensors", "No space left on device", "free space"),
         RESULT, origin="more"),
    Case("fetch-full-disk-archive", s_fetch_full_disk_archive, 2, ("cannot extract", "No space left on device", "free space"),
         not_says=("corrupt",)),
    Case("fetch-full-disk-copy", s_fetch_full_disk_copy, 2, ("cannot copy", "No space left on device"),
         not_says=("corrupt",), origin="more"),
    # -- tracebacks before (round 2) --
    Case("synthesize-truncated-generator-weights", s_synth_damaged_weights("half"), 2,
         ("model.safetensors", "truncated or damaged", "re-run `fast train"), origin="more"),
    Case("synthesize-empty-generator-weights", s_synth_damaged_weights("empty"), 2,
         ("model.safetensors", "re-run `fast train"), origin="more"),
    Case("train-base-dir-empty-weights", s_train_damaged_base, 2,
         ("base/model.safetensors", "re-run `fast train"), origin="more"),
    Case("evaluate-truncated-segmenter-weights", s_evaluate_damaged_weights, 2,
         ("seg/model.safetensors", "re-run `fast train-segmenter"), origin="more"),
    Case("synthesize-empty-prepared-manifest", s_synth_empty_prepared_manifest, 2,
         ("fabric/manifest.csv", "re-run `fast prepare"), origin="more"),
    Case("train-segmenter-empty-synthetic-manifest", s_segmenter_empty_synthetic_manifest, 2,
         ("syn/manifest.csv", "re-run `fast synthesize"), origin="more"),
    Case("train-real-full-disk-weights", s_train_real_full_disk(0.5), 2,
         ("cannot write", ".safetensors", "No space left on device", "free space"), RESULT, origin="more"),
    Case("train-real-full-disk-optimiser-state", s_train_real_full_disk(1.5), 2,
         ("cannot write", "No space left on device", "free space"), RESULT, origin="more"),
    Case("train-segmenter-real-full-disk", s_segmenter_real_full_disk, 2,
         ("cannot write", "seg/model.safetensors", "No space left on device"), RESULT, origin="more"),
    # -- silently wrong before (issue) --
    Case("folder-empty-mask-is-normal", s_folder_empty_mask, 0, (), RESULT),
    Case("mask-mode-1-png", s_folder("mode1"), 0, (), RESULT),
    Case("mask-L-png-0-1", s_folder("L01"), 0, (), RESULT),
    Case("mask-palette-index-1", s_folder("palette"), 0, (), RESULT),
    Case("mask-jpeg-noise-0-255", s_folder("jpeg255", ".jpg"), 0, (), RESULT),
    Case("config-typo-diffusion-train-stepz", s_config(**{"diffusion.train.stepz": 3}), 2,
         ("unknown config key 'diffusion.train.stepz'", "did you mean 'diffusion.train.steps'")),
    Case("config-typo-diffusion-unet", s_config(**{"diffusion.unet.block_out_channel": [8, 16]}), 2,
         ("unknown config key 'diffusion.unet.block_out_channel'", "did you mean 'diffusion.unet.block_out_channels'")),
    Case("config-typo-diffusion-farm", s_config(**{"diffusion.farm.lamda": 2.0}), 2,
         ("unknown config key 'diffusion.farm.lamda'", "did you mean 'diffusion.farm.lambda'")),
    Case("config-typo-mask-pool", s_config(**{"synthesis.mask_pool.perlin_frac": 0.2}), 2,
         ("unknown config key 'synthesis.mask_pool.perlin_frac'",), origin="more"),
    Case("generator-other-category", s_synth(category="washer"), 2,
         ("trained with --category 'fabric', this run asks for 'washer'", "retrain it", "--category washer --generator base")),
    Case("generator-other-resolution", s_synth(resolution=64), 2,
         ("trained with resolution 32, this run asks for 64", "retrain it (its base model first)")),
    Case("generator-patch-null-run-asks-16", s_synth(**{"diffusion.patch": 16}), 2,
         ("trained with diffusion.patch null, this run asks for 16", "retrain it"), origin="more"),
    Case("generator-patch-16-run-asks-null", s_synth_generator_patch(16), 2,
         ("trained with diffusion.patch 16, this run asks for null", "retrain it"), origin="more"),
    Case("generator-vs-prepared-resolution", s_synth_prepared_other_resolution, 2,
         ("trained at resolution 32", "prepared64/synthetic/fabric/manifest.csv are at 64", "fast prepare --resolution 32"),
         origin="more"),
    Case("generator-other-unet-size", s_synth(**{"diffusion.unet.block_out_channels": [16, 16]}), 2,
         ("diffusion.unet.block_out_channels [8, 16], this run asks for [16, 16]", "--generator fast --base-dir BASE")),
    Case("generator-other-farm-widths", s_synth(**{"diffusion.farm.widths": [8, 8, 8]}), 2,
         ("diffusion.farm.widths [4, 8, 8]", "retrain FARM on its base model"), origin="more"),
    Case("generator-other-schedule", s_synth(**{"diffusion.num_train_timesteps": 60}), 2,
         ("diffusion.num_train_timesteps 50, this run asks for 60",), origin="more"),
    Case("train-base-of-other-category", s_train_base_mismatch, 2,
         ("--base-dir", "trained with --category 'fabric', this run asks for 'washer'"), origin="more"),
    Case("generator-matching-is-accepted", s_synth_ok, 0, (), RESULT, origin="more"),
    Case("aias-t-fine-5000", s_config_synth(**{"aias.t_fine": 5000}), 2,
         ("aias.t_fine 5000 must be below diffusion.num_train_timesteps (50)",), not_says=("-4000", "<= -")),
    Case("aias-steps-2000", s_config_synth(**{"aias.steps": 2000}), 2,
         ("aias.steps 2000 is more than the 49 segments",)),
    Case("aias-steps-2000-in-method-options", s_method_steps("fast", 2000), 2,
         ("method_options.fast.steps 2000 is more than",), origin="more"),
    Case("method-options-wrong-type", s_config_synth(**{"method_options.cutpaste": {"jitter": "high"}}), 2,
         ("method_options.cutpaste.jitter 'high': must be a number",), origin="more"),
    Case("method-options-sampler-option-wrong-type", s_config_synth(**{"method_options.fast": {"clip_x0": "no"}}), 2,
         ("method_options.fast.clip_x0 'no': must be true or false",), origin="more"),
    Case("method-options-unknown-key", s_config_synth(**{"method_options.cutpaste": {"jiter": 0.2}}), 2,
         ("method_options.cutpaste.jiter", "has no option 'jiter'", "its options: jitter"), origin="more"),
    Case("method-options-unknown-method", s_config_synth(**{"method_options.cutpast": {"jitter": 0.2}}), 2,
         ("method_options.cutpast: unknown method 'cutpast'", "did you mean 'cutpaste'"), origin="more"),
    Case("stage-steps-beyond-schedule", s_method_steps("stage", 5000), 2,
         ("method_options.stage.steps 5000: must be between 1 and diffusion.num_train_timesteps (50)",), origin="more"),
    Case("category-without-normals", s_no_normals, 2, ("category 'parts'", "no normal (defect-free) images")),
    Case("category-without-anomalies", s_no_anomalies, 2, ("category 'parts'", "no anomalous images with masks")),
    Case("category-all-masks-empty", s_folder_all_masks_empty, 2, ("no anomalous images", "empty count as normals"),
         origin="more"),
    Case("category-normals-only-in-test", s_no_train_normals, 2, ("none is left for normal_train",), origin="more"),
    Case("category-seg-test-empty", s_folder_counts(n_defect=1), 2,
         ("category 'parts'", "no anomalous image is left for seg_test", "gen_train 1, seg_test 0, normal_train 3, "
          "normal_test 1", "add anomalous images"), origin="more"),
    Case("category-normal-test-empty-folder", s_folder_counts(n_normal=1), 2,
         ("category 'parts'", "no normal image is left for normal_test", "normal_train 1, normal_test 0"), origin="more"),
    Case("category-normal-test-empty-mvtec", s_no_test_normals, 2,
         ("category 'bottle'", "no normal image is left for normal_test", "normal_test 0"), origin="more"),
    Case("empty-type-folder-warned", s_empty_type_folder, 0, ("test/scratch holds no images", "type 'scratch' is skipped"),
         RESULT),
    Case("source-symlink-out-of-tree", s_symlink_out, 2, ("linked.jpg is a symbolic link to", "outside the source tree")),
    Case("source-symlink-loop", s_symlink_loop, 2, ("loop",), origin="more"),
    Case("source-symlink-inside-tree-copied", s_symlink_inside_ok, 0, (), RESULT, origin="more"),
    # -- left behind before (issue) --
    Case("sigkill-prepare-then-rerun-cleans", s_sigkill_then_rerun, 0, (), RESULT),
    Case("legacy-temporary-removed-by-rerun", s_legacy_temporary, 0, (), RESULT, origin="more"),
    Case("sigterm-prepare-cleans-up", s_sigterm, 143, ("terminated (SIGTERM); partial outputs removed",)),
    Case("umask-002-respected-prepare", s_umask, 0, (), RESULT),
    Case("umask-022-respected-synthesize", s_umask_synth, 0, (), RESULT, origin="more"),
    Case("umask-002-respected-train-weights", s_umask_train, 0, (), RESULT, origin="more"),
    # -- the ten that already passed --
    Case("corrupt-image", s_mvtec(_corrupt), 2, ("cannot read image", "grid/test/crack/001.png"), origin="passing"),
    Case("truncated-jpeg", s_truncated_jpeg, 2, ("cannot read image", "MT_Crack/Imgs"), origin="passing"),
    Case("mask-size-mismatch", s_mvtec(_mask_size), 2, ("broken/001_mask.png", "24x20", "40x40"), origin="passing"),
    Case("missing-mask", s_mvtec(_no_mask), 2, ("missing mask", "crack/001_mask.png"), origin="passing"),
    Case("unknown-dataset", s_argv(lambda w, t: prep_argv("mvtec", w.raw, t / "prep"), lambda t: t / "prep"), 2,
         ("unknown dataset 'mvtec'", "mvtec_ad"), origin="passing"),
    Case("unknown-category", s_argv(lambda w, t: prep_argv("synthetic", w.raw, t / "prep", "--category", "screw"),
                                    lambda t: t / "prep"), 2, ("unknown category 'screw'", "fabric, washer"), origin="passing"),
    Case("checksum-mismatch", s_checksum, 2, ("checksum mismatch", "pass --sha256"), origin="passing"),
    Case("unsafe-archive-member-dotdot", s_unsafe_member("dotdot"), 2, ("'../escape.txt' is unsafe",), origin="passing"),
    Case("unsafe-archive-member-symlink", s_unsafe_member("link"), 2, ("'MT_Free/link' is unsafe",), origin="passing"),
    Case("mask-white-background-warned", s_white_background_masks, 0,
         ("masks/dent/dent00.png marks", "is its background white?"), RESULT, origin="more"),
    Case("mask-suffix-mixed-case", s_folder("L255", ".Png"), 0, (), RESULT, origin="more"),
    Case("dangling-symlink-image-named", s_dangling_link("image"), 2,
         ("images/dent/ghost.png is a broken symbolic link", "gone.png", "fix the link or remove it"), origin="more"),
    Case("dangling-symlink-mask-named", s_dangling_link("mask"), 2,
         ("masks/dent/dent01.png is a broken symbolic link",), origin="more"),
    Case("exif-orientation-photo-only", s_exif_orientation(False), 0, (), RESULT, origin="more"),
    Case("exif-orientation-photo-and-mask", s_exif_orientation(True), 0, (), RESULT, origin="more"),
    Case("mixed-extensions", s_mixed_extensions, 0, (), RESULT, origin="passing"),
    Case("unicode-stems", s_unicode, 0, (), RESULT, origin="passing"),
    Case("same-prepared-name", s_same_stem, 2, ("would get the same prepared name",), origin="more"),
    Case("corrupt-archive", s_corrupt_archive, 2, ("master.zip",), origin="more"),
    Case("unknown-method", s_argv(lambda w, t: synth_argv(w, t / "syn", "fastt"), lambda t: t / "syn"), 2,
         ("unknown method 'fastt'",), origin="more"),
    Case("config-invalid-value", s_config(resolution=4), 2, ("invalid config value at 'resolution'",), origin="more"),
    Case("config-file-not-found", s_argv(lambda w, t: train_argv(w, t / "gen", str(t / "nope.yaml")), lambda t: t / "gen"),
         2, ("config file not found", "nope.yaml"), origin="more"),
    Case("config-file-not-utf8", s_config_file(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe"), 2,
         ("experiment.yaml: not a UTF-8 text file", "byte 0x89 at offset 0"), origin="more"),
    Case("config-file-duplicate-key", s_config_file(
        b"experiment: bad\ndatasets: {synthetic: {categories: [fabric]}}\nresolution: 32\n"
        b"diffusion:\n  num_train_timesteps: 50\ndiffusion:\n  patch: 16\n"), 2,
         ("experiment.yaml: key 'diffusion' appears twice (lines 4 and 6)", "keep one"), origin="more"),
    Case("bad-options-json", s_argv(lambda w, t: prep_argv("synthetic", w.raw, t / "prep", "--options", "{no"),
                                    lambda t: t / "prep"), 2, ("--options is not valid JSON",), origin="more"),
    Case("unknown-dataset-option", s_argv(lambda w, t: prep_argv("synthetic", w.raw, t / "prep", "--options",
                                                                 '{"image_sise": 3}'), lambda t: t / "prep"), 2,
         ("unknown option(s) ['image_sise']",), origin="more"),
    Case("failed-rerun-keeps-previous-output", s_existing_output_kept, 2, ("cannot read image",), UNCHANGED, origin="more"),
]


def test_the_table_covers_the_issue():
    """At least the 27 reported cases and the 10 that passed already; unique ids."""
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert sum(c.origin == "issue" for c in CASES) >= 27
    assert sum(c.origin == "passing" for c in CASES) >= 10


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, world, tmp_path, monkeypatch, capsys, caplog, unmount):
    caplog.set_level("WARNING")
    umask = os.umask(0o022)
    os.umask(umask)
    try:
        run = case.setup(world, tmp_path, monkeypatch)
        capsys.readouterr()
        before = snapshot(run.out)
        code, err = run.result if run.result is not None else (main(run.argv), capsys.readouterr().err)
        _check(case, run, code, err, caplog.text, before)
    finally:
        os.umask(umask)


def _check(case: Case, run: Run, code: int, err: str, log_text: str, before: dict) -> None:
    err = err.replace("\r", "\n")
    caplog_text = log_text
    text = err + "\n" + caplog_text
    assert "Traceback" not in text, text
    assert code == case.code, text
    lines = [ln for ln in err.splitlines() if ln.strip()]
    if code != 0:
        name = cmd(run.argv) if run.argv else "prepare"
        assert lines and lines[-1].startswith(f"fast {name}: "), err
        assert [ln for ln in lines if ln.startswith(f"fast {name}: ")] == [lines[-1]], err  # ONE line
        message = lines[-1]
    else:
        assert not [ln for ln in lines if ": error:" in ln], err
        message = caplog_text
    print(f"CASE {case.id} | exit {code} | {' '.join(message.split())}")  # the table of messages (pytest -s)
    for fragment in case.says:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    for fragment in case.not_says:
        assert fragment not in message, message
    if case.out == EMPTY:
        assert_empty(run.out)
    elif case.out == UNCHANGED:
        assert snapshot(run.out) == before
        assert temporaries(run.out) == [] or run.out.is_file()
    else:
        assert temporaries(run.out) == []
        assert run.check is not None
        run.check(run.out)


def test_config_method_lists_match_the_registry():
    """fast.config's method lists (it sits below the methods layer) agree with the registry."""
    from fast import config
    from fast.methods import GENERATOR_OF, REGISTRY
    from fast.methods.fast import FastMethod

    assert {m for m in REGISTRY if config.is_diffusion_method(m)} == {m for m, g in GENERATOR_OF.items() if g}
    assert {m for m in REGISTRY if config.uses_farm(m)} == {m for m, g in GENERATOR_OF.items() if g == "fast"}
    aias = {m for m, (s, steps, _) in FastMethod.SAMPLING.items() if s == "aias" and steps is None}
    assert aias == set(config.AIAS_CONFIG_STEPS_METHODS)


@pytest.mark.skipif(shutil.which("snakemake") is None, reason="snakemake is not installed")
def test_snakemake_dry_run_refuses_cross_key_rules(tmp_path):
    """The cross-key rules hold when the workflow loads its config: `snakemake -n` stops with the
    one message (the default config's diffusion.patch 32 on 16 px images), before any job."""
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.run(["snakemake", "-n", "--cores", "1", "--nolock", "--snakefile", str(repo / "Snakefile"),
                           "--configfile", str(repo / "config/config.yaml"), "--directory", str(tmp_path),
                           "--config", "resolution=16"],
                          cwd=repo, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    said = proc.stdout + proc.stderr
    assert said.count("diffusion.patch 32 is larger than resolution 16") == 1, said[-3000:]


@pytest.mark.skipif(shutil.which("snakemake") is None, reason="snakemake is not installed")
def test_snakemake_dry_run_refuses_a_duplicate_config_key(tmp_path):
    """snakemake's own loader would keep the second `resolution`: the workflow reads its config
    files again with the strict loader."""
    repo = Path(__file__).resolve().parents[1]
    text = (repo / "config/config.yaml").read_text()
    path = tmp_path / "twice.yaml"
    path.write_text(text + "\nresolution: 64\n")
    proc = subprocess.run(["snakemake", "-n", "--cores", "1", "--nolock", "--snakefile", str(repo / "Snakefile"),
                           "--configfile", str(path), "--directory", str(tmp_path)],
                          cwd=repo, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    said = proc.stdout + proc.stderr
    assert said.count("twice.yaml: key 'resolution' appears twice") == 1, said[-3000:]
