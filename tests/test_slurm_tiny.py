"""The tiny configuration end to end through `--profile slurm` on the CI's single-node Slurm
(.ci/slurm/start.sh; marked `slurm`, run in its own CI step): every job goes through sbatch and
sacct, the GPU rules get the (fake) GPU, the deterministic outputs equal a local `--cores` run's
byte for byte, and a generator training killed with scancel is retried and resumes from its
checkpoint."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from workflow_support import TINY, copy_repo, run, snakemake, tool_env

pytestmark = pytest.mark.slurm

SLURM = ["--profile", "slurm", "--workflow-profile", ".ci/slurm/profile"]
GENERATOR = "results/tiny/generators/synthetic/fabric/fast"
BASE = "results/tiny/generators/synthetic/fabric/base"   # the shared base model fast starts from


@pytest.fixture(scope="module", autouse=True)
def slurm_is_up():
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True)
    assert ping.returncode == 0 and "UP" in ping.stdout, (
        "no Slurm controller: run .ci/slurm/install.sh && .ci/slurm/start.sh first\n" + ping.stdout + ping.stderr)


def sacct(job_ids) -> list[dict]:
    out = subprocess.run(["sacct", "-X", "-n", "-P", "-j", ",".join(job_ids),
                          "-o", "JobID,State,AllocTRES,Comment,Partition,Account"],
                         capture_output=True, text=True, check=True).stdout
    keys = ["id", "state", "tres", "comment", "partition", "account"]
    return [dict(zip(keys, line.split("|"))) for line in out.splitlines() if line]


def rule_of(comment: str) -> str:
    """The rule of a job from the plugin's sbatch --comment: rule_<rule>[_wildcards_<values>]."""
    return re.fullmatch(r"'?rule_(.+?)(?:_wildcards_.*)?'?", comment).group(1)


def submitted_ids(log: str) -> list[str]:
    return re.findall(r"has been submitted with SLURM jobid (\d+)", log)


# measured wall-clock times and dates are the only outputs that may differ between two runs
VARIABLE = ("timing.json", ".snakemake_timestamp", "fetch_record.json")


def file_digests(root: Path, *subdirs: str, skip=VARIABLE) -> dict[str, str]:
    """sha256 of every file under ``subdirs``; synthetic manifests without their `seconds` column."""
    out = {}
    for sub in subdirs:
        for p in sorted((root / sub).rglob("*")):
            if not p.is_file() or p.name in skip:
                continue
            rel, data = str(p.relative_to(root)), p.read_bytes()
            if p.name == "manifest.csv" and rel.startswith("results/"):
                data = pd.read_csv(p).drop(columns=["seconds"], errors="ignore").to_csv(index=False).encode()
            out[rel] = hashlib.sha256(data).hexdigest()
    return out


def test_tiny_pipeline_runs_through_slurm_and_matches_a_local_run(tmp_path):
    repo = copy_repo(tmp_path / "slurm", git=False)
    log = run(snakemake(*SLURM, "--verbose", "all", "--configfile", TINY), repo, timeout=540).stdout

    # every job was an sbatch submission; GPU rules (and only they) asked for the GPU
    calls = re.findall(r"^sbatch call: (.*)$", log, flags=re.M)
    rules = [rule_of(re.search(r"--comment (\S+)", c).group(1)) for c in calls]
    assert sorted(set(rules)) == ["evaluate", "fetch", "fidelity", "prepare", "report", "sample_grid",
                                  "synthesize", "train_base", "train_generator", "train_segmenter"]
    for rule, call in zip(rules, calls):
        assert " -p all " in call and " -A ci " in call, call
        gpu = "--gpus=1" in call
        if rule in ("train_base", "train_generator", "train_segmenter"):
            assert gpu, call
        elif rule != "synthesize":
            assert "--gpus" not in call, call
    synth = {re.search(r"--comment (\S+)", c).group(1): "--gpus=1" in c for r, c in zip(rules, calls) if r == "synthesize"}
    # one synthesis job per method and seed (the tiny config draws a synthetic set per seed)
    assert synth == {"rule_synthesize_wildcards_synthetic_fabric_fast_0": True,
                     "rule_synthesize_wildcards_synthetic_fabric_cutpaste_0": False}

    # ... and Slurm's accounting saw each of them complete, with a GPU where asked
    ids = submitted_ids(log)
    assert len(ids) == len(calls) == 14
    rows = sacct(ids)
    assert sorted(r["id"] for r in rows) == sorted(ids)
    assert all(r["state"] == "COMPLETED" and r["partition"] == "all" and r["account"] == "ci" for r in rows), rows
    gpu_rows = [r for r in rows if "gres/gpu=1" in r["tres"]]
    assert {rule_of(r["comment"]) for r in gpu_rows} == {"train_base", "train_generator", "synthesize",
                                                        "train_segmenter"}
    assert len(gpu_rows) == 5  # 2 generators (base, fast), 1 diffusion synthesis, 2 segmenters

    summary = json.loads((repo / "results/tiny/tables/summary.json").read_text())
    assert summary, "empty summary.json"
    assert (repo / "results/tiny/figures/sample_grid.png").stat().st_size > 0

    # the deterministic steps give byte-identical files with a local run
    local = copy_repo(tmp_path / "local", git=False)
    targets = [f"{GENERATOR}/model.safetensors"] + [
        f"results/tiny/synthetic/synthetic/fabric/{m}/seed0/manifest.csv" for m in ("fast", "cutpaste")]
    run(snakemake("--cores", "2", "--configfile", TINY, "--", *targets), local, timeout=300)
    dirs = ["data/tiny/raw", "data/tiny/prepared", "results/tiny/synthetic"]
    on_slurm, on_local = file_digests(repo, *dirs), file_digests(local, *dirs)
    assert len(on_local) > 40 and any(k.endswith(".png") and "/cutpaste/seed0/images/" in k for k in on_local)
    assert on_slurm == on_local
    assert file_digests(repo, GENERATOR, skip=("config.json",)) == file_digests(local, GENERATOR, skip=("config.json",))


def test_killed_training_job_is_retried_and_resumes_from_its_checkpoint(tmp_path):
    repo = copy_repo(tmp_path / "resume", git=False)
    cfg = yaml.safe_load((repo / TINY).read_text())
    cfg["diffusion"]["train"].update(steps=300, checkpoint_every=10)
    (repo / "config/resume.yaml").write_text(yaml.safe_dump(cfg))
    target = f"{BASE}/model.safetensors"
    proc = subprocess.Popen(snakemake(*SLURM, "--configfile", "config/resume.yaml", "--", target), cwd=repo,
                            env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        marker = repo / BASE / "checkpoints/last.json"
        deadline = time.time() + 240
        while not marker.is_file() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert marker.is_file(), "no checkpoint appeared"
        running = subprocess.run(["squeue", "-h", "-o", "%i %k"], capture_output=True, text=True, check=True).stdout
        job = [line.split()[0] for line in running.splitlines() if rule_of(line.split()[1]) == "train_base"]
        assert len(job) == 1, running
        step_at_kill = json.loads(marker.read_text())["step"]
        subprocess.run(["scancel", job[0]], check=True)
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-4000:]

    # the retry (profile `retries`) is a second Slurm job that continued from the checkpoint
    rows = [r for r in sacct(submitted_ids(out)) if rule_of(r["comment"]) == "train_base"]
    states = [r["state"] for r in sorted(rows, key=lambda r: int(r["id"]))]
    assert len(states) == 2 and states[0].startswith("CANCELLED") and states[1] == "COMPLETED", rows
    rule_log = (repo / "results/tiny/logs/train_generator/synthetic/fabric/base.log").read_text()
    resumed = [int(s) for s in re.findall(r"resuming .* from step (\d+)", rule_log)]
    assert len(resumed) == 1 and step_at_kill <= resumed[0] < 300, rule_log[-2000:]
    steps = [int(line.split(",")[0]) for line in (repo / BASE / "train_log.csv").read_text().splitlines()[1:]]
    assert steps == list(range(1, 301))
    assert (repo / target).is_file() and not (repo / BASE / "checkpoints").exists()
