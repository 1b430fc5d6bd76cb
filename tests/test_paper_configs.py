"""The paper-scale cluster configs (config/mvtec_ad.yaml, btad.yaml, visa.yaml), offline and on CPU:

- they validate and carry the FAST paper's settings (ldm backbone, scaled-linear betas, FARM
  widths, 256 px, every method, segformer + unet with ImageNet encoders, 3 seeds);
- a dry run through `--profile slurm` lists exactly the expected jobs per rule and gives every GPU
  job (and only those) its GPU, memory, runtime and CPUs from `resources.gpu`;
- the published numbers of the FAST paper form a "reported" block for MVTec AD and BTAD;
- each config, with sizes overridden to tiny values, the dataset pointed at its format's dummy data
  and `diffusion.pretrained` at the tiny offline LDM of test_diffusion_ldm, runs end to end with
  Snakemake (`slow`: CI's `pytest -m slow` step);
- the package's own requirements put no upper bound on torch/torchvision (CI's bounds live in
  .ci/constraints.txt), so `pip install -e .` never replaces a cluster's CUDA build of PyTorch.
"""

from __future__ import annotations

import importlib
import json
import re
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml
from test_diffusion_ldm import tiny_ldm  # noqa: F401  (the fixture: a tiny LDM in the diffusers layout)
from workflow_support import REPO, copy_repo, dry_run_jobs, run, snakemake, tool_env

from fast.config import load_config
from fast.methods import GENERATOR_OF, REGISTRY

CONFIGS = {"mvtec_ad": "config/mvtec_ad.yaml", "btad": "config/btad.yaml", "visa": "config/visa.yaml"}
# The methods of the paper configs: FAST, its sampler variants (FAST Table 3 / Sec. 4.3, plus
# DPM-Solver++-20), the papers' baselines and defect-paste (the registry may hold more, e.g. an NFE sweep).
PAPER_METHODS = ["fast", "fast-aias50", "fast-nofarm", "fast-ddpm1000", "fast-ddim50", "fast-plms50",
                 "fast-dpmpp20", "anomalydiffusion", "stage", "sard", "cutpaste", "cutpaste-scar", "draem",
                 "nsa", "defect-paste"]
N_CATEGORIES = {"mvtec_ad": 15, "btad": 3, "visa": 12}
# Rows of every segmentation table: the 15 methods + real-fewshot + no-anomalies; x 2 segmenters
# x 3 seeds = 102 segmenter runs per category. Generators per category: base + fast, stage, sard.
# Synthesis: 15 methods x 3 seeds per category (synthesis.per_seed), fidelity pools the seeds.
EXPECTED_JOBS = {
    "mvtec_ad": {"fetch": 1, "prepare": 15, "train_base": 15, "train_generator": 45, "synthesize": 675,
                 "fidelity": 225, "train_segmenter": 1530, "evaluate": 1530, "report": 1, "sample_grid": 1,
                 "all": 1},
    "btad": {"fetch": 1, "prepare": 3, "train_base": 3, "train_generator": 9, "synthesize": 135,
             "fidelity": 45, "train_segmenter": 306, "evaluate": 306, "report": 1, "sample_grid": 1, "all": 1},
    "visa": {"fetch": 1, "prepare": 12, "train_base": 12, "train_generator": 36, "synthesize": 540,
             "fidelity": 180, "train_segmenter": 1224, "evaluate": 1224, "report": 1, "sample_grid": 1,
             "all": 1},
}
# Jobs that ask Slurm for a GPU: generators, diffusion synthesis (10 of the 15 methods, per seed),
# segmenters.
EXPECTED_GPU_JOBS = {"mvtec_ad": 2040, "btad": 408, "visa": 1632}
GPU_RESOURCES = {"gpu": "1", "mem_mb": "16000", "runtime": "720", "cpus_per_task": "8"}
CPU_RESOURCES = {"mem_mb": "8000", "runtime": "60", "cpus_per_task": "2"}
GPU_RULES = {"train_base", "train_generator", "synthesize", "train_segmenter"}


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory) -> Path:
    return copy_repo(tmp_path_factory.mktemp("paper_configs") / "repo", git=False)


# -- the configs themselves -------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(CONFIGS))
def test_paper_config_validates_and_has_the_papers_settings(name):
    cfg = load_config(REPO / CONFIGS[name])
    formats = importlib.import_module(f"fast.data.formats.{name}")
    assert cfg["experiment"] == name and list(cfg["datasets"]) == [name]
    ds = cfg["datasets"][name]
    assert ds["categories"] == formats.CATEGORIES and len(ds["categories"]) == N_CATEGORIES[name]
    assert ds["root"] is None  # $FAST_DATA_DIR/<name>, else the public archive
    assert cfg["resolution"] == 256 and cfg["device"] == "auto"
    d = cfg["diffusion"]
    assert (d["backbone"], d["pretrained"], d["patch"]) == ("ldm", "CompVis/ldm-text2im-large-256", None)
    assert (d["num_train_timesteps"], d["beta_schedule"], d["beta_start"], d["beta_end"]) == (
        1000, "scaled_linear", 0.00085, 0.012)
    assert d["farm"] == {"lambda": 5.0, "widths": [64, 128, 256], "adaptor": False}
    t = d["train"]
    assert t["steps"] + t["finetune_steps"] == 80000 and t["batch_size"] == 8 and t["lr"] == 0.002
    assert d["ldm"]["num_vectors"] == 4
    assert cfg["aias"]["steps"] == 10 and cfg["aias"]["coefficients"] == "exact"
    assert cfg["methods"] == PAPER_METHODS  # sampler variants and defect-paste included
    assert set(PAPER_METHODS) <= set(REGISTRY)
    seg = cfg["segmentation"]
    assert seg["segmenters"] == ["segformer", "unet"] and seg["seeds"] == [0, 1, 2]
    assert seg["encoder_weights"] == "imagenet" and seg["reference_rows"] == ["real-fewshot", "no-anomalies"]
    assert cfg["synthesis"]["n_per_type"] == (100 if name == "mvtec_ad" else 500)
    assert cfg["resources"]["gpu"] == {"gpu": 1, "cpus_per_task": 8, "mem_mb": 16000, "runtime": 720}
    assert cfg["resources"]["cpu"] == {"gpu": 0, "cpus_per_task": 2, "mem_mb": 8000, "runtime": 60}


def test_every_paper_setting_is_commented_with_its_source():
    """Keys that come from a paper say so on their line (FAST, the authors' config, docs/methods.md)."""
    keys = ("backbone:", "pretrained:", "beta_start:", "beta_end:", "widths:", "lambda:", "batch_size: 8",
            "lr: 0.002", "num_vectors:", "resolution:", "n_per_type:", "segmenters:")
    for name, path in CONFIGS.items():
        lines = (REPO / path).read_text().splitlines()
        for key in keys:
            line = next(line for line in lines if line.strip().startswith(key))
            assert "#" in line and re.search(r"FAST|authors'|METHODS\.md|LDM", line.split("#", 1)[1]), (name, line)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_reported_block_of_the_fast_paper_renders_for_the_config(name):
    from fast.report.collect import load_reference
    from fast.report.tables import reported_table, to_markdown

    cfg = load_config(REPO / CONFIGS[name])
    reference = load_reference(REPO / cfg["paths"]["reference"])
    cats = cfg["datasets"][name]["categories"]
    table = reported_table(reference, name, "segformer", cats, cfg["methods"])
    if name == "visa":  # the FAST paper has no VisA table
        assert table is None
        return
    md = to_markdown(table)
    assert f"REPORTED (not reproduced): {name} / segformer" in md
    rows = [line.split("|")[1].strip() for line in md.splitlines() if line.startswith("|")][2:]
    assert rows == (cats + ["average"] if name == "mvtec_ad" else cats)
    assert "fast" in table.header and "anomalydiffusion" in table.header
    # the unet tables have no published counterpart (the paper's other segmenters are not in smp)
    assert reported_table(reference, name, "unet", cats, cfg["methods"]) is None


# -- dry run through the Slurm profile --------------------------------------------------------------

@pytest.mark.parametrize("name", list(CONFIGS))
def test_dry_run_lists_the_expected_jobs_and_slurm_resources(name, repo_copy):
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    out = run(snakemake("--profile", "slurm", "-n", "all", "--configfile", CONFIGS[name]), repo_copy,
              timeout=300).stdout
    jobs = dry_run_jobs(out)
    assert Counter(j["rule"] for j in jobs) == EXPECTED_JOBS[name]
    # the job stats table Snakemake prints agrees
    stats = dict(re.findall(r"^(\w+)\s+(\d+)$", out.split("Job stats:")[1].split("Reasons:")[0], flags=re.M))
    assert stats["total"] == str(sum(EXPECTED_JOBS[name].values()))

    gpu_jobs = 0
    for job in (j for j in jobs if j["rule"] != "all"):
        res = job["resources"]
        method = re.search(r"method=([\w.-]+)", job.get("wildcards", ""))
        wants_gpu = job["rule"] in GPU_RULES and not (
            job["rule"] == "synthesize" and GENERATOR_OF[method.group(1)] is None)
        expected = GPU_RESOURCES if job["rule"] in GPU_RULES else CPU_RESOURCES
        got = {k: res.get(k) for k in expected}
        if job["rule"] == "synthesize" and not wants_gpu:  # hand-crafted methods: the GPU class, no GPU
            expected = {**GPU_RESOURCES, "gpu": "0"}
        assert got == expected, (job["rule"], job.get("wildcards"), res)
        assert res["slurm_partition"] == "" and res["slurm_account"] == ""  # the profile's site defaults
        stub = SimpleNamespace(resources=_Resources({k: int(v) if v.isdigit() else v for k, v in res.items()}))
        assert ("--gpus=1" in set_gres_string(stub)) == wants_gpu, (job["rule"], job.get("wildcards"))
        gpu_jobs += wants_gpu
    assert gpu_jobs == EXPECTED_GPU_JOBS[name]
    # the generator jobs train on the paper's LDM with the paper's schedule
    base_cmd = next(line for line in out.splitlines() if line.startswith("Shell command:") and "--generator base" in line)
    view = json.loads(re.search(r"--config '(\{.*?\})'", base_cmd).group(1))
    assert view["diffusion"]["backbone"] == "ldm" and view["diffusion"]["pretrained"] == "CompVis/ldm-text2im-large-256"
    assert view["diffusion"]["beta_schedule"] == "scaled_linear" and view["resolution"] == 256


class _Resources(dict):
    """A job's resources as the executor plugin reads them (``.get`` and attributes)."""

    __getattr__ = dict.__getitem__


# -- tiny end to end --------------------------------------------------------------------------------

# One category per dataset, present in the dummy data (and, for MVTec AD and BTAD, in the paper's
# tables, so the reported block renders); the dummy anomaly types of tests/dummy_data.py.
TINY_CATEGORY = {"mvtec_ad": "bottle", "btad": "01", "visa": "candle"}
DUMMY_TYPES = {"mvtec_ad": ["broken", "crack"], "btad": ["ko"], "visa": ["anomaly"]}
# Each Snakemake job is a fresh `fast` process (~8 s of CPU for its imports alone), so the workflow
# runs keep few jobs: per dataset a different kind of generator on the ldm backbone (FAST with
# FARM on the base; the base model sampled by anomalydiffusion; SARD's discriminator fine-tune)
# and one training-free method, segformer where the paper has numbers, unet on VisA. Every method
# of the configs samples the tiny LDM in test_every_method_samples_the_ldm_backbone_at_the_papers_schedule.
TINY_METHODS = {"mvtec_ad": ["fast", "defect-paste"], "btad": ["anomalydiffusion", "cutpaste"],
                "visa": ["sard", "nsa"]}
TINY_SEGMENTERS = {"mvtec_ad": ["segformer"], "btad": ["segformer"], "visa": ["unet"]}
TINY_REFERENCE_ROWS = {"mvtec_ad": ["real-fewshot", "no-anomalies"], "btad": [], "visa": []}


def tiny_variant(name: str, dummy_root: Path, ldm: Path, methods: list[str] | None = None) -> dict:
    """The paper config with tiny sizes: one category of the dummy data, the tiny LDM, a few steps,
    one seed; everything else (backbone, schedule, samplers, segmenters, rows) as configured."""
    cfg = yaml.safe_load((REPO / CONFIGS[name]).read_text())
    cfg["device"] = "cpu"
    cfg["paths"]["data"] = f"data/{name}_tiny"
    cfg["datasets"][name].update(root=str(dummy_root), categories=[TINY_CATEGORY[name]])
    cfg["resolution"] = 32
    d = cfg["diffusion"]
    d["pretrained"] = str(ldm)
    d["farm"]["widths"] = [8, 8, 16]
    d["train"].update(steps=2, finetune_steps=2, batch_size=2, checkpoint_every=10)
    cfg["synthesis"]["n_per_type"] = 1
    cfg["methods"] = TINY_METHODS[name] if methods is None else methods
    cfg["segmentation"].update(segmenters=TINY_SEGMENTERS[name], seeds=[0], steps=2, batch_size=2,
                               encoder_weights=None, reference_rows=TINY_REFERENCE_ROWS[name])
    cfg["resources"] = {"gpu": {"gpu": 0, "cpus_per_task": 1, "mem_mb": 2000, "runtime": 10},
                        "cpu": {"cpus_per_task": 1, "mem_mb": 1000, "runtime": 10}}
    load_config(cfg)  # still a valid config
    return cfg


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CONFIGS))
def test_tiny_variant_runs_end_to_end_on_cpu(name, tiny_ldm, tmp_path):  # noqa: F811
    from dummy_data import write_dummy

    repo = copy_repo(tmp_path / "repo", git=False)
    dummy = tmp_path / "dummy" / name
    write_dummy(name, dummy, categories=[TINY_CATEGORY[name]], size=40)
    cfg = tiny_variant(name, dummy, tiny_ldm)
    (repo / "config" / f"{name}_tiny.yaml").write_text(yaml.safe_dump(cfg))
    run(snakemake("--cores", "2", "--configfile", f"config/{name}_tiny.yaml"), repo, timeout=900,
        env=tool_env(FAST_DATA_DIR=str(tmp_path / "nowhere")))

    exp, cat = repo / "results" / name, TINY_CATEGORY[name]
    fetched = json.loads(next((repo / cfg["paths"]["data"] / "raw" / name).glob("*.json")).read_text())
    assert str(dummy) in json.dumps(fetched)  # copied from datasets.<name>.root, not downloaded
    manifest = pd.read_csv(repo / cfg["paths"]["data"] / "prepared" / name / cat / "manifest.csv")
    assert set(manifest["anomaly_type"]) == {"good", *DUMMY_TYPES[name]}

    # generators on the ldm backbone: the tiny LDM, only the learned parts stored
    for gen in sorted({GENERATOR_OF[m] for m in TINY_METHODS[name] if GENERATOR_OF[m]} | {"base"}):
        spec = json.loads((exp / "generators" / name / cat / gen / "config.json").read_text())
        assert spec["backbone"]["kind"] == "ldm" and spec["backbone"]["pretrained"] == str(tiny_ldm), gen
        assert spec["backbone"]["num_vectors"] == 4
    # the one seed's own set (synthesis.per_seed), else the set the seeds share
    seed_dir = "seed0" if load_config(cfg)["synthesis"]["per_seed"] else ""
    for method in TINY_METHODS[name]:
        synth = pd.read_csv(exp / "synthetic" / name / cat / method / seed_dir / "manifest.csv")
        assert len(synth) == len(DUMMY_TYPES[name]), method  # n_per_type 1 per anomaly type
    diffusion = TINY_METHODS[name][0]
    timing = json.loads((exp / "synthetic" / name / cat / diffusion / seed_dir / "timing.json").read_text())
    assert timing["nfe"] == EXPECTED_NFE[diffusion]

    summary = pd.read_csv(exp / "tables" / "summary.csv")
    rows = TINY_METHODS[name] + TINY_REFERENCE_ROWS[name]
    miou = summary[summary["metric"] == "mIoU"]
    assert sorted(zip(miou["method"], miou["segmenter"])) == sorted(
        (m, s) for m in rows for s in TINY_SEGMENTERS[name])
    assert miou["value"].between(0, 1).all()
    md = (exp / "tables" / "comparison.md").read_text()
    assert f"## {name} / {TINY_SEGMENTERS[name][0]}" in md
    assert md.count("REPORTED (not reproduced)") == (0 if name == "visa" else 1)
    if name != "visa":
        assert f"REPORTED (not reproduced): {name} / segformer" in md
    eff = pd.read_csv(exp / "tables" / "efficiency.csv")
    assert set(eff["method"]) >= set(TINY_METHODS[name])
    assert (exp / "figures" / "sample_grid.png").stat().st_size > 0


# NFE per image of every diffusion method at the configs' settings (T = 1000, AIAS S = 10, t_fine 2;
# PLMS-50 evaluates its first step twice, diffusers' PNDM warm-up)
EXPECTED_NFE = {"fast": 12, "fast-aias50": 52, "fast-nofarm": 12, "fast-ddpm1000": 1000, "fast-ddim50": 50,
                "fast-plms50": 51, "fast-dpmpp20": 20, "anomalydiffusion": 50, "stage": 50, "sard": 50}


@pytest.mark.slow
def test_every_method_samples_the_ldm_backbone_at_the_papers_schedule(tiny_ldm, tmp_path):  # noqa: F811
    """In one process (no per-job start-up): the MVTec AD config's every diffusion method, sampler
    variants included, on the tiny LDM with the config's schedule (T = 1000, scaled-linear betas),
    AIAS and sampler settings: exact pairs, outside-mask pixels untouched, the configured NFE."""
    import argparse

    import numpy as np
    import torch
    from generators import fit_generator

    from dummy_data import write_dummy
    from fast.data.manifest import PreparedCategory, manifest_path
    from fast.commands.prepare import run_prepare
    from fast.methods import SynthesisRequest, build_method

    diffusion = [m for m in PAPER_METHODS if GENERATOR_OF[m]]
    assert sorted(diffusion) == sorted(EXPECTED_NFE)
    dummy = tmp_path / "raw" / "mvtec_ad"
    write_dummy("mvtec_ad", dummy, categories=["bottle"], size=40)
    cfg = load_config(tiny_variant("mvtec_ad", dummy, tiny_ldm, methods=PAPER_METHODS))
    assert cfg["diffusion"]["num_train_timesteps"] == 1000 and cfg["diffusion"]["beta_schedule"] == "scaled_linear"
    run_prepare(argparse.Namespace(dataset="mvtec_ad", root=str(dummy), out=str(tmp_path / "prepared"),
                                   category=["bottle"], resolution=32, seed=0, options=None))
    prepared = PreparedCategory.load(manifest_path(tmp_path / "prepared", "mvtec_ad", "bottle"))
    gens = tmp_path / "generators"
    build_method("base", cfg).fit(prepared, gens / "base")
    for gen in ("fast", "stage", "sard"):
        fit_generator(gen, cfg, prepared, gens / gen, base_dir=gens / "base")
    bg_row, m_row = prepared.rows("normal_train").iloc[0], prepared.rows("gen_train").iloc[0]
    req = SynthesisRequest(prepared.load_image(bg_row), prepared.load_mask(m_row), m_row["anomaly_type"], "b", "m")
    assert req.mask.any()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: threads only contend (DDPM-1000 is 1000 UNet calls)
    try:
        for name in diffusion:
            method = build_method(name, cfg)
            method.load(gens / GENERATOR_OF[name])
            (img, mask, meta), = method.synthesize([req], seed=0)
            assert img.shape == req.background.shape == (32, 32, 3), name
            assert np.array_equal(mask, req.mask), name  # exactly the mask it was asked for
            assert np.array_equal(img[mask == 0], req.background[mask == 0]), name
            assert meta["nfe"] == EXPECTED_NFE[name], (name, meta["nfe"])
    finally:
        torch.set_num_threads(threads)


# -- dependencies ------------------------------------------------------------------------------------

def _pyproject_dependencies() -> list[str]:
    text = (REPO / "pyproject.toml").read_text()
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the [project] dependencies array, read plainly
        block = re.search(r"^dependencies = \[(.*?)^\]", text, flags=re.M | re.S).group(1)
        return re.findall(r'^\s*"([^"]+)"', block, flags=re.M)
    return tomllib.loads(text)["project"]["dependencies"]


def test_package_puts_no_upper_bound_on_torch_and_torchvision():
    from importlib.metadata import requires

    from packaging.requirements import Requirement

    for source, reqs in (("pyproject.toml", _pyproject_dependencies()), ("installed metadata", requires("fast-anomaly"))):
        parsed = {r.name: r for r in map(Requirement, reqs) if not r.marker}
        for name in ("torch", "torchvision"):
            ops = {s.operator for s in parsed[name].specifier}
            assert ops == {">="}, f"{source}: {parsed[name]} must have a lower bound only (a cluster's CUDA build stays)"
        assert "torchmetrics" not in parsed, f"{source}: torchmetrics is not used by the package"


def test_ci_bounds_live_in_a_constraints_file_that_ci_and_the_readme_use():
    from packaging.requirements import Requirement

    lines = [line.split("#")[0].strip() for line in (REPO / ".ci/constraints.txt").read_text().splitlines()]
    pins = {r.name: r for r in map(Requirement, filter(None, lines))}
    assert str(pins["torch"].specifier) == "<=2.14.1" and str(pins["torchvision"].specifier) == "<=0.29.1"
    install = "pip install -q -c .ci/constraints.txt -e '.[workflow,dev]'"
    assert install in (REPO / ".ci/run").read_text()
    readme = (REPO / "README.md").read_text()
    assert "pip install -c .ci/constraints.txt -e '.[workflow,dev]' && pytest" in readme
