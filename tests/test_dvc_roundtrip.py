"""DVC round trip on the tiny configuration (marked `dvc`, its own CI step): `dvc repro` in a
fresh repository runs every phase through Snakemake; `dvc push` to a local remote, a fresh
`git clone` + `dvc pull` gets the same files back, `dvc status` is clean, and after
`snakemake --touch` (DVC does not restore file times) Snakemake has nothing to do; changing
aias.steps with `dvc exp run -S` re-runs only synthesize, segment and report."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from workflow_support import TINY, copy_repo, dvc, git_commit, run, snakemake

pytestmark = pytest.mark.dvc

TRACKED = ["data/tiny/raw", "data/tiny/prepared", "results/tiny/generators", "results/tiny/synthetic",
           "results/tiny/segmentation", "results/tiny/tables", "results/tiny/figures"]
PHASES = ["fetch", "prepare", "train", "synthesize", "segment", "report"]


def digests(root: Path) -> dict[str, str]:
    out = {}
    for sub in TRACKED:
        for p in sorted((root / sub).rglob("*")):
            if p.is_file():
                out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def test_dvc_repro_push_clone_pull_is_up_to_date_and_exp_run_reruns_only_affected(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    repro = run(dvc("repro", "report@tiny"), repo, timeout=420).stdout
    for phase in PHASES:
        assert f"Running stage '{phase}@tiny'" in repro, repro[-3000:]
    assert "@default" not in repro  # only the tiny experiment's stages
    metrics = ["results/tiny/tables/summary.json", "results/tiny/tables/efficiency.csv"]
    git_commit(repo, "tiny results", "dvc.lock", *metrics)
    run(dvc("remote", "add", "-d", "ci", str(tmp_path / "remote")), repo, timeout=60)
    git_commit(repo, "remote", ".dvc/config")
    run(dvc("push", "report@tiny", "--with-deps"), repo, timeout=120)
    produced = digests(repo)
    assert len(produced) > 50

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    for key, value in (("user.name", "ci"), ("user.email", "ci@example.invalid")):  # dvc exp commits
        subprocess.run(["git", "config", key, value], cwd=clone, check=True)
    assert not (clone / "data/tiny").exists() and not (clone / "results/tiny/generators").exists()
    run(dvc("pull", "report@tiny", "--with-deps"), clone, timeout=120)
    assert digests(clone) == produced
    status = run(dvc("status", "report@tiny", "--with-deps"), clone, timeout=120).stdout
    assert "Data and pipelines are up to date" in status, status

    # DVC checks files out with fresh, unordered times: re-establish Snakemake's view of them
    run(snakemake("--touch", "--forceall", "--cores", "1", "--configfile", TINY), clone, timeout=120)
    dry = run(snakemake("-n", "--configfile", TINY), clone, timeout=120).stdout
    assert "Nothing to be done" in dry and "missing provenance" not in dry, dry[-3000:]
    assert digests(clone) == produced

    # one parameter of the synthesis phase: upstream stages are skipped, downstream ones re-run
    exp = run(dvc("exp", "run", "-S", f"{TINY}:aias.steps=3", "report@tiny"), clone, timeout=300).stdout
    for phase in ("fetch", "prepare", "train"):
        assert f"Stage '{phase}@tiny' didn't change, skipping" in exp, exp[-3000:]
    for phase in ("synthesize", "segment", "report"):
        assert f"Running stage '{phase}@tiny'" in exp, exp[-3000:]
    after = digests(clone)
    # the tiny config draws one set per segmenter seed (synthesis.per_seed): .../fast/seed0/images/
    fast_png = [k for k in produced if "/synthetic/synthetic/fabric/fast/seed0/images/" in k]
    assert fast_png and any(after[k] != produced[k] for k in fast_png)  # 3 AIAS steps, new images
    assert all(after[k] == produced[k] for k in produced if k.startswith(("data/", "results/tiny/generators/")))
