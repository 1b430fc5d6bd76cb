"""A benchmark grows by a seed, a method, a category: after a complete run, each such change must
add exactly its own jobs and rerun none of the others (each job's params hold only what it reads:
workflow/rules/common.smk, rule_config), and removing a category reruns only the report. A seed
brings its own synthetic sets (synthesis.per_seed) or, with shared sets, segmenters only."""

from __future__ import annotations

from collections import Counter

import pytest
import yaml

from report_inputs import report_args
from workflow_support import copy_repo, dry_run_jobs, run, snakemake

pytestmark = pytest.mark.slow

BASE = {
    "experiment": "reruns", "seed": 0, "device": "cpu",
    "paths": {"data": "data/reruns"},
    "datasets": {"synthetic": {"root": None, "categories": ["fabric", "washer"],
                               "options": {"categories": ["fabric", "washer"], "image_size": 32,
                                           "n_normal_train": 4, "n_normal_test": 2,
                                           "n_anomalous_per_type": 2}}},
    "resolution": 32,
    "diffusion": {"unet": {"block_out_channels": [16, 16, 16], "layers_per_block": 1},
                  "farm": {"widths": [8, 16, 32]},
                  "train": {"steps": 2, "finetune_steps": 1, "batch_size": 2, "checkpoint_every": 2}},
    "aias": {"steps": 2, "t_fine": 1},
    "synthesis": {"n_per_type": 1},
    "methods": ["fast", "cutpaste"],
    "segmentation": {"segmenters": ["unet"], "seeds": [0], "steps": 2, "batch_size": 2,
                     "encoder_weights": None, "reference_rows": ["real-fewshot"]},
    "report": {"sample_grid": True},
}


def _write(repo, name, cfg):
    path = repo / "config" / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return str(path.relative_to(repo))


def _dry_run(repo, cfg, name):
    out = run(snakemake("-n", "--cores", "1", "--configfile", _write(repo, name, cfg)), repo, timeout=180).stdout
    return [j for j in dry_run_jobs(out) if j["rule"] != "all"]


def _planned(repo, cfg, name):
    return Counter(j["rule"] for j in _dry_run(repo, cfg, name))


@pytest.fixture(scope="module")
def complete_run(tmp_path_factory):
    repo = copy_repo(tmp_path_factory.mktemp("reruns") / "repo", git=False)
    run(snakemake("--cores", "2", "--configfile", _write(repo, "base", BASE)), repo, timeout=1500)
    return repo


# One set per method that every seed shares; a training-free method keeps the run short.
SHARED = {**BASE, "experiment": "reruns_shared", "methods": ["cutpaste"],
          "synthesis": {"n_per_type": 1, "per_seed": False}}


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory):
    repo = copy_repo(tmp_path_factory.mktemp("reruns_shared") / "repo", git=False)
    run(snakemake("--cores", "2", "--configfile", _write(repo, "shared", SHARED)), repo, timeout=900)
    return repo


def _with(base=BASE, **changes):
    cfg = yaml.safe_load(yaml.safe_dump(base))
    for key, value in changes.items():
        section, _, sub = key.partition("__")
        if sub:
            cfg[section][sub] = value
        else:
            cfg[section] = value
    return cfg


def test_a_complete_run_leaves_nothing_to_do(complete_run):
    assert _planned(complete_run, BASE, "same") == Counter()


def test_segmenter_weights_are_deleted_once_evaluated(complete_run):
    """segmentation.keep_weights false (the default): every segmenter was evaluated and its weights
    are gone (a temp() output), nothing else is, and the run is complete (the test above); an
    evaluation that must rerun retrains its segmenter first."""
    seg = complete_run / "results" / "reruns" / "segmentation"
    runs = sorted(p.parent for p in seg.rglob("metrics.json"))
    assert len(runs) == 2 * 3                                # 2 categories x (fast, cutpaste, real-fewshot)
    for d in runs:
        assert sorted(p.name for p in d.iterdir()) == ["metrics.json", "per_image.csv", "train_config.json"]
    assert list((complete_run / "results" / "reruns" / "generators").rglob("model.safetensors"))
    planned = _planned(complete_run, _with(precision="fp32"), "precision")   # every network job's view
    assert planned["evaluate"] == planned["train_segmenter"] == 6


def test_one_more_seed_adds_its_synthetic_sets_and_segmenters(complete_run):
    # synthesis.per_seed (the default): the new seed's own set per category and method (2 x 2) and
    # 2 categories x 3 rows (fast, cutpaste, real-fewshot) segmenters; fidelity pools every seed's
    # set and the report aggregates every seed, so both are redone. No generator, no existing set
    # and no existing segmenter reruns: each synthesize job's params hold its own seed.
    jobs = _dry_run(complete_run, _with(segmentation__seeds=[0, 1]), "seed")
    assert Counter(j["rule"] for j in jobs) == Counter({"synthesize": 4, "fidelity": 4, "train_segmenter": 6,
                                                        "evaluate": 6, "report": 1})
    assert all(j["wildcards"].endswith("seed=1") for j in jobs
               if j["rule"] in ("synthesize", "train_segmenter", "evaluate"))


def test_with_shared_sets_one_more_seed_adds_only_its_segmenters(shared_run):
    assert _planned(shared_run, SHARED, "shared_same") == Counter()
    # 2 categories x 2 rows (cutpaste, real-fewshot) x 1 new seed, on the sets that already exist
    planned = _planned(shared_run, _with(SHARED, segmentation__seeds=[0, 1]), "shared_seed")
    assert planned == Counter({"train_segmenter": 4, "evaluate": 4, "report": 1})
    synthetic = shared_run / "results" / "reruns_shared" / "synthetic" / "synthetic" / "fabric" / "cutpaste"
    assert (synthetic / "manifest.csv").is_file() and not list(synthetic.glob("seed*"))


def test_one_more_method_adds_only_its_jobs(complete_run):
    # nsa: training-free; per category one synthesis, its fidelity, one segmenter and its evaluation;
    # the report and the sample grid show every method
    planned = _planned(complete_run, _with(methods=["fast", "cutpaste", "nsa"]), "method")
    assert planned == Counter({"synthesize": 2, "fidelity": 2, "train_segmenter": 2, "evaluate": 2,
                               "report": 1, "sample_grid": 1})


def test_one_fewer_category_reruns_only_the_report(complete_run):
    cfg = _with()
    cfg["datasets"]["synthetic"]["categories"] = ["fabric"]
    assert _planned(complete_run, cfg, "category") == Counter({"report": 1, "sample_grid": 1})


def test_the_report_reads_its_declared_inputs_only(complete_run):
    """A method's stale results on disk (here: a copy of cutpaste's as `draem`) never reach the
    table of an experiment that does not configure it."""
    import shutil

    results = complete_run / "results" / "reruns"
    for sub in ("segmentation", "synthetic"):
        src = results / sub / "synthetic" / "fabric" / "cutpaste"
        shutil.copytree(src, src.with_name("draem"))
    for path in (results / "segmentation" / "synthetic" / "fabric" / "draem").rglob("metrics.json"):
        path.write_text(path.read_text().replace('"cutpaste"', '"draem"'))
    run(snakemake("--cores", "1", "--forcerun", "report", "--configfile",
                  _write(complete_run, "report", BASE)), complete_run, timeout=300)
    summary = (results / "tables" / "summary.csv").read_text()
    assert "cutpaste" in summary and "draem" not in summary
    # by hand, handed every file of the tree (the stale draem ones too): the configured experiment's rows only
    run(["fast", "report", "--config", str(complete_run / "config" / "report.yaml"), "--results", str(results),
         "--out", str(complete_run / "by_hand"), *report_args(results)], complete_run, timeout=300)
    assert "draem" not in (complete_run / "by_hand" / "tables" / "summary.csv").read_text()
