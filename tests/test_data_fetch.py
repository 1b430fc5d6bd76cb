"""`fast fetch`: local directory, local archive, file:// URL, checksum verification, atomic
placement; the synthetic dataset generated offline."""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from archives import make_zip, mt_source_dir

from fast.cli import main
from dummy_data import write_dummy
from fast.data.registry import get_format


def digest_tree(root: Path, skip=("fetch_record.json",)) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name not in skip}


def entries(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir()) if path.exists() else []


@pytest.fixture
def mt_source(tmp_path):
    return mt_source_dir(tmp_path)


def test_fetch_local_directory(mt_source, tmp_path):
    out = tmp_path / "raw"
    assert main(["fetch", "magnetic_tile", "--out", str(out), "--source", str(mt_source)]) == 0
    assert digest_tree(out / "magnetic_tile") == digest_tree(mt_source)
    record = json.loads((out / "magnetic_tile/fetch_record.json").read_text())
    assert record["source"] == str(mt_source) and record["date"]
    assert entries(out) == ["magnetic_tile"]


def test_fetch_zip_strips_wrapper_and_verifies(mt_source, tmp_path):
    archive = make_zip(mt_source, tmp_path / "master.zip")
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    out = tmp_path / "raw"
    assert main(["fetch", "magnetic_tile", "--out", str(out), "--source", str(archive), "--sha256", sha]) == 0
    assert digest_tree(out / "magnetic_tile") == digest_tree(mt_source)
    record = json.loads((out / "magnetic_tile/fetch_record.json").read_text())
    assert record["sha256"] == sha and record["sha256_verified"] is True
    # and the result is what the scanner reads
    fmt = get_format("magnetic_tile")
    assert len(fmt.scan(out / "magnetic_tile", "magnetic_tile", {})) == 3 + 2 * 3


def test_fetch_file_url_tar(mt_source, tmp_path):
    archive = tmp_path / "mt.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(mt_source, arcname=mt_source.name)
    out = tmp_path / "raw"
    assert main(["fetch", "magnetic_tile", "--out", str(out), "--source", archive.as_uri()]) == 0
    assert digest_tree(out / "magnetic_tile") == digest_tree(mt_source)
    record = json.loads((out / "magnetic_tile/fetch_record.json").read_text())
    assert record["sha256_verified"] is False  # none known for a user archive: recorded, not verified
    assert record["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert entries(out) == ["magnetic_tile"]  # no temporary download left beside it


def test_checksum_mismatch_refused_nothing_left(mt_source, tmp_path, capsys):
    archive = make_zip(mt_source, tmp_path / "master.zip")
    out = tmp_path / "raw"
    wrong = "0" * 64
    for source in (str(archive), archive.as_uri()):
        assert main(["fetch", "magnetic_tile", "--out", str(out), "--source", source, "--sha256", wrong]) == 2
        err = capsys.readouterr().err
        assert "checksum mismatch" in err and wrong in err and len(err.strip().splitlines()) == 1
        assert entries(out) == []  # no dataset folder, no temp folder, no partial download


def test_checksum_mismatch_keeps_previous_copy(mt_source, tmp_path):
    out = tmp_path / "raw"
    assert main(["fetch", "magnetic_tile", "--out", str(out), "--source", str(mt_source)]) == 0
    before = digest_tree(out / "magnetic_tile")
    archive = make_zip(mt_source, tmp_path / "master.zip")
    assert main(["fetch", "magnetic_tile", "--out", str(out), "--source", str(archive), "--sha256", "ab" * 32]) == 2
    assert digest_tree(out / "magnetic_tile") == before and entries(out) == ["magnetic_tile"]


def test_corrupt_archive_refused(mt_source, tmp_path, capsys):
    archive = make_zip(mt_source, tmp_path / "master.zip")
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])  # a partial download
    out = tmp_path / "raw"
    assert main(["fetch", "magnetic_tile", "--out", str(out), "--source", str(archive)]) == 2
    assert "master.zip" in capsys.readouterr().err
    assert entries(out) == []


def test_source_resolution(tmp_path, monkeypatch, capsys):
    from fast.data.fetch import resolve_source

    info = get_format("magnetic_tile").download
    monkeypatch.delenv("FAST_DATA_DIR", raising=False)
    assert resolve_source("magnetic_tile", None, info) == info.url
    assert info.url == "https://github.com/abin24/Magnetic-tile-defect-datasets./archive/refs/heads/master.zip"
    (tmp_path / "magnetic_tile").mkdir()
    monkeypatch.setenv("FAST_DATA_DIR", str(tmp_path))
    assert resolve_source("magnetic_tile", None, info) == str(tmp_path / "magnetic_tile")
    assert resolve_source("magnetic_tile", "/x.zip", info) == "/x.zip"
    monkeypatch.delenv("FAST_DATA_DIR")
    # MPDD has no public URL: a clear error, not a download attempt
    assert main(["fetch", "mpdd", "--out", str(tmp_path / "raw")]) == 2
    assert "--source" in capsys.readouterr().err
    assert entries(tmp_path / "raw") == []


def test_fetch_synthetic_seeded(tmp_path):
    opts = json.dumps({"image_size": 32, "n_normal_train": 2, "n_normal_test": 1, "n_anomalous_per_type": 2,
                       "categories": ["washer"]})
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        assert main(["fetch", "synthetic", "--out", str(tmp_path / name), "--seed", str(seed), "--options", opts]) == 0
    a, b, c = (digest_tree(tmp_path / n / "synthetic") for n in "abc")
    assert a == b and a != c and a.keys() == c.keys()
    assert len(a) == 3 + 3 * 2 * 2  # normals + (image, mask) per defect type and index
    record = json.loads((tmp_path / "a/synthetic/fetch_record.json").read_text())
    assert record["seed"] == 0 and record["options"]["image_size"] == 32


def test_single_category_directory_not_unwrapped(tmp_path):
    """A local MVTec copy holding one category keeps its layout (only wrappers are stripped)."""
    src = tmp_path / "mvtec"
    write_dummy("mvtec_ad", src, categories=["bottle"], n_anomalous=1, n_train_good=1, n_test_good=1)
    out = tmp_path / "raw"
    assert main(["fetch", "mvtec_ad", "--out", str(out), "--source", str(src)]) == 0
    assert entries(out / "mvtec_ad") == ["bottle", "fetch_record.json"]
    wrapped = tmp_path / "w"
    shutil.copytree(src, wrapped / "mvtec_anomaly_detection")
    assert main(["fetch", "mvtec_ad", "--out", str(out), "--source", str(wrapped)]) == 0
    assert entries(out / "mvtec_ad") == ["bottle", "fetch_record.json"]


def test_registry_checksum_applies_to_local_official_archive(mt_source, tmp_path, monkeypatch, capsys):
    """A local file named like the official archive is checked against the registry checksum."""
    import dataclasses

    import fast.data.registry as registry
    from fast.data.formats import magnetic_tile

    archive = make_zip(mt_source, tmp_path / "Magnetic-tile-defect-datasets.-master.zip")
    good = hashlib.sha256(archive.read_bytes()).hexdigest()
    out = tmp_path / "raw"
    for pinned, code in (("f" * 64, 2), (good, 0)):
        monkeypatch.setattr(magnetic_tile, "DOWNLOAD", dataclasses.replace(magnetic_tile.DOWNLOAD, sha256=pinned))
        assert registry.get_format("magnetic_tile").download.sha256 == pinned
        assert main(["fetch", "magnetic_tile", "--out", str(out), "--source", str(archive)]) == code
    assert f"--sha256 {good}" in capsys.readouterr().err
    assert json.loads((out / "magnetic_tile/fetch_record.json").read_text())["sha256_verified"] is True
