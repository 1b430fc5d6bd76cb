"""Bad input to `fast prepare` (and the data config): a clear one-line error naming the file or
key, exit code 2, and nothing partial left behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fast.cli import main
from fast.config import load_config
from dummy_data import write_dummy
from fast.errors import FastError


def run_cli(argv, capsys):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    return code, err


def leftovers(out):
    """Every path under ``out`` (prepared categories and temporary directories alike)."""
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) if out.exists() else []


@pytest.fixture
def mvtec(tmp_path):
    write_dummy("mvtec_ad", tmp_path / "raw", categories=["bottle", "grid"])
    return tmp_path / "raw"


def prepare_argv(root, out, *extra):
    return ["prepare", "mvtec_ad", "--root", str(root), "--out", str(out), "--resolution", "16", *extra]


def assert_failed_cleanly(code, err, out, *needles):
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("fast prepare: error:")
    for n in needles:
        assert n in err, err
    # no category directory, no temporary directory: at most the empty dataset folder
    assert [p for p in leftovers(out) if p != "mvtec_ad"] == []


def test_corrupt_image(mvtec, tmp_path, capsys):
    bad = mvtec / "grid/test/crack/001.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    out = tmp_path / "prep"
    code, err = run_cli(prepare_argv(mvtec, out), capsys)
    # bottle was fine and is processed first, but nothing is renamed into place
    assert_failed_cleanly(code, err, out, "cannot read image", str(bad))


def test_truncated_jpeg(tmp_path, capsys):
    write_dummy("magnetic_tile", tmp_path / "raw")
    jpg = sorted((tmp_path / "raw/MT_Crack/Imgs").glob("*.jpg"))[0]
    jpg.write_bytes(jpg.read_bytes()[:200])
    out = tmp_path / "prep"
    code, err = run_cli(["prepare", "magnetic_tile", "--root", str(tmp_path / "raw"), "--out", str(out)], capsys)
    assert code == 2 and str(jpg) in err and "cannot read image" in err
    assert [p for p in leftovers(out) if p != "magnetic_tile"] == []


def test_mask_size_mismatch(mvtec, tmp_path, capsys):
    mask = mvtec / "bottle/ground_truth/broken/002_mask.png"
    Image.fromarray(np.zeros((20, 24), np.uint8)).save(mask)
    out = tmp_path / "prep"
    code, err = run_cli(prepare_argv(mvtec, out), capsys)
    assert_failed_cleanly(code, err, out, str(mask), "24x20", "40x40")


def test_missing_mask(mvtec, tmp_path, capsys):
    mask = mvtec / "grid/ground_truth/crack/003_mask.png"
    mask.unlink()
    out = tmp_path / "prep"
    code, err = run_cli(prepare_argv(mvtec, out, "--category", "grid"), capsys)
    assert_failed_cleanly(code, err, out, "missing mask", str(mask), "grid/test/crack/003.png")


def test_unknown_dataset(mvtec, tmp_path, capsys):
    out = tmp_path / "prep"
    code, err = run_cli(["prepare", "mvtec", "--root", str(mvtec), "--out", str(out)], capsys)
    assert code == 2 and "unknown dataset 'mvtec'" in err and "mvtec_ad" in err
    assert leftovers(out) == []


def test_unknown_category(mvtec, tmp_path, capsys):
    out = tmp_path / "prep"
    code, err = run_cli(prepare_argv(mvtec, out, "--category", "bottle", "--category", "screw"), capsys)
    assert code == 2 and "unknown category 'screw'" in err and "bottle, grid" in err
    assert leftovers(out) == []  # checked before anything is written, bottle included


def test_missing_root_and_bad_options(tmp_path, capsys):
    code, err = run_cli(prepare_argv(tmp_path / "nope", tmp_path / "prep"), capsys)
    assert code == 2 and str(tmp_path / "nope") in err
    code, err = run_cli(["prepare", "synthetic", "--root", str(tmp_path), "--out", str(tmp_path / "p"),
                         "--options", '{"image_sise": 3}'], capsys)
    assert code == 2 and "image_sise" in err
    code, err = run_cli(["prepare", "synthetic", "--root", str(tmp_path), "--out", str(tmp_path / "p"),
                         "--options", "{not json"], capsys)
    assert code == 2 and "--options" in err


def test_existing_output_replaced_whole(mvtec, tmp_path, capsys):
    """A re-run replaces the category directory; a failed re-run leaves the previous one intact."""
    out = tmp_path / "prep"
    assert main(prepare_argv(mvtec, out, "--category", "bottle")) == 0
    before = (out / "mvtec_ad/bottle/manifest.csv").read_bytes()
    (mvtec / "bottle/test/good/000.png").write_bytes(b"broken")
    code, _ = run_cli(prepare_argv(mvtec, out, "--category", "bottle"), capsys)
    assert code == 2
    assert (out / "mvtec_ad/bottle/manifest.csv").read_bytes() == before
    assert not [p for p in leftovers(out / "mvtec_ad") if p.startswith(".")]


@pytest.mark.parametrize("key,value,needle", [
    ("resolution", 4, "resolution"),
    ("datasets", {"imagenet": {"categories": ["x"]}}, "datasets"),
    ("datasets", {"synthetic": {"categories": []}}, "datasets.synthetic.categories"),
])
def test_invalid_config_value_names_key(key, value, needle):
    cfg = {"experiment": "t", "datasets": {"synthetic": {"categories": ["fabric"]}}, "methods": ["fast"], key: value}
    with pytest.raises(FastError) as exc:
        load_config(cfg)
    assert f"'{needle}'" in str(exc.value)


def test_valid_config_defaults_synthetic_options():
    cfg = load_config(Path(__file__).resolve().parents[1] / "config" / "config.yaml")
    assert cfg["datasets"]["synthetic"]["options"] == {"image_size": 128, "n_normal_train": 40,
                                                       "n_normal_test": 10, "n_anomalous_per_type": 9}
    assert cfg["datasets"]["synthetic"]["categories"] == ["washer"]
