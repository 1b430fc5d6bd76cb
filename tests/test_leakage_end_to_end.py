"""docs/protocol.md: no `seg_test` (nor `normal_test`) file may reach any training step, checked by
content hash, not by path.

Every image file that any training step opens (generator training of every trainable method, the
mask pool and synthesis of every method family, including defect-paste, which reads the real
gen_train defects itself, segmenter training of a synthetic method and of both reference rows) is recorded through PIL and OpenCV, hashed, and compared with the sha256 of every
test-split file. A copy of a test image under another name in another folder would be caught too;
the test proves it can fail by planting one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import cv2
import PIL.Image
import pytest

from fast.cli import main as cli_main
from fast.data.manifest import PreparedCategory, manifest_path
from fast.methods import GENERATOR_OF

TINY = {
    "experiment": "leak", "device": "cpu", "resolution": 32,
    "datasets": {"synthetic": {"categories": ["washer"]}},
    "methods": ["fast", "anomalydiffusion", "stage", "sard", "cutpaste", "draem", "nsa", "defect-paste"],
    "diffusion": {"num_train_timesteps": 50, "unet": {"block_out_channels": [8, 16]},
                  "farm": {"widths": [8, 8, 16]},
                  "train": {"steps": 2, "finetune_steps": 2, "batch_size": 4, "checkpoint_every": 2}},
    "aias": {"steps": 2, "t_fine": 1},
    "synthesis": {"n_per_type": 1},
    "method_options": {"stage": {"steps": 3}, "sard": {"steps": 3}},
    "segmentation": {"steps": 2, "batch_size": 2},
}


class OpenedFiles:
    """Records the content hash of every file opened through PIL.Image.open or cv2.imread."""

    def __init__(self, monkeypatch):
        self.hashes: dict[str, str] = {}
        real_open, real_imread = PIL.Image.open, cv2.imread

        def record(path):
            if isinstance(path, (str, Path)) and Path(path).is_file():
                self.hashes[hashlib.sha256(Path(path).read_bytes()).hexdigest()] = str(path)

        def spy_open(fp, *args, **kwargs):
            record(fp)
            return real_open(fp, *args, **kwargs)

        def spy_imread(path, *args, **kwargs):
            record(path)
            return real_imread(path, *args, **kwargs)

        monkeypatch.setattr(PIL.Image, "open", spy_open)
        monkeypatch.setattr(cv2, "imread", spy_imread)


def _training_steps(prepared: Path, work: Path) -> None:
    cfg = json.dumps(TINY)
    common = ["--config", cfg, "--dataset", "synthetic", "--category", "washer", "--prepared", str(prepared)]
    assert cli_main(["train", *common, "--generator", "base", "--out", str(work / "gen" / "base")]) == 0
    for generator in ("fast", "stage", "sard"):
        assert cli_main(["train", *common, "--generator", generator, "--base-dir", str(work / "gen" / "base"),
                         "--out", str(work / "gen" / generator)]) == 0
    for method in TINY["methods"]:
        g = GENERATOR_OF.get(method)
        gen = ["--generator-dir", str(work / "gen" / g)] if g else []
        assert cli_main(["synthesize", *common, "--method", method, *gen, "--out", str(work / "syn" / method)]) == 0
    for method in ("fast", "real-fewshot", "no-anomalies"):
        syn = ["--synthetic", str(work / "syn" / method)] if method == "fast" else []
        assert cli_main(["train-segmenter", *common, "--method", method, "--segmenter", "unet", "--seed", "0",
                         *syn, "--out", str(work / "seg" / method)]) == 0


def _test_split_hashes(prepared: Path) -> dict[str, str]:
    cat = PreparedCategory.load(manifest_path(prepared, "synthetic", "washer"))
    rows = cat.rows("seg_test", "normal_test")
    hashes = {r["sha256"]: r["image"] for _, r in rows.iterrows()}
    hashes.update({r["mask_sha256"]: r["mask"] for _, r in rows.iterrows() if r["mask"]})
    return hashes


@pytest.fixture(scope="module")
def prepared_copy(synthetic_prepared, tmp_path_factory):
    dst = tmp_path_factory.mktemp("leak") / "prepared"
    shutil.copytree(synthetic_prepared, dst)
    return dst


def test_no_test_split_content_reaches_any_training_step(prepared_copy, tmp_path, monkeypatch):
    test_hashes = _test_split_hashes(prepared_copy)
    assert len(test_hashes) >= 8
    opened = OpenedFiles(monkeypatch)
    _training_steps(prepared_copy, tmp_path)
    assert len(opened.hashes) >= 10, "the spy saw no training reads: it is not hooked in"
    leaked = {opened.hashes[h]: test_hashes[h] for h in set(opened.hashes) & set(test_hashes)}
    assert not leaked, f"test-split content read during training: {leaked}"


def test_the_leak_check_catches_a_planted_copy(prepared_copy, tmp_path, monkeypatch):
    """Plant a seg_test image's bytes over a gen_train image (another name, same content): the
    same check must now report it."""
    planted = tmp_path / "prepared"
    shutil.copytree(prepared_copy, planted)
    cat = PreparedCategory.load(manifest_path(planted, "synthetic", "washer"))
    victim = cat.rows("gen_train").iloc[0]
    source = cat.rows("seg_test").iloc[0]
    shutil.copyfile(cat.root / source["image"], cat.root / victim["image"])
    opened = OpenedFiles(monkeypatch)
    _training_steps(planted, tmp_path / "work")
    test_hashes = _test_split_hashes(planted)
    assert set(opened.hashes) & set(test_hashes)


def _synthesize_defect_paste(prepared: Path, out: Path) -> None:
    common = ["--config", json.dumps(TINY), "--dataset", "synthetic", "--category", "washer",
              "--prepared", str(prepared)]
    assert cli_main(["synthesize", *common, "--method", "defect-paste", "--n-per-type", "2", "--out", str(out)]) == 0


@pytest.mark.parametrize("planted", [False, True])
def test_defect_paste_reads_gen_train_defects_and_no_test_split(prepared_copy, tmp_path, monkeypatch, planted):
    """defect-paste is the one training-free method that reads real anomalies itself (in prepare):
    it must read the gen_train images, and no test-split content. Cheap (no generator training),
    so it is checked on its own as well as in the whole pipeline above; the planted copy proves
    the check sees what defect-paste reads."""
    prepared = prepared_copy
    if planted:
        prepared = tmp_path / "prepared"
        shutil.copytree(prepared_copy, prepared)
        cat = PreparedCategory.load(manifest_path(prepared, "synthetic", "washer"))
        shutil.copyfile(cat.root / cat.rows("seg_test").iloc[0]["image"], cat.root / cat.rows("gen_train").iloc[0]["image"])
    cat = PreparedCategory.load(manifest_path(prepared, "synthetic", "washer"))
    gen_train = set(cat.rows("gen_train")["sha256"])
    opened = OpenedFiles(monkeypatch)
    _synthesize_defect_paste(prepared, tmp_path / "syn")
    test_hashes = _test_split_hashes(prepared)
    leaked = set(opened.hashes) & set(test_hashes)
    if planted:
        assert leaked
    else:
        assert gen_train & set(opened.hashes), "defect-paste read no gen_train image"
        assert not leaked, f"test-split content read by defect-paste: {[opened.hashes[h] for h in leaked]}"
