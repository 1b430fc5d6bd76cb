"""The split rules of docs/protocol.md ("Splits"), as pure functions of the scanned samples.

Per category and anomaly type, anomalous images sorted by file name (the sample key): the first
ceil(n/3) -> ``gen_train``, the rest -> ``seg_test``. Normals: the dataset's train normals ->
``normal_train``, its test normals -> ``normal_test``; datasets without a train/test split get a
seeded 80/20 split of their normals.
"""

from __future__ import annotations

import math
import zlib
from collections import Counter, defaultdict
from typing import Sequence

import numpy as np

from fast.data.manifest import GOOD
from fast.data.registry import Sample
from fast.errors import FastError

NORMAL_TEST_FRACTION = 0.2


def n_gen_train(n: int) -> int:
    """How many of ``n`` anomalous images of one type go to gen_train: ceil(n/3)."""
    return math.ceil(n / 3)


def normal_split_80_20(keys: Sequence[str], seed: int, category: str) -> dict[str, str]:
    """Seeded 80/20 split of normal images (by sorted key), independent of listing order."""
    keys = sorted(keys)
    n = len(keys)
    n_test = int(round(NORMAL_TEST_FRACTION * n))
    if n >= 2:
        n_test = min(max(n_test, 1), n - 1)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(category.encode())]))
    order = rng.permutation(n)
    test = {keys[i] for i in order[:n_test]}
    return {k: ("normal_test" if k in test else "normal_train") for k in keys}


def assign_splits(samples: Sequence[Sample], seed: int, category: str) -> list[tuple[Sample, str]]:
    """(sample, split) for every sample, sorted by (split, anomaly type, key)."""
    counts = Counter(s.key for s in samples)
    if any(c > 1 for c in counts.values()):
        dup = sorted(k for k, c in counts.items() if c > 1)[:3]
        raise FastError(f"category {category!r}: the same image is listed twice: {dup}")
    out: list[tuple[Sample, str]] = []
    by_type: dict[str, list[Sample]] = defaultdict(list)
    normals_unsplit = []
    for s in samples:
        if s.anomaly_type == GOOD:
            if s.source_split == "train":
                out.append((s, "normal_train"))
            elif s.source_split == "test":
                out.append((s, "normal_test"))
            else:
                normals_unsplit.append(s)
        else:
            by_type[s.anomaly_type].append(s)
    if normals_unsplit:
        split_of = normal_split_80_20([s.key for s in normals_unsplit], seed, category)
        out += [(s, split_of[s.key]) for s in normals_unsplit]
    for atype, group in by_type.items():
        group = sorted(group, key=lambda s: s.key)
        k = n_gen_train(len(group))
        out += [(s, "gen_train" if i < k else "seg_test") for i, s in enumerate(group)]
    return sorted(out, key=lambda p: (p[1], p[0].anomaly_type, p[0].key))


def drop_test_duplicates(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """Remove test rows (seg_test, normal_test) whose image content (sha256) also appears in a
    training split (gen_train, normal_train): an image seen in training cannot test anything,
    and keeping it would leak. Returns (kept rows, dropped rows)."""
    train_hashes = {r["sha256"] for r in rows if r["split"] in ("gen_train", "normal_train")}
    kept, dropped = [], []
    for r in rows:
        if r["split"] in ("seg_test", "normal_test") and r["sha256"] in train_hashes:
            dropped.append(r)
        else:
            kept.append(r)
    return kept, dropped
