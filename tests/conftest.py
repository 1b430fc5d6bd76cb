"""Shared fixtures for the whole suite.

``synthetic_prepared``: a small prepared copy of the embedded synthetic dataset (three
categories, 64 px images prepared at 32 px), generated once per session. Manifests are at
``<root>/synthetic/<category>/manifest.csv``; read them with fast.data.manifest.PreparedCategory.
"""

from __future__ import annotations

import os

import pytest

# No test may reach a model hub: every test session runs offline.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SYNTHETIC_TEST_OPTIONS = {"image_size": 64, "n_normal_train": 8, "n_normal_test": 4, "n_anomalous_per_type": 4}
SYNTHETIC_TEST_RESOLUTION = 32


@pytest.fixture(scope="session")
def synthetic_prepared(tmp_path_factory):
    """Path of a prepared root holding ``synthetic/{fabric,brushed_metal,washer}/manifest.csv``
    (per category: 8 normal_train, 4 normal_test; per defect type 2 gen_train + 2 seg_test;
    32 x 32 images; fabric and washer RGB, brushed_metal grayscale). Read-only: copy it first if
    a test must modify it."""
    from fast.data import synthetic
    from fast.commands.prepare import run_prepare
    import argparse

    base = tmp_path_factory.mktemp("synthetic_prepared")
    raw = base / "raw" / "synthetic"
    synthetic.generate(raw, SYNTHETIC_TEST_OPTIONS, seed=0)
    prepared = base / "prepared"
    run_prepare(argparse.Namespace(dataset="synthetic", root=str(raw), out=str(prepared), category=None,
                                   resolution=SYNTHETIC_TEST_RESOLUTION, seed=0, options=None))
    return prepared
