"""Decoded prepared splits kept on disk between segmenter jobs (opt-in: ``$FAST_CACHE_DIR``).

Every `fast train-segmenter` job decodes all ``normal_train`` images (762 PNGs on Magnetic Tile)
and every `fast evaluate` job the test splits; with ``FAST_CACHE_DIR`` set, the first job of a
prepared category stores the decoded arrays there (one ``.npz`` per splits x size x channels) and
the others load them instead (Magnetic Tile, training job: ~0.7 s instead of ~1 s). The arrays
are the uint8 images and masks at the size and channel count of the pools, before the conversion
to float, so a pool built from the cache is identical to one decoded from the PNGs.

The file name holds a SHA-256 of the manifest's bytes and of the size and modification time of every
image and mask file of the splits: preparing the category again, editing its manifest or rewriting
one of its files gives a new name, so a stale entry is never read. A file is written beside its
final name and renamed onto it (fast.io.atomic_path), so two jobs that miss at the same time both
write complete files and a reader never sees a partial one; an unreadable entry is rebuilt, and a
cache directory that cannot be written only costs the time.

Opt-in, and in a directory of its own rather than beside the prepared data: ``<data>/prepared``
is a DVC output, whose recorded hash any extra file there would change.
"""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fast.data.manifest import PreparedCategory
from fast.errors import FastError
from fast.io import atomic_path

log = logging.getLogger(__name__)

CACHE_ENV = "FAST_CACHE_DIR"
# Part of every file name: bump it when what is stored (or how it is derived) changes.
FORMAT = 1


def cache_dir() -> Path | None:
    """The directory of ``$FAST_CACHE_DIR``, or None (no caching) when it is unset or empty."""
    value = os.environ.get(CACHE_ENV, "").strip()
    return Path(value) if value else None


def entry_name(cat: PreparedCategory, splits: tuple[str, ...], size: int, channels: int) -> str | None:
    """The file name of one decoded pool: what it holds and the fingerprint of its sources (see
    the module docstring); None when a listed file is missing (decoding reports it)."""
    rows = cat.rows(*splits)
    digest = hashlib.sha256(cat.manifest.read_bytes())
    for rel in [*rows["image"], *(m for m in rows["mask"] if m)]:
        try:
            st = (cat.root / rel).stat()
        except OSError:
            return None
        digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return f"{cat.category}-{'+'.join(splits)}-{size}px-{channels}ch-v{FORMAT}-{digest.hexdigest()[:32]}.npz"


def cached(name: Callable[[], str | None], build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The arrays stored under ``name()`` in the cache directory, else ``build()`` (stored there
    for the next job). Without a cache directory (or a name), just ``build()``."""
    root = cache_dir()
    entry = name() if root is not None else None
    if entry is None:
        return build()
    path = root / entry
    arrays = _read(path)
    if arrays is None:
        arrays = build()
        _write(path, arrays)
    return arrays


def _read(path: Path) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("decoded-image cache %s unreadable (%s): decoding again", path, exc)
        return None


def _write(path: Path, arrays: dict[str, np.ndarray]) -> None:
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
    except (OSError, FastError) as exc:
        log.warning("cannot write the decoded-image cache %s (%s): continuing without", path, exc)
    else:
        log.info("decoded-image cache written: %s", path)
