"""`fast generate FOLDER --out OUT` end to end on a tiny `folder` dataset (tests/dummy_data.py):
the pairs per type, the preview, reuse on a rerun, given masks, each export layout read back from
disk and trained on, and the refusals of bad input (exit 2, one line, nothing left behind)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fast.cli import main
from fast.data.pair_sets import MANIFEST_BASE_COLUMNS
from dummy_data import write_dummy

TYPES = ["dent", "scratch"]  # the dummy folder's defect types
N_NORMALS = 6                # its normal images (4 + 2)
N_PER_TYPE = 3
TINY = {"experiment": "tiny_generate", "seed": 0, "device": "cpu",
        "datasets": {"folder": {"categories": ["parts"]}},
        "resolution": 32,
        "diffusion": {"unet": {"block_out_channels": [16, 16, 16], "layers_per_block": 1},
                      "farm": {"widths": [8, 16, 32]},
                      "train": {"steps": 4, "finetune_steps": 2, "batch_size": 2, "checkpoint_every": 2}},
        "aias": {"steps": 2, "t_fine": 1},
        "synthesis": {"n_per_type": N_PER_TYPE},
        "methods": ["fast"],
        "segmentation": {"encoder_weights": None}}
CONFIG = json.dumps(TINY)


def tiny_folder(root: Path) -> Path:
    """One category in the `folder` layout: images/<type>/, masks/<type>/, normal/ (40 px RGB)."""
    write_dummy("folder", root, categories=["parts"], anomaly_types=TYPES, n_train_good=4, n_test_good=2,
                n_anomalous=3)
    return root / "parts"


def generate(folder: Path, out: Path, *extra: str) -> int:
    return main(["generate", str(folder), "--out", str(out), "--config", CONFIG, *extra])


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tiny_folder(tmp_path_factory.mktemp("generate_data"))


@pytest.fixture(scope="module")
def fast_run(folder, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("generate_fast") / "out"
    assert generate(folder, out, "--method", "fast", "--export", "smp", "--export", "mmseg",
                    "--export", "anomalib") == 0
    return out


def files_digest(directory: Path) -> dict[str, tuple[str, int]]:
    """sha256 and modification time of every file: a retrained generator changes both."""
    return {p.relative_to(directory).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(directory.rglob("*")) if p.is_file()}


def check_pairs(out: Path, types: list[str] = TYPES, n: int = N_PER_TYPE) -> pd.DataFrame:
    """images/, masks/ and manifest.csv agree: n pairs per type, binary masks of the image's size."""
    table = pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False)
    assert list(table.columns[:len(MANIFEST_BASE_COLUMNS)]) == MANIFEST_BASE_COLUMNS
    assert table["anomaly_type"].value_counts().to_dict() == {t: n for t in types}
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(Path(p).name for p in table["image"])
    assert sorted(p.name for p in (out / "masks").iterdir()) == sorted(Path(p).name for p in table["mask"])
    for _, row in table.iterrows():
        image, mask = np.asarray(Image.open(out / row["image"])), np.asarray(Image.open(out / row["mask"]))
        assert mask.shape == image.shape[:2] == (32, 32)
        assert set(np.unique(mask)) == {0, 255}
    preview = Image.open(out / "preview.png")
    assert preview.size[0] > 0 and preview.size[1] > 0
    return table


def test_generate_fast_writes_pairs_per_type_and_a_preview(fast_run):
    table = check_pairs(fast_run)
    assert (table["mask_source"] != "").all()
    assert json.loads((fast_run / "timing.json").read_text())["images"] == len(TYPES) * N_PER_TYPE
    work = fast_run.with_name("out.work")
    assert sorted(p.name for p in (work / "generators").iterdir()) == ["base", "fast"]


def test_generate_handcrafted_method_trains_nothing(folder, tmp_path):
    out = tmp_path / "out"
    assert generate(folder, out, "--method", "cutpaste", "--n-per-type", "2") == 0
    check_pairs(out, n=2)
    assert not (tmp_path / "out.work" / "generators").exists()


def test_rerun_reuses_prepared_data_and_generators(folder, fast_run):
    work = fast_run.with_name("out.work")
    before = files_digest(work)
    manifest = pd.read_csv(fast_run / "manifest.csv").drop(columns="seconds")  # all but the timings
    assert generate(folder, fast_run, "--method", "fast", "--export", "smp", "--export", "mmseg",
                    "--export", "anomalib") == 0
    assert files_digest(work) == before  # nothing prepared or trained again
    pd.testing.assert_frame_equal(pd.read_csv(fast_run / "manifest.csv").drop(columns="seconds"), manifest)


def test_given_masks_are_used_in_turn_per_type(folder, fast_run, tmp_path):
    masks = tmp_path / "masks"
    (masks / "scratch").mkdir(parents=True)
    square = np.zeros((32, 32), np.uint8)
    square[4:12, 6:20] = 255
    bar = np.zeros((32, 32), np.uint8)
    bar[20:23, 2:30] = 255
    Image.fromarray(square).save(masks / "flat.png")          # flat: the first type (dent)
    Image.fromarray(bar).save(masks / "scratch" / "a.png")
    Image.fromarray(square).save(masks / "scratch" / "b.png")
    work = fast_run.with_name("out.work")
    before = files_digest(work / "generators")
    out = tmp_path / "out"
    assert generate(folder, out, "--method", "fast", "--masks", str(masks), "--work", str(work)) == 0
    table = check_pairs(out)
    assert files_digest(work / "generators") == before  # the trained generators served again
    want = {"dent": ["flat.png"] * 3, "scratch": ["scratch/a.png", "scratch/b.png", "scratch/a.png"]}
    for t, rels in want.items():
        rows = table[table["anomaly_type"] == t]
        assert list(rows["mask_source"]) == [f"given:{r}" for r in rels]
        for (_, row), rel in zip(rows.iterrows(), rels):
            assert np.array_equal(np.asarray(Image.open(out / row["mask"])), np.asarray(Image.open(masks / rel)))


# -- exports: each layout read back from disk, as a toolkit would, and trained on ---------------


def read_smp(d: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    names = sorted(p.name for p in (d / "images").iterdir())
    assert names == sorted(p.name for p in (d / "masks").iterdir())
    pairs = [(np.asarray(Image.open(d / "images" / n)), np.asarray(Image.open(d / "masks" / n))) for n in names]
    assert all(set(np.unique(m)) <= {0, 255} for _, m in pairs)
    return [(i, m // 255) for i, m in pairs]


def read_mmseg(d: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    names = sorted(p.name for p in (d / "img_dir" / "train").iterdir())
    assert names == sorted(p.name for p in (d / "ann_dir" / "train").iterdir())
    pairs = [(np.asarray(Image.open(d / "img_dir" / "train" / n)), np.asarray(Image.open(d / "ann_dir" / "train" / n)))
             for n in names]
    assert all(set(np.unique(m)) <= {0, 1} for _, m in pairs)
    return pairs


def read_anomalib(d: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    names = sorted(p.name for p in (d / "abnormal").iterdir())
    assert names == sorted(p.name for p in (d / "mask").iterdir())
    pairs = [(np.asarray(Image.open(d / "abnormal" / n)), np.asarray(Image.open(d / "mask" / n)) // 255)
             for n in names]
    normals = [np.asarray(Image.open(p)) for p in sorted((d / "normal").iterdir())]
    assert len(normals) == N_NORMALS
    return pairs + [(im, np.zeros(im.shape[:2], np.uint8)) for im in normals]


READERS = {"smp": read_smp, "mmseg": read_mmseg, "anomalib": read_anomalib}


@pytest.mark.parametrize("layout", list(READERS))
def test_export_layout_trains_a_segmenter(fast_run, layout):
    import torch

    from fast.segmentation.models import build_segmenter

    pairs = READERS[layout](fast_run / layout)
    assert len(pairs) == len(TYPES) * N_PER_TYPE + N_NORMALS
    assert sum(bool(m.any()) for _, m in pairs) == len(TYPES) * N_PER_TYPE  # normals: all-zero masks
    x = torch.tensor(np.stack([i for i, _ in pairs]), dtype=torch.float32).permute(0, 3, 1, 2) / 255
    y = torch.tensor(np.stack([m for _, m in pairs]), dtype=torch.float32)[:, None]
    torch.manual_seed(0)
    net = build_segmenter("unet", in_channels=3, encoder_weights=None)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(2):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.isfinite(loss)


# -- bad input: exit 2, one line naming what to fix, no OUT (nor WORK) left behind ---------------


def _no_defects(root: Path) -> Path:
    shutil.rmtree(root / "images")
    shutil.rmtree(root / "masks")
    (root / "images").mkdir()
    return root


def _no_normals(root: Path) -> Path:
    shutil.rmtree(root / "normal")
    return root


def _missing_mask(root: Path) -> Path:
    (root / "masks" / "dent" / "dent_001.png").unlink()
    return root


def _mask_of_another_size(root: Path) -> Path:
    Image.fromarray(np.full((20, 20), 255, np.uint8)).save(root / "masks" / "scratch" / "scratch_002.png")
    return root


BAD_FOLDERS = {"no defects": (_no_defects, "no anomalous images"),
               "no normals": (_no_normals, "no normal"),
               "missing mask": (_missing_mask, "missing mask"),
               "mask of another size": (_mask_of_another_size, "has size")}


def assert_refused(capsys, rc: int, needle: str, parent: Path, before: set[str]) -> None:
    err = capsys.readouterr().err
    # what a terminal shows: the text after each line's last carriage return (a cleared progress bar)
    lines = [line.split("\r")[-1] for line in err.split("\n")]
    lines = [line for line in lines if line.strip()]
    assert rc == 2
    assert len(lines) == 1 and lines[0].startswith("fast generate: error:"), err
    assert needle in lines[0] and "Traceback" not in err
    assert {p.name for p in parent.iterdir()} == before  # neither OUT, OUT.work nor a temporary


@pytest.mark.parametrize("case", list(BAD_FOLDERS))
def test_bad_folder_is_refused_in_one_line(tmp_path, capsys, case):
    breaks, needle = BAD_FOLDERS[case]
    folder = breaks(tiny_folder(tmp_path / "data"))
    runs = tmp_path / "runs"
    runs.mkdir()
    capsys.readouterr()
    assert_refused(capsys, generate(folder, runs / "out", "--method", "cutpaste"), needle, runs, set())


def test_masks_folder_without_pngs_is_refused(folder, tmp_path, capsys):
    masks = tmp_path / "masks"
    masks.mkdir()
    (masks / "notes.txt").write_text("no masks here\n")
    runs = tmp_path / "runs"
    runs.mkdir()
    capsys.readouterr()
    rc = generate(folder, runs / "out", "--method", "fast", "--masks", str(masks))
    assert_refused(capsys, rc, "no PNG masks", runs, set())


def test_masks_of_an_unknown_type_are_refused_before_training(folder, tmp_path, capsys):
    (tmp_path / "masks" / "hole").mkdir(parents=True)
    Image.fromarray(np.full((8, 8), 255, np.uint8)).save(tmp_path / "masks" / "hole" / "a.png")
    runs = tmp_path / "runs"
    runs.mkdir()
    capsys.readouterr()
    rc = generate(folder, runs / "out", "--method", "fast", "--masks", str(tmp_path / "masks"))
    assert_refused(capsys, rc, "'hole' is not a defect type", runs, set())


@pytest.mark.parametrize("where", ["FOLDER itself", "inside FOLDER", "above FOLDER"])
def test_out_overlapping_the_data_is_refused(tmp_path, capsys, where):
    folder = tiny_folder(tmp_path / "data")
    out = {"FOLDER itself": folder, "inside FOLDER": folder / "synthetic", "above FOLDER": tmp_path / "data"}[where]
    before = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")}
    capsys.readouterr()
    rc = generate(folder, out, "--method", "cutpaste")
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("fast generate: error:") and len(err.strip().splitlines()) == 1, err
    assert {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")} == before  # the data untouched


def test_unknown_method_is_refused(folder, tmp_path, capsys):
    capsys.readouterr()
    rc = generate(folder, tmp_path / "out", "--method", "no-such-method")
    assert_refused(capsys, rc, "unknown method", tmp_path, set())


def test_cli_lists_generate_with_every_export_layout(capsys):
    from fast.commands.export import FORMATS

    with pytest.raises(SystemExit):
        main(["--help"])
    assert "generate" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "{" + ",".join(FORMATS) + "}" in help_text


# -- a real dataset (not run by default: pytest -m slow) ---------------------------------------


def magnetic_tile_as_folder(source: Path, root: Path) -> Path:
    """Magnetic Tile (``MT_<Type>/Imgs/<stem>.jpg`` + ``<stem>.png``) in the `folder` layout, by links."""
    folder = root / "magnetic_tile"
    for d in sorted(source.glob("MT_*")):
        kind = d.name[len("MT_"):].lower()
        for img in sorted((d / "Imgs").glob("*.jpg")):
            if kind == "free":
                links = [(folder / "normal" / img.name, img)]
            else:
                links = [(folder / "images" / kind / img.name, img),
                         (folder / "masks" / kind / f"{img.stem}.png", img.with_suffix(".png"))]
            for link, target in links:
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(target.resolve())
    return folder


def test_magnetic_tile_as_folder_on_its_dummy_copy(tmp_path):
    """The slow test's layout, on the dummy Magnetic Tile (grayscale JPEGs, noisy grey-level masks)."""
    write_dummy("magnetic_tile", tmp_path / "mt", size=32, n_anomalous=3)
    folder = magnetic_tile_as_folder(tmp_path / "mt", tmp_path / "data")
    out = tmp_path / "out"
    assert generate(folder, out, "--method", "cutpaste", "--n-per-type", "1") == 0
    table = pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False)
    assert table["anomaly_type"].value_counts().to_dict() == {"blowhole": 1, "crack": 1, "fray": 1}
    assert np.asarray(Image.open(out / table["image"][0])).ndim == 2  # grayscale stays grayscale


@pytest.mark.slow
def test_generate_on_magnetic_tile_with_the_default_config(tmp_path):
    source = Path(os.environ.get("FAST_DATA_DIR", "")) / "magnetic_tile"
    if not os.environ.get("FAST_DATA_DIR") or not source.is_dir():
        pytest.skip("Magnetic Tile not found: set FAST_DATA_DIR to a folder holding magnetic_tile/")
    folder = magnetic_tile_as_folder(source, tmp_path / "data")
    out = tmp_path / "out"
    assert main(["generate", str(folder), "--out", str(out), "--export", "smp"]) == 0
    types = sorted(p.name for p in (folder / "images").iterdir())
    table = pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False)
    assert table["anomaly_type"].value_counts().to_dict() == {t: 8 for t in types}  # synthesis.n_per_type
    assert (out / "preview.png").is_file() and (out / "smp" / "images").is_dir()
