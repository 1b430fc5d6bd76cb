"""Orchestration without a cluster (default suite, seconds): the `slurm` profile is found by name
from the repository root, its string resources stay strings, GPU rules (and only they) ask Slurm
for GPUs, every rule has a log and a benchmark, and every DVC out is a Snakemake output of the
phase its stage runs. The real Slurm and DVC runs: test_slurm_tiny.py, test_dvc_roundtrip.py."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from workflow_support import REPO, TINY, copy_repo, dry_run_jobs, run, snakemake, summary_outputs

GPU_RULES = {"train_base", "train_generator", "synthesize", "train_segmenter"}


class _Resources(dict):
    """A job's resources as the executor plugin reads them (``.get`` and attributes)."""

    __getattr__ = dict.__getitem__


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory) -> Path:
    return copy_repo(tmp_path_factory.mktemp("orchestration") / "repo")


def test_profile_slurm_is_found_by_name_from_the_repository_root(monkeypatch):
    from snakemake.cli import get_profile_dir

    monkeypatch.chdir(REPO)
    found = get_profile_dir("slurm")
    assert found is not None, "snakemake --profile slurm does not resolve from the repository root"
    profile_dir, config_file = found
    assert Path(profile_dir).resolve() == (REPO / "workflow/profiles/slurm").resolve()
    profile = yaml.safe_load(Path(config_file).read_text())
    assert profile["executor"] == "slurm"
    assert profile["retries"] >= 1 and profile["jobs"] >= 1
    assert profile["slurm-status-command"] == "squeue"
    # site settings: Python string literals (evaluated by Snakemake), so `all` stays a string
    for key in ("slurm_partition", "slurm_account"):
        assert re.fullmatch(r"'[^']*'", profile["default-resources"][key])


def test_ci_profile_resources_are_strings_and_gpus_only_for_gpu_rules(repo_copy):
    from types import SimpleNamespace

    from snakemake_executor_plugin_slurm.utils import set_gres_string

    out = run(snakemake("--profile", "slurm", "--workflow-profile", ".ci/slurm/profile", "-n", "all",
                        "--configfile", TINY), repo_copy, timeout=120).stdout
    jobs = [j for j in dry_run_jobs(out) if j["rule"] != "all"]
    assert {j["rule"] for j in jobs} >= {"fetch", "prepare", "train_base", "train_generator", "synthesize",
                                          "train_segmenter", "evaluate", "report", "sample_grid"}
    for job in jobs:
        res = job["resources"]
        # the CI partition is literally called `all`: unquoted it would be Python's all()
        assert res["slurm_partition"] == "all" and res["slurm_account"] == "ci", res
        gpu = int(res.get("gpu", 0))
        method = re.search(r"method=([\w.-]+)", job.get("wildcards", ""))
        wants_gpu = job["rule"] in GPU_RULES and not (job["rule"] == "synthesize" and method.group(1) == "cutpaste")
        assert gpu == (1 if wants_gpu else 0), (job["rule"], job.get("wildcards"), res)
        # what the slurm executor plugin adds to sbatch for these resources
        stub = SimpleNamespace(resources=_Resources({k: int(v) if v.isdigit() else v for k, v in res.items()}))
        gres = set_gres_string(stub)
        assert ("--gpus=1" in gres) == wants_gpu and ("--gpus" in gres) == wants_gpu, (job["rule"], gres)


def test_every_rule_has_log_and_benchmark_and_lint_is_clean(repo_copy):
    for config in ("config/config.yaml", TINY):
        out = run(snakemake("-n", "--configfile", config), repo_copy, timeout=120).stdout
        jobs = [j for j in dry_run_jobs(out) if j["rule"] != "all"]
        assert jobs
        for job in jobs:
            assert job.get("log") and job.get("benchmark"), f"{config}: rule {job['rule']} lacks log/benchmark"
    lint = run(snakemake("--lint"), repo_copy, timeout=120, check=False).stdout
    titles = {t.strip() for t in re.findall(r"^    \* (.+?):?$", lint, flags=re.M)}
    assert not titles, f"snakemake --lint findings:\n{lint[-4000:]}"


def _dvc_stages(repo: Path) -> dict[str, dict]:
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc_repo:
        return {s.name: {"cmd": s.cmd, "outs": [str(o.def_path) for o in s.outs]}
                for s in dvc_repo.index.stages}


def test_dvc_outs_are_the_snakemake_outputs_of_their_phase(repo_copy):
    from fast.config import load_config

    stages = _dvc_stages(repo_copy)
    experiments = yaml.safe_load((repo_copy / "dvc.yaml").read_text())["vars"][1]["experiments"]
    assert set(experiments) >= {"default", "tiny"}
    for name, item in experiments.items():
        cfg = load_config(str(repo_copy / item["config"]))
        assert cfg["experiment"] == name and cfg["paths"]["data"] == item["data"], name
        assert cfg["paths"]["results"] == "results"
        summary = run(snakemake("--summary", "--configfile", item["config"]), repo_copy, timeout=120).stdout
        outputs = summary_outputs(summary)
        assert outputs, summary[-2000:]
        mine = {k: v for k, v in stages.items() if k.endswith(f"@{name}")}
        assert {k.split("@")[0] for k in mine} == {"fetch", "prepare", "train", "synthesize", "segment", "report"}
        stage_of_rule, covered = {}, set()
        for stage, spec in mine.items():
            argv = shlex.split(spec["cmd"].split("&&")[0])
            assert item["config"] in argv, spec["cmd"]
            until = set(argv[argv.index("--until") + 1:]) if "--until" in argv else set()
            rules = set()
            for out in spec["outs"]:
                under = {p: r for p, r in outputs.items() if p == out or p.startswith(out.rstrip("/") + "/")}
                if not under and stage.startswith("train@"):
                    assert "train_generator" not in outputs.values()
                    continue  # a config without diffusion methods trains nothing
                assert under, f"{stage}: DVC out {out} is not a Snakemake output"
                assert not covered & set(under), f"{stage}: {out} overlaps another stage's outs"
                covered |= set(under)
                rules |= set(under.values())
            assert until <= rules | ({"train_generator"} if stage.startswith("train@") else set()), (stage, until, rules)
            for rule in rules:  # a rule belongs to one phase: all its outputs are in one stage
                assert stage_of_rule.setdefault(rule, stage) == stage, f"rule {rule} in {stage} and {stage_of_rule[rule]}"
        assert covered == set(outputs), f"Snakemake outputs no DVC stage tracks: {sorted(set(outputs) - covered)}"


def test_environment_yml_installs_the_package_with_the_workflow_extra():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    assert env["channels"][0] == "conda-forge"
    deps = env["dependencies"]
    assert "python=3.11" in deps and any(str(d).startswith("pytorch") for d in deps)
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    assert "-e .[workflow]" in pip
