"""`fast synthesize` (fast.commands.synthesize): requests, outputs, determinism, validation and errors,
with a test-only method registered for the duration of each test."""

from __future__ import annotations

import argparse
import hashlib
import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fast import cli
from fast import methods as registry
from fast.data.manifest import PreparedCategory
from fast.data.pair_sets import MANIFEST_BASE_COLUMNS, TIMING_KEYS
from fast.errors import FastError
from fast.io import read_png
from fast.commands.synthesize import make_requests, run_synthesize

CONFIG = json.dumps({"experiment": "t", "datasets": {"synthetic": {"categories": ["washer"]}},
                     "methods": ["cutpaste"], "seed": 3})

TEST_METHODS = '''
import numpy as np
from fast.methods.base import SynthesisMethod


class Trivial(SynthesisMethod):
    """Fills the pool mask with seeded random colours; the misbehaving variants break one rule."""
    description = "test only"

    def synthesize(self, requests, seed):
        for i, r in enumerate(requests):
            if self.name == "test-short" and i == 1:
                return
            rng = np.random.default_rng([seed, i])
            out = r.background.copy()
            m = r.mask.astype(bool)
            out[m] = rng.integers(0, 256, size=(int(m.sum()), out.shape[2]), dtype=np.uint8)
            mask = r.mask
            if self.name == "test-float":
                out = out.astype(np.float32)
            if self.name == "test-mask255":
                mask = mask * 255
            if self.name == "test-empty":
                mask = np.zeros_like(mask)
            if self.name == "test-crash" and i == 1:
                raise RuntimeError("boom")
            yield out, mask, {"nfe": 3, "note": f"r{i}"}


def build(cfg, name):
    return Trivial(cfg, name)
'''

BROKEN = {"test-float": "image must be uint8", "test-mask255": "values in", "test-empty": "empty mask",
          "test-short": "yielded 1 results"}


@pytest.fixture
def test_methods(tmp_path_factory, monkeypatch):
    mod_dir = tmp_path_factory.getbasetemp() / "h3_test_methods"
    mod_dir.mkdir(exist_ok=True)
    (mod_dir / "h3_trivial_method.py").write_text(textwrap.dedent(TEST_METHODS))
    monkeypatch.syspath_prepend(str(mod_dir))
    for name in ["test-trivial", "test-needs-gen", "test-crash", *BROKEN]:
        monkeypatch.setitem(registry.REGISTRY, name, "h3_trivial_method:build")
        monkeypatch.setitem(registry.GENERATOR_OF, name, "fast" if name == "test-needs-gen" else None)


def _args(prepared, out, method="test-trivial", **kw):
    base = dict(config=CONFIG, dataset="synthetic", category="washer", method=method, prepared=str(prepared),
                generator_dir=None, out=str(out), seed=None, n_per_type=3)
    base.update(kw)
    return argparse.Namespace(**base)


def _digest(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file() and p.name != "timing.json"}


def _no_leftovers(parent: Path, name: str):
    """Neither the output nor a temporary directory of it is left behind."""
    assert not (parent / name).exists()
    assert not [p for p in parent.iterdir() if p.name.startswith(f".{name}.")]


def test_outputs_manifest_and_timing(synthetic_prepared, tmp_path, test_methods):
    out = tmp_path / "syn" / "test-trivial"
    assert run_synthesize(_args(synthetic_prepared, out)) == 0
    prepared = PreparedCategory.load(synthetic_prepared / "synthetic" / "washer" / "manifest.csv")
    types = prepared.anomaly_types
    table = pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False)
    assert list(table.columns[:6]) == MANIFEST_BASE_COLUMNS
    assert {"nfe", "note"} <= set(table.columns)
    assert len(table) == 3 * len(types)
    assert table["anomaly_type"].value_counts().to_dict() == {t: 3 for t in types}
    assert set(table["seed"]) == {"3"}  # the config seed
    normals = set(prepared.rows("normal_train")["image"])
    gen_masks = set(prepared.rows("gen_train")["mask"])
    assert set(table["source_normal"]) <= normals
    assert all(s.split("|")[0] in gen_masks for s in table["mask_source"])
    assert sorted(p.name for p in out.iterdir()) == ["images", "manifest.csv", "masks", "timing.json"]
    assert len(list((out / "images").iterdir())) == len(table) == len(list((out / "masks").iterdir()))
    for _, row in table.iterrows():
        img, mask = read_png(out / row["image"]), read_png(out / row["mask"])
        assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255} and mask.any()
        bg = prepared.load_image({"image": row["source_normal"]})
        img = img[..., None] if img.ndim == 2 else img
        assert img.shape == bg.shape
        # The trivial method only paints inside the pool mask: the PNGs agree with it.
        assert not ((img != bg).any(axis=2) & (mask == 0)).any()
    timing = json.loads((out / "timing.json").read_text())
    assert set(TIMING_KEYS) <= set(timing)
    assert timing["images"] == len(table) and timing["nfe"] == 3.0 and timing["method"] == "test-trivial"
    assert timing["device"] == "cpu" and timing["wall_seconds"] > 0
    assert timing["images_per_s"] == pytest.approx(timing["images"] / timing["wall_seconds"])
    assert timing["seconds_per_image"] == pytest.approx(timing["wall_seconds"] / timing["images"])


def test_same_seed_byte_identical_other_seed_differs(synthetic_prepared, tmp_path, test_methods):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    run_synthesize(_args(synthetic_prepared, a, seed=11))
    run_synthesize(_args(synthetic_prepared, b, seed=11))
    run_synthesize(_args(synthetic_prepared, c, seed=12))
    assert _digest(a) == _digest(b)
    da, dc = _digest(a), _digest(c)
    assert da.keys() == dc.keys() and da != dc


def test_backgrounds_round_robin_and_shared_across_methods(synthetic_prepared):
    prepared = PreparedCategory.load(synthetic_prepared / "synthetic" / "fabric" / "manifest.csv")
    n_normals = len(prepared.rows("normal_train"))
    reqs = make_requests(prepared, {"augment": True}, n_per_type=n_normals, seed=0)
    first = [r.source_normal for r in reqs[:n_normals]]
    assert len(set(first)) == n_normals  # every normal used before any repeats
    own = make_requests(prepared, {"augment": True}, n_per_type=n_normals, seed=0, use_pool_masks=False)
    assert [r.source_normal for r in own] == [r.source_normal for r in reqs]
    assert all(not r.mask.any() and r.mask_source == "own" for r in own)
    for r in reqs[:3]:
        assert len(r.extra["other_normals"]) == n_normals - 1
        assert not any(o is r.background for o in r.extra["other_normals"])


@pytest.mark.parametrize("method", ["cutpaste", "cutpaste-scar", "draem", "nsa"])
def test_handcrafted_methods_through_the_driver(synthetic_prepared, tmp_path, method):
    out = tmp_path / method
    run_synthesize(_args(synthetic_prepared, out, method=method, category="brushed_metal", n_per_type=2))
    table = pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False)
    assert len(table) == 2 * len(PreparedCategory.load(
        synthetic_prepared / "synthetic" / "brushed_metal" / "manifest.csv").anomaly_types)
    assert not any(s == "own" for s in table["mask_source"])  # the method says what it used
    assert json.loads((out / "timing.json").read_text())["nfe"] == 0.0
    img = read_png(out / table["image"][0])
    assert img.ndim == 2 and img.shape == (32, 32)  # brushed_metal is grayscale


@pytest.mark.parametrize("name,message", sorted(BROKEN.items()))
def test_broken_method_is_a_clear_error_without_output(synthetic_prepared, tmp_path, test_methods, name, message):
    with pytest.raises(FastError, match=message):
        run_synthesize(_args(synthetic_prepared, tmp_path / "out", method=name))
    _no_leftovers(tmp_path, "out")


def test_crash_mid_run_leaves_previous_output_untouched(synthetic_prepared, tmp_path, test_methods):
    out = tmp_path / "out"
    run_synthesize(_args(synthetic_prepared, out))
    before = _digest(out)
    with pytest.raises(RuntimeError, match="boom"):
        run_synthesize(_args(synthetic_prepared, out, method="test-crash", seed=99))
    assert _digest(out) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


def test_bad_input_errors(synthetic_prepared, tmp_path, test_methods, monkeypatch):
    out = tmp_path / "out"
    with pytest.raises(FastError, match="unknown method 'nope'"):
        run_synthesize(_args(synthetic_prepared, out, method="nope"))
    with pytest.raises(FastError, match="--generator-dir"):
        run_synthesize(_args(synthetic_prepared, out, method="test-needs-gen"))
    with pytest.raises(FastError, match="--generator-dir"):
        run_synthesize(_args(synthetic_prepared, out, method="fast"))
    with pytest.raises(FastError, match="does not exist"):
        run_synthesize(_args(synthetic_prepared, out, method="test-needs-gen", generator_dir=str(tmp_path / "g")))
    with pytest.raises(FastError, match="manifest not found"):
        run_synthesize(_args(tmp_path / "nowhere", out))
    with pytest.raises(FastError, match="n-per-type"):
        run_synthesize(_args(synthetic_prepared, out, n_per_type=0))
    monkeypatch.setitem(registry.REGISTRY, "test-no-module", "h3_no_such_module:build")
    with pytest.raises(FastError, match="module h3_no_such_module is missing"):
        run_synthesize(_args(synthetic_prepared, out, method="test-no-module"))
    _no_leftovers(tmp_path, "out")


def test_cli_exit_code_and_message(synthetic_prepared, tmp_path, capsys):
    rc = cli.main(["synthesize", "--config", CONFIG, "--dataset", "synthetic", "--category", "washer",
                   "--method", "stage", "--prepared", str(synthetic_prepared), "--out", str(tmp_path / "o")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "fast synthesize: error:" in err and "--generator-dir" in err and "Traceback" not in err
    _no_leftovers(tmp_path, "o")
    rc = cli.main(["synthesize", "--config", CONFIG, "--dataset", "synthetic", "--category", "washer",
                   "--method", "cutpaste", "--prepared", str(synthetic_prepared), "--out", str(tmp_path / "o"),
                   "--n-per-type", "1", "--seed", "4"])
    assert rc == 0
    table = pd.read_csv(tmp_path / "o" / "manifest.csv")
    assert set(table["seed"]) == {4} and len(table) == len(table["anomaly_type"].unique())


def test_categories_do_not_share_random_draws(synthetic_prepared, tmp_path):
    from fast.commands.synthesize import category_seed

    assert category_seed(0, "synthetic", "washer") == category_seed(0, "synthetic", "washer")
    assert len({category_seed(s, "synthetic", c) for s in (0, 1) for c in ("washer", "fabric")}) == 4
    masks = []
    for cat in ("washer", "fabric"):
        out = tmp_path / cat
        run_synthesize(_args(synthetic_prepared, out, method="cutpaste", category=cat, n_per_type=1, seed=0))
        timing = json.loads((out / "timing.json").read_text())
        assert timing["seed"] == 0 and timing["method_seed"] == category_seed(0, "synthetic", cat)
        masks.append(read_png(out / "masks" / sorted(p.name for p in (out / "masks").iterdir())[0]))
    assert not np.array_equal(masks[0], masks[1])  # same size, same index, different rectangle


def _synthesize_replicate(prepared, out, replicate):
    run_synthesize(_args(prepared, out, category="fabric", n_per_type=4, replicate=replicate))
    table = pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False)
    masks = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((out / "masks").iterdir())}
    return table, masks, json.loads((out / "timing.json").read_text())


def test_each_replicate_is_a_whole_draw_of_its_own(synthetic_prepared, tmp_path, test_methods):
    """synthesis.per_seed: segmenter seed k trains on `fast synthesize --replicate k`. Backgrounds,
    pool masks and the method's noise all depend on k, reproducibly; no replicate is the shared set."""
    from fast.commands.synthesize import category_seed

    shared = _synthesize_replicate(synthetic_prepared, tmp_path / "shared", None)
    r0 = _synthesize_replicate(synthetic_prepared, tmp_path / "r0", 0)
    r1 = _synthesize_replicate(synthetic_prepared, tmp_path / "r1", 1)
    _synthesize_replicate(synthetic_prepared, tmp_path / "r0_again", 0)
    assert _digest(tmp_path / "r0") == _digest(tmp_path / "r0_again")
    for (a, masks_a, _), (b, masks_b, _) in [(shared, r0), (r0, r1), (shared, r1)]:
        assert list(a["source_normal"]) != list(b["source_normal"])  # backgrounds
        assert masks_a.keys() == masks_b.keys() and masks_a != masks_b  # pool masks
    for name, (table, _, timing) in {"r0": r0, "r1": r1}.items():
        k = int(name[1])
        assert timing["replicate"] == k and timing["seed"] == 3 and set(table["seed"]) == {"3"}
        assert timing["method_seed"] == category_seed(3, "synthetic", "fabric", k)
    assert "replicate" not in shared[2]
    assert len({t["method_seed"] for _, _, t in (shared, r0, r1)}) == 3


def test_the_method_noise_follows_the_replicate(synthetic_prepared, test_methods):
    """The same requests, the method seeded by two replicates: different fills (the trivial method
    paints the mask with noise from its seed)."""
    from fast.config import load_config
    from fast.commands.synthesize import category_seed

    prepared = PreparedCategory.load(synthetic_prepared / "synthetic" / "fabric" / "manifest.csv")
    method = registry.build_method("test-trivial", load_config(CONFIG))
    reqs = make_requests(prepared, {"augment": True}, n_per_type=1, seed=0)
    a, b = ([img for img, _, _ in method.synthesize(reqs, category_seed(3, "synthetic", "fabric", k))]
            for k in (0, 1))
    assert all(not np.array_equal(x, y) for x, y in zip(a, b))


def test_the_shared_draw_is_unchanged_by_replicates():
    """Without a replicate the seed is what it always was (a per_seed false run reproduces its
    earlier sets byte for byte), and replicate 0 is not that seed: numpy pads entropy with zeros,
    so [seed, key, 0] would have been [seed, key] again."""
    import zlib

    from fast.commands.synthesize import category_seed

    key = zlib.crc32(b"synthetic/washer")
    for seed in (0, 3):
        before = int(np.random.SeedSequence([seed, key]).generate_state(1)[0] & 0x7FFFFFFF)
        assert category_seed(seed, "synthetic", "washer") == before
        assert category_seed(seed, "synthetic", "washer", 0) != before
    assert category_seed(0, "synthetic", "washer", 1) != category_seed(1, "synthetic", "washer", 1)


def test_cli_replicate(synthetic_prepared, tmp_path, capsys):
    argv = ["synthesize", "--config", CONFIG, "--dataset", "synthetic", "--category", "washer", "--method",
            "cutpaste", "--prepared", str(synthetic_prepared), "--n-per-type", "1"]
    assert cli.main([*argv, "--out", str(tmp_path / "r2"), "--replicate", "2"]) == 0
    assert json.loads((tmp_path / "r2" / "timing.json").read_text())["replicate"] == 2
    assert cli.main([*argv, "--out", str(tmp_path / "bad"), "--replicate", "-1"]) == 2
    assert "--replicate must be a segmenter seed" in capsys.readouterr().err
    _no_leftovers(tmp_path, "bad")
