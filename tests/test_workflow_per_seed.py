"""synthesis.per_seed: every segmenter seed trains on a synthetic set of its own. Dry runs of a
two-seed experiment show one synthesize job per seed, each segmenter reading its own seed's set,
fidelity pooling the seeds' sets and the report reading every seed's timing; per_seed false keeps
the one shared set. A real run of the two synthesis jobs gives two different draws, and the report
side turns per-seed timings into one efficiency row per method."""

from __future__ import annotations

import hashlib
import json
import re
import shlex

import pandas as pd
import pytest
import yaml

from workflow_support import copy_repo, dry_run_jobs, run, snakemake

EXP = "per_seed"
BASE = {
    "experiment": EXP, "seed": 0, "device": "cpu",
    "paths": {"data": "data/per_seed"},
    "datasets": {"synthetic": {"root": None, "categories": ["fabric"],
                               "options": {"categories": ["fabric"], "image_size": 32, "n_normal_train": 6,
                                           "n_normal_test": 2, "n_anomalous_per_type": 2}}},
    "resolution": 32,
    "synthesis": {"n_per_type": 2},
    "methods": ["cutpaste"],
    "segmentation": {"segmenters": ["unet"], "seeds": [0, 1], "steps": 2, "batch_size": 2,
                     "encoder_weights": None, "reference_rows": ["real-fewshot"]},
    "report": {"sample_grid": True},
}
SYNTHETIC = f"results/{EXP}/synthetic/synthetic/fabric/cutpaste"


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return copy_repo(tmp_path_factory.mktemp("per_seed") / "repo", git=False)


def _config(repo, name, per_seed=None):
    cfg = yaml.safe_load(yaml.safe_dump(BASE))
    if per_seed is not None:
        cfg["synthesis"]["per_seed"] = per_seed
    path = repo / "config" / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return str(path.relative_to(repo))


def _jobs(repo, config):
    out = run(snakemake("-n", "-p", "--forceall", "--cores", "1", "--configfile", config), repo, timeout=180).stdout
    jobs = [j for j in dry_run_jobs(out) if j["rule"] != "all"]
    by_rule = {}
    for job in jobs:
        by_rule.setdefault(job["rule"], []).append(job)
    return by_rule


def _option(shell, flag):
    """The values after ``flag`` in a shell command, up to the next option or redirection."""
    argv = shlex.split(shell)
    values = argv[argv.index(flag) + 1:]
    stop = next((i for i, a in enumerate(values) if a.startswith("--") or a in (">", "2>&1")), len(values))
    return values[:stop]


def _seed(job):
    return int(re.search(r"seed=(\d+)", job["wildcards"]).group(1))


def _view(shell):
    return json.loads(_option(shell, "--config")[0])


def test_two_seeds_are_two_synthesize_jobs_and_each_segmenter_reads_its_own(repo):
    jobs = _jobs(repo, _config(repo, "two_seeds"))
    synth = sorted(jobs["synthesize"], key=_seed)
    assert [_seed(j) for j in synth] == [0, 1]
    for k, job in enumerate(synth):
        assert job["output"].startswith(f"{SYNTHETIC}/seed{k}/manifest.csv")
        assert _option(job["shell"], "--out") == [f"{SYNTHETIC}/seed{k}"]
        assert _option(job["shell"], "--replicate") == [str(k)]
        # the job's params hold its own seed, not the seed list: a new seed leaves it unchanged
        view = _view(job["shell"])
        assert view["segmentation"] == {"seeds": [k]} and "per_seed" not in view["synthesis"]
    segmenters = [j for j in jobs["train_segmenter"] if "method=cutpaste" in j["wildcards"]]
    assert sorted(_seed(j) for j in segmenters) == [0, 1]
    for job in segmenters:
        own = f"{SYNTHETIC}/seed{_seed(job)}"
        assert f"{own}/manifest.csv" in job["input"].split(", ")
        assert _option(job["shell"], "--synthetic") == [own]
    assert all("--synthetic" not in j["shell"] for j in jobs["train_segmenter"] if "real-fewshot" in j["wildcards"])
    # fidelity pools both seeds' sets in one job; the report reads both seeds' timings
    (fidelity,) = jobs["fidelity"]
    assert _option(fidelity["shell"], "--synthetic") == [f"{SYNTHETIC}/seed0", f"{SYNTHETIC}/seed1"]
    (report,) = jobs["report"]
    assert [t for t in _option(report["shell"], "--timings")] == [
        f"{SYNTHETIC}/seed0/timing.json", f"{SYNTHETIC}/seed1/timing.json"]
    (grid,) = jobs["sample_grid"]
    assert _option(grid["shell"], "--synthetic") == [f"{SYNTHETIC}/seed0"]


def test_per_seed_false_keeps_one_shared_set(repo):
    jobs = _jobs(repo, _config(repo, "shared", per_seed=False))
    (synth,) = jobs["synthesize"]
    assert synth["output"].startswith(f"{SYNTHETIC}/manifest.csv")
    assert "--replicate" not in synth["shell"] and _option(synth["shell"], "--out") == [SYNTHETIC]
    assert "segmentation" not in _view(synth["shell"])  # the view it had before per_seed existed
    segmenters = [j for j in jobs["train_segmenter"] if "method=cutpaste" in j["wildcards"]]
    assert sorted(_seed(j) for j in segmenters) == [0, 1]
    assert all(_option(j["shell"], "--synthetic") == [SYNTHETIC] for j in segmenters)
    (fidelity,) = jobs["fidelity"]
    assert _option(fidelity["shell"], "--synthetic") == [SYNTHETIC]
    assert _option(jobs["report"][0]["shell"], "--timings") == [f"{SYNTHETIC}/timing.json"]


def _digests(directory):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((directory / "images").iterdir())}


def test_the_seeds_sets_are_different_draws(repo):
    config = _config(repo, "draws")
    targets = [f"{SYNTHETIC}/seed{k}/manifest.csv" for k in (0, 1)]
    run(snakemake("--cores", "2", "--configfile", config, "--", *targets), repo, timeout=600)
    sets = [repo / SYNTHETIC / f"seed{k}" for k in (0, 1)]
    images = [_digests(s) for s in sets]
    assert images[0].keys() == images[1].keys() and len(images[0]) > 1
    assert all(images[0][name] != images[1][name] for name in images[0])  # every pair redrawn
    tables = [pd.read_csv(s / "manifest.csv", dtype=str, keep_default_na=False) for s in sets]
    assert list(tables[0]["source_normal"]) != list(tables[1]["source_normal"])  # other backgrounds too
    timings = [json.loads((s / "timing.json").read_text()) for s in sets]
    assert [t["replicate"] for t in timings] == [0, 1] and {t["seed"] for t in timings} == {0}
    assert timings[0]["method_seed"] != timings[1]["method_seed"]


def _timing(path, method, category, replicate, seconds_per_image, images=4):
    record = {"dataset": "synthetic", "category": category, "method": method, "device": "cpu",
              "images": images, "wall_seconds": seconds_per_image * images, "seconds_per_image": seconds_per_image,
              "images_per_s": 1 / seconds_per_image, "nfe": 0.0, "seed": 0}
    if replicate is not None:
        record["replicate"] = replicate
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


def test_per_seed_timings_make_one_efficiency_row_per_method(tmp_path):
    from fast.config import load_config
    from fast.report.collect import experiment_rows, load_timings
    from fast.report.tables import efficiency_table

    syn = tmp_path / "synthetic" / "synthetic"
    files = [_timing(syn / c / "cutpaste" / f"seed{k}" / "timing.json", "cutpaste", c, k, s)
             for c, k, s in [("fabric", 0, 1.0), ("fabric", 1, 3.0), ("washer", 0, 2.0), ("washer", 1, 2.0),
                             ("fabric", 2, 99.0)]]  # seed 2: a stale set of a seed no longer configured
    timings = load_timings(files)
    assert list(timings["seed"]) == [0, 1, 0, 1, 2]
    cfg = load_config({**BASE, "datasets": {"synthetic": {"categories": ["fabric", "washer"]}}})
    keep = experiment_rows(timings, cfg)
    assert list(keep) == [True, True, True, True, False]
    shared = load_timings([_timing(tmp_path / "shared.json", "cutpaste", "fabric", None, 1.0)])
    assert shared["seed"].isna().all() and experiment_rows(shared, cfg).all()  # a shared set has no seed

    long = pd.DataFrame([{"dataset": "synthetic", "category": c, "method": "cutpaste", "segmenter": "unet",
                          "seed": k, "metric": m, "value": 0.5}
                         for c in ("fabric", "washer") for k in (0, 1) for m in ("mIoU", "mAcc")])
    eff = efficiency_table(long, timings[keep], ["cutpaste"])
    assert len(eff) == 1
    assert eff.loc[0, "seconds_per_image"] == pytest.approx(2.0)  # mean over categories and seeds
    assert eff.loc[0, "n_seeds"] == 2
