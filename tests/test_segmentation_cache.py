"""The segmenter jobs' speed-ups change no number: the decoded-image cache (FAST_CACHE_DIR) gives
the pools decoding gives and is never read stale; the allocator setting leaves training and
inference bit for bit as they were and does stop re-faulting freed memory."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fast.data.manifest import PreparedCategory
from fast.segmentation.cache import CACHE_ENV
from fast.segmentation.data import evaluation_set, prepared_pool, training_pools
from test_segmentation_train import SIZE, make_prepared

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@pytest.fixture
def category(tmp_path):
    make_prepared(tmp_path / "prepared", n_normal=5, n_anom=6)
    return tmp_path / "prepared" / "toy" / "tile" / "manifest.csv"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def pools(manifest, size=SIZE, channels=1):
    """Every pool the two jobs build, as plain arrays."""
    cat = PreparedCategory.load(manifest)
    anomalous, normal = training_pools(cat, "real-fewshot", None, size, channels)
    test, rows = evaluation_set(cat, size, channels)
    return {"anomalous": anomalous, "normal": normal, "test": test}, rows


def assert_same_pools(a, b):
    for name in a:
        for field in ("images", "masks"):
            x, y = getattr(a[name], field), getattr(b[name], field)
            assert x.dtype == y.dtype == np.float32 and np.array_equal(x, y), (name, field)


def test_cached_pools_equal_decoded_ones(category, cache, monkeypatch):
    cold, rows = pools(category)                                 # decodes, writes the cache
    assert len(list(cache.glob("*.npz"))) == 3                   # normal_train, gen_train, test splits
    with monkeypatch.context() as m:
        m.setattr(PreparedCategory, "load_image", lambda *a: pytest.fail("decoded although cached"))
        warm, warm_rows = pools(category)
    assert_same_pools(cold, warm)
    assert warm_rows.equals(rows)
    monkeypatch.delenv(CACHE_ENV)
    uncached, _ = pools(category)
    assert_same_pools(uncached, warm)
    assert cold["normal"].masks.sum() == 0 and cold["anomalous"].masks.sum() == 2 * 48


def test_no_cache_directory_writes_nothing(category, tmp_path, monkeypatch):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    before = sorted(p for p in tmp_path.rglob("*"))
    pools(category)
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_a_changed_manifest_is_not_served_from_the_cache(category, cache):
    first, _ = pools(category)
    table = pd.read_csv(category, dtype=str, keep_default_na=False)
    moved = table.index[table["split"] == "normal_train"][0]
    table.loc[moved, "split"] = "normal_test"                    # one normal moves to the test set
    table.to_csv(category, index=False)
    second, rows = pools(category)
    assert len(second["normal"]) == len(first["normal"]) - 1
    assert len(second["test"]) == len(first["test"]) + 1 == len(rows)
    assert_same_pools({"anomalous": first["anomalous"]}, {"anomalous": second["anomalous"]})


def test_a_rewritten_image_is_not_served_from_the_cache(category, cache):
    first, _ = pools(category)
    table = pd.read_csv(category, dtype=str, keep_default_na=False)
    path = category.parent / table.loc[table["split"] == "normal_train", "image"].iloc[0]
    Image.fromarray(np.full((SIZE, SIZE), 7, np.uint8)).save(path)     # same manifest, new pixels
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    second, _ = pools(category)
    assert np.all(second["normal"].images[0] == np.float32(7 / 255))
    assert not np.array_equal(first["normal"].images[0], second["normal"].images[0])


def test_other_sizes_and_channels_get_their_own_entries(category, cache):
    cat = PreparedCategory.load(category)
    small, _ = prepared_pool(cat, ("normal_train",), 16, 1)
    rgb, _ = prepared_pool(cat, ("normal_train",), SIZE, 3)
    gray, _ = prepared_pool(cat, ("normal_train",), SIZE, 1)
    assert small.images.shape[1:] == (1, 16, 16) and rgb.images.shape[1:] == (3, SIZE, SIZE)
    assert gray.images.shape[1:] == (1, SIZE, SIZE)
    assert len(list(cache.glob("*.npz"))) == 3


def test_an_unreadable_entry_is_decoded_again(category, cache, caplog):
    first, _ = pools(category)
    for entry in cache.glob("*.npz"):
        entry.write_bytes(entry.read_bytes()[:100])              # truncated (e.g. a full disk)
    second, _ = pools(category)
    assert_same_pools(first, second)
    assert "unreadable" in caplog.text
    third, _ = pools(category)                                    # rewritten whole
    assert_same_pools(first, third)


def test_a_cache_that_cannot_be_written_only_costs_time(category, tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setenv(CACHE_ENV, str(blocker / "cache"))       # cannot be created under a file
    got, _ = pools(category)
    monkeypatch.delenv(CACHE_ENV)
    want, _ = pools(category)
    assert_same_pools(want, got)
    assert "cannot write the decoded-image cache" in caplog.text


def test_jobs_racing_to_fill_the_cache_all_get_the_pools(category, cache):
    want, _ = pools(category)
    for entry in cache.glob("*.npz"):
        entry.unlink()
    results, errors = [], []

    def job():
        try:
            results.append(pools(category)[0])
        except Exception as exc:                                 # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=job) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 4
    for got in results:
        assert_same_pools(want, got)
    assert len(list(cache.glob("*.npz"))) == 3 and not [p for p in cache.iterdir() if p.suffix != ".npz"]
    assert_same_pools(want, pools(category)[0])                  # the entries left are whole


# ---------------------------------------------------------------- allocator (fast.segmentation.memory)
TRAIN_AND_PREDICT = """
import hashlib, sys
import numpy as np, torch
if sys.argv[1] == "keep":
    from fast.segmentation.memory import keep_freed_memory
    assert keep_freed_memory()
from fast.segmentation.data import Pool
from fast.segmentation.evaluate import predict
from fast.segmentation.train import train_segmenter
rng = np.random.default_rng(0)
masks = np.zeros((6, 64, 64), np.float32)
masks[:3, 20:30, 24:40] = 1
images = (0.4 + 0.2 * rng.random((6, 1, 64, 64)) + 0.3 * masks[:, None]).astype(np.float32)
cfg = {"steps": 3, "batch_size": 4, "lr": 0.001, "encoder_weights": None, "patch": 32, "normal_windows": "covering"}
model, _ = train_segmenter(Pool(images[:3], masks[:3]), Pool(images[3:], masks[3:] * 0), "segformer", 0,
                           cfg, torch.device("cpu"))
digest = hashlib.sha256()
for v in model.state_dict().values():
    digest.update(v.numpy().tobytes())
digest.update(predict(model, images, torch.device("cpu")).tobytes())
print(digest.hexdigest())
"""


def _run(code: str, *args: str) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env,
                          cwd=Path(__file__).resolve().parents[1], timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.skipif(not GLIBC, reason="the setting is glibc's")
def test_keeping_freed_memory_changes_no_weight_and_no_prediction():
    assert _run(TRAIN_AND_PREDICT, "keep") == _run(TRAIN_AND_PREDICT, "default")


REFAULTS = """
import resource, sys
import torch
if sys.argv[1] == "keep":
    from fast.segmentation.memory import keep_freed_memory
    assert keep_freed_memory()
for _ in range(10):   # until freed blocks coalesce into ones that fit an aligned 64 MB request
    torch.ones(64 << 20, dtype=torch.uint8)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    torch.ones(64 << 20, dtype=torch.uint8)   # 64 MB allocated, touched and freed, 10 times
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not GLIBC, reason="the setting is glibc's")
def test_freed_blocks_are_reused_rather_than_faulted_in_again():
    """What the setting is for (and a newer glibc refusing the threshold would show here): a
    64 MB tensor freed and allocated again is page-faulted in 4 KB pages (~16k faults) each time
    by default, hardly at all when freed memory is kept. (numpy asks for huge pages for its
    large arrays, which fault 512x less; torch does not.)"""
    default, keep = int(_run(REFAULTS, "default")), int(_run(REFAULTS, "keep"))
    assert default > 10 * 10_000 and keep < default / 20, (default, keep)
