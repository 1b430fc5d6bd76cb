"""Helpers for the orchestration tests (tests/test_workflow_*.py, test_slurm_*.py, test_dvc_*.py):
a throw-away copy of the repository, subprocesses that cannot outlive their timeout, and
parsers for Snakemake's dry-run output. Not a test module (no test_ prefix)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY = "config/tiny.yaml"


def tool_env(**extra: str) -> dict[str, str]:
    """The environment for snakemake/dvc/fast subprocesses: the running interpreter's bin
    directory first on PATH (the venv, also inside Slurm jobs: sbatch --export=ALL), one thread
    per process (2-core CI machine), no model hub."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def run(cmd: list[str], cwd: Path, timeout: float, check: bool = True,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``cmd``; on timeout kill its whole process group (snakemake's children included)."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env or tool_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        raise AssertionError(f"timed out after {timeout}s: {' '.join(cmd)}\n{out[-4000:]}")
    result = subprocess.CompletedProcess(cmd, proc.returncode, out, "")
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}: {' '.join(cmd)}\n{out[-6000:]}")
    return result


def snakemake(*args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", *args]


def dvc(*args: str) -> list[str]:
    return [sys.executable, "-m", "dvc", *args]


def copy_repo(dest: Path, git: bool = True) -> Path:
    """A fresh copy of the working tree (tracked + untracked-but-not-ignored files, i.e. what a
    clone of the working tree would hold) at ``dest``; with ``git`` a new repository with one
    commit, so DVC and `git clone` work on it."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    dest.mkdir(parents=True, exist_ok=True)
    for rel in filter(None, files):
        src = REPO / rel
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the working tree
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            target.symlink_to(os.readlink(src))
        else:
            shutil.copy2(src, target)
    if git:
        git_commit(dest, "copy of the working tree", init=True)
    return dest


def git_commit(repo: Path, message: str, *paths: str, init: bool = False) -> None:
    ident = ["-c", "user.name=ci", "-c", "user.email=ci@example.invalid"]
    if init:
        subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
        subprocess.run(["git", "config", "user.name", "ci"], cwd=repo, check=True)
        subprocess.run(["git", "config", "user.email", "ci@example.invalid"], cwd=repo, check=True)
    subprocess.run(["git", "add", "-A", *paths] if not paths else ["git", "add", "-f", *paths],
                   cwd=repo, check=True)
    subprocess.run(["git", *ident, "commit", "-q", "--allow-empty", "-m", message], cwd=repo, check=True)


def dry_run_jobs(output: str) -> list[dict]:
    """Jobs of a ``snakemake -n`` printout: [{"rule", "input", "output", "log", "benchmark",
    "wildcards", "resources": {...}}], and "shell" (the command) with ``-p``."""
    jobs, job = [], None
    for line in output.splitlines():
        m = re.match(r"^(?:local)?rule (\w+):$", line.strip())
        if m:
            job = {"rule": m.group(1), "resources": {}}
            jobs.append(job)
        elif job is not None and line.startswith("Shell command: "):
            job["shell"] = line[len("Shell command: "):]
        elif job is not None and ":" in line and line.startswith("    "):
            key, _, value = line.strip().partition(": ")
            if key == "resources":
                job["resources"] = dict(kv.split("=", 1) for kv in value.split(", ") if "=" in kv)
            elif key in ("input", "log", "benchmark", "output", "wildcards"):
                job[key] = value
    return jobs


def summary_outputs(output: str) -> dict[str, str]:
    """``snakemake --summary`` printout -> {output path: rule}."""
    rows = [line.split("\t") for line in output.splitlines() if "\t" in line]
    return {r[0]: r[2] for r in rows[1:] if rows and rows[0][0] == "output_file"}
