"""precision, synthesis.batch_size and segmentation.keep_weights in the workflow (dry runs, seconds):
the rules that run networks get `precision` when a config sets it, a diffusion synthesis gets its
batch size, and a config that sets none of them gives every job the params it had before the keys
existed (nothing reruns). That the weights are deleted once evaluated: test_workflow_reruns.py."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import yaml

from workflow_support import TINY, copy_repo, dry_run_jobs, run, snakemake

NETWORK_RULES = {"train_base", "train_generator", "synthesize", "train_segmenter", "evaluate"}


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    return copy_repo(tmp_path_factory.mktemp("gpu_keys") / "repo", git=False)


def _views(repo: Path, config: str) -> list[tuple[dict, dict]]:
    """(job, the config view its command passes) of every job of a dry run that has one."""
    out = run(snakemake("-n", "-p", "-F", "--configfile", config), repo, timeout=120).stdout
    views = []
    for job in dry_run_jobs(out):
        argv = shlex.split(job.get("shell", ""))
        if "--config" in argv:
            views.append((job, json.loads(argv[argv.index("--config") + 1])))
    return views


def _config(repo: Path, name: str, **changes) -> str:
    cfg = yaml.safe_load((repo / TINY).read_text())
    for dotted, value in changes.items():
        *path, key = dotted.split(".")
        node = cfg
        for p in path:
            node = node.setdefault(p, {})
        node[key] = value
    (repo / "config" / name).write_text(yaml.safe_dump(cfg))
    return f"config/{name}"


def test_default_views_hold_none_of_the_keys(repo):
    views = _views(repo, TINY)
    assert {job["rule"] for job, _ in views} >= NETWORK_RULES | {"report"}
    for job, view in views:
        assert "precision" not in view, job["rule"]
        assert "batch_size" not in view.get("synthesis", {}), job["rule"]
        assert "keep_weights" not in view.get("segmentation", {}), job["rule"]


def test_set_keys_reach_the_jobs_that_read_them(repo):
    config = _config(repo, "gpu_keys.yaml", precision="bf16", **{"synthesis.batch_size": 64,
                                                               "segmentation.keep_weights": True})
    seen = set()
    for job, view in _views(repo, config):
        rule, diffusion = job["rule"], "method=fast" in job.get("wildcards", "")
        network = rule in NETWORK_RULES and (rule != "synthesize" or diffusion)
        assert (view.get("precision") == "bf16") == network, (rule, job.get("wildcards"))
        if rule == "synthesize":
            assert view["synthesis"].get("batch_size") == (64 if diffusion else None), job["wildcards"]
        assert "keep_weights" not in view.get("segmentation", {}), rule   # the workflow's, not a job's
        seen.add(rule)
    assert seen >= NETWORK_RULES


def test_precision_auto_is_the_default_view(repo):
    config = _config(repo, "auto.yaml", precision="auto", **{"synthesis.batch_size": None,
                                                           "segmentation.keep_weights": False})
    assert [v for _, v in _views(repo, config)] == [v for _, v in _views(repo, TINY)]
