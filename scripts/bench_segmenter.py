#!/usr/bin/env python
"""Seconds per phase of one segmenter row: `fast train-segmenter` + `fast evaluate` of a reference
row (no generator needed), each in its own process with OMP_NUM_THREADS=1 as the workflow runs
them, and, with --baseline REV, the same jobs on the code of git revision REV (interleaved, same
machine) with the ratio current/baseline per phase and a byte comparison of their outputs.

    python scripts/bench_segmenter.py                          # config/magnetic_tile.yaml, 400 steps
    python scripts/bench_segmenter.py --steps 40 --baseline HEAD~3 --repeats 2

The prepared data must exist (<paths.data>/prepared of the config, or --prepared), e.g.
    FAST_DATA_DIR=/path/to/datasets snakemake --cores 1 --configfile config/magnetic_tile.yaml \\
        --until prepare
Phases: startup + imports (process start until the stage module is imported), data (decoding the
prepared splits; with the decoded-image cache warm unless --cache off/cold), train steps,
recalibration (BatchNorm statistics on whole images), inference, metrics, and `other` (config,
model build/load/save, output files). Times are wall seconds; `cpu` is the job's user + system
time, less disturbed by other load on a shared machine. Compare ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
TRAIN_PHASES = ["startup + imports", "data", "train steps", "recalibration", "other"]
EVAL_PHASES = ["startup + imports", "data", "inference", "metrics", "other"]
OUTPUTS = ["model.safetensors", "metrics.json", "per_image.csv"]


# ---------------------------------------------------------------- child: one job, timed
class Timers:
    """Wall seconds spent inside wrapped functions, per phase."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def wrap(self, module, name: str, phase: str) -> None:
        if not hasattr(module, name):      # e.g. evaluate_maps exists in newer trees only
            return
        fn = getattr(module, name)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - start
        setattr(module, name, timed)


def child(job: str, spawned: float, tree: str, cli_args: list[str]) -> dict:
    """Run one `fast` job from ``tree`` in this process, its phases timed (printed as JSON)."""
    import importlib
    import resource

    sys.path.insert(0, tree)
    stage = importlib.import_module("fast.commands.train_segmenter" if job == "train" else "fast.commands.evaluate")
    imported = time.time()
    if not Path(stage.__file__).resolve().is_relative_to(Path(tree).resolve()):
        raise SystemExit(f"imported {stage.__file__}, not the tree {tree}")
    import fast.cli
    import fast.segmentation.train as seg_train

    timers = Timers()
    if job == "train":
        timers.wrap(stage, "training_pools", "data")
        timers.wrap(stage, "train_segmenter", "train")
        timers.wrap(seg_train, "recalibrate_batchnorm", "recalibration")
    else:
        timers.wrap(stage, "evaluation_set", "data")
        timers.wrap(stage, "predict", "inference")
        for name in ("evaluate_maps", "segmentation_metrics", "per_image_stats"):
            timers.wrap(stage, name, "metrics")
    start = time.time()
    rc = fast.cli.main([job if job == "evaluate" else "train-segmenter", *cli_args])
    end = time.time()
    if rc:
        raise SystemExit(f"fast {job} failed ({rc})")
    s = timers.seconds
    phases = {"startup + imports": imported - spawned, "data": s.get("data", 0.0)}
    if job == "train":
        phases["train steps"] = s["train"] - s.get("recalibration", 0.0)
        phases["recalibration"] = s.get("recalibration", 0.0)
    else:
        phases["inference"], phases["metrics"] = s["inference"], s["metrics"]
    phases["other"] = (end - start) - sum(v for k, v in phases.items() if k != "startup + imports")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"phases": phases, "wall": end - spawned, "cpu": usage.ru_utime + usage.ru_stime,
            "page_faults": usage.ru_minflt, "max_rss_mb": usage.ru_maxrss / 1024}


# ---------------------------------------------------------------- parent: jobs, repeats, table
def job_config(cfg: dict, args) -> str:
    """The jobs' view of the config as the workflow builds it (workflow/rules/common.smk,
    rule_config): the one dataset and category, a placeholder method (a reference row reads none;
    the schema requires one), the segmentation settings with this segmenter and seed. Leaving the
    generator and synthesis sections out also lets an older revision, whose schema may not know a
    newer key there, accept it."""
    view = {"experiment": cfg["experiment"], "methods": ["fast"],
            "datasets": {args.dataset: {**cfg["datasets"][args.dataset], "categories": [args.category]}},
            "segmentation": {**cfg.get("segmentation", {}), "segmenters": [args.segmenter],
                             "seeds": [args.seed], "reference_rows": []}}
    view.update({k: cfg[k] for k in ("resolution", "device") if k in cfg})
    if args.steps is not None:
        view["segmentation"]["steps"] = args.steps
    return json.dumps(view, sort_keys=True)


def export_tree(rev: str, dest: Path) -> Path:
    """The `fast` package of git revision ``rev`` under ``dest``."""
    archive = dest / "tree.tar"
    with open(archive, "wb") as f:
        subprocess.run(["git", "-C", str(REPO), "archive", rev, "fast"], stdout=f, check=True)
    with tarfile.open(archive) as t:
        t.extractall(dest / "tree", filter="data")
    return dest / "tree"


def run_job(job: str, tree: Path, cli_args: list[str], env: dict, log: Path) -> dict:
    spawned = time.time()
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", job, str(spawned), str(tree), *cli_args]
    with open(log, "w") as f:
        done = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=f, text=True, cwd=log.parent)
    if done.returncode:
        raise SystemExit(f"{job} job failed; log: {log}\n" + log.read_text()[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_row(tree: Path, out: Path, args, cfg_json: str, env: dict) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    common = ["--config", cfg_json, "--dataset", args.dataset, "--category", args.category,
              "--prepared", str(args.prepared)]
    train = run_job("train", tree, [*common, "--method", args.method, "--segmenter", args.segmenter,
                                    "--seed", str(args.seed), "--out", str(out)], env, out / "train.log")
    evaluate = run_job("evaluate", tree, [*common, "--model", str(out), "--out", str(out)], env, out / "evaluate.log")
    return {"train": train, "evaluate": evaluate}


def warm_cache(tree: Path, args, env: dict) -> None:
    """Decode the training and test splits once into the cache (what the first job of a run does)."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); "
            "from fast.data.manifest import PreparedCategory, manifest_path; "
            "from fast.segmentation.data import prepared_pool, TEST_SPLITS; "
            "cat = PreparedCategory.load(manifest_path(sys.argv[2], sys.argv[3], sys.argv[4])); "
            "[prepared_pool(cat, s, int(sys.argv[5]), cat.channels) "
            " for s in (('normal_train',), ('gen_train',), TEST_SPLITS)]")
    subprocess.run([sys.executable, "-c", code, str(tree), str(args.prepared), args.dataset, args.category,
                    str(args.resolution)], env=env, check=True)


def median(runs: list[dict], job: str, key: str, phase: str | None = None) -> float:
    return statistics.median(r[job]["phases"][phase] if phase else r[job][key] for r in runs)


def print_table(results: dict[str, list[dict]]) -> None:
    names = list(results)
    header = f"{'job':9s} {'phase':18s}" + "".join(f"{n + ' s':>12s}" for n in names)
    if len(names) == 2:
        header += f"{'ratio':>8s}"
    print(header)
    for job, phases in (("train", TRAIN_PHASES), ("evaluate", EVAL_PHASES)):
        rows = [(p, {n: median(results[n], job, "", p) for n in names}) for p in phases]
        rows += [(k, {n: median(results[n], job, k) for n in names}) for k in ("wall", "cpu")]
        for phase, values in rows:
            line = f"{job:9s} {phase:18s}" + "".join(f"{values[n]:12.2f}" for n in names)
            if len(names) == 2:
                base, cur = values[names[0]], values[names[1]]
                line += f"{cur / base:8.2f}" if base > 0.005 else f"{'':8s}"
            print(line)
    both = {n: statistics.median(r["train"]["wall"] + r["evaluate"]["wall"] for r in results[n]) for n in names}
    print(f"{'row':9s} {'wall (both jobs)':18s}" + "".join(f"{both[n]:12.2f}" for n in names)
          + (f"{both[names[1]] / both[names[0]]:8.2f}" if len(names) == 2 else ""))
    for n in names:
        faults = statistics.median(r["train"]["page_faults"] + r["evaluate"]["page_faults"] for r in results[n])
        rss = max(max(r["train"]["max_rss_mb"], r["evaluate"]["max_rss_mb"]) for r in results[n])
        print(f"{n}: {faults:,.0f} page faults per row (both jobs), peak RSS {rss:.0f} MB")


def compare_outputs(a: Path, b: Path) -> list[str]:
    """The output files whose bytes differ between two runs of the row."""
    return [f for f in OUTPUTS if (a / f).read_bytes() != (b / f).read_bytes()]


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, default=REPO / "config" / "magnetic_tile.yaml")
    p.add_argument("--prepared", type=Path, default=None, help="prepared root (default: <paths.data>/prepared)")
    p.add_argument("--dataset", default=None, help="default: the config's first dataset")
    p.add_argument("--category", default=None, help="default: that dataset's first category")
    p.add_argument("--method", default="real-fewshot", choices=["real-fewshot", "no-anomalies"])
    p.add_argument("--segmenter", default=None, help="default: the config's first segmenter")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None, help="override segmentation.steps (a quick run)")
    p.add_argument("--baseline", default=None, metavar="REV", help="also time the code of this git revision")
    p.add_argument("--repeats", type=int, default=1, help="rows per version, interleaved; medians are printed")
    p.add_argument("--cache", choices=["warm", "cold", "off"], default="warm",
                   help="decoded-image cache of the current code: filled before timing (warm, as for all "
                        "but the first job of a run), empty (cold), or not used (off)")
    p.add_argument("--keep", type=Path, default=None, help="keep the outputs and logs here")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    cfg = yaml.safe_load(args.config.read_text())
    args.dataset = args.dataset or next(iter(cfg["datasets"]))
    args.category = args.category or cfg["datasets"][args.dataset]["categories"][0]
    args.segmenter = args.segmenter or cfg.get("segmentation", {}).get("segmenters", ["segformer"])[0]
    args.resolution = cfg["resolution"]
    args.prepared = (args.prepared or REPO / cfg.get("paths", {}).get("data", "data") / "prepared").resolve()
    cfg_json = job_config(cfg, args)
    manifest = args.prepared / args.dataset / args.category / "manifest.csv"
    if not manifest.is_file():
        raise SystemExit(f"{manifest} not found: prepare the data first (see --help)")
    with tempfile.TemporaryDirectory(prefix="bench_segmenter-") as tmp:
        tmp = Path(args.keep or tmp).resolve()
        tmp.mkdir(parents=True, exist_ok=True)
        trees = {"baseline": export_tree(args.baseline, tmp)} if args.baseline else {}
        trees["current"] = REPO
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
        env.pop("FAST_CACHE_DIR", None)
        envs = {name: env for name in trees}
        if args.cache != "off":
            envs["current"] = {**env, "FAST_CACHE_DIR": str(tmp / "cache")}
        if args.cache == "warm":
            warm_cache(REPO, args, envs["current"])
        results: dict[str, list[dict]] = {name: [] for name in trees}
        for r in range(args.repeats):
            order = list(trees) if r % 2 == 0 else list(reversed(trees))   # no version always first
            for name in order:
                tree = trees[name]
                if args.cache == "cold" and name == "current":
                    for f in (tmp / "cache").glob("*.npz"):
                        f.unlink()
                results[name].append(run_row(tree, tmp / f"{name}{r}", args, cfg_json, envs[name]))
                print(f"repeat {r} {name}: train {results[name][-1]['train']['wall']:.1f} s, "
                      f"evaluate {results[name][-1]['evaluate']['wall']:.1f} s", flush=True)
        steps = json.loads(cfg_json)["segmentation"].get("steps", "default")
        print(f"\n{args.dataset}/{args.category} {args.method} {args.segmenter} seed {args.seed}, {steps} steps, "
              f"cache {args.cache}, {args.repeats} repeat(s), medians:")
        print_table(results)
        if args.baseline:
            differ = compare_outputs(tmp / "baseline0", tmp / "current0")
            print("outputs (" + ", ".join(OUTPUTS) + "): " +
                  ("byte-identical to the baseline" if not differ else "DIFFERENT: " + ", ".join(differ)))
    return 1 if args.baseline and differ else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        job, spawned, tree, *rest = sys.argv[2:]
        print(json.dumps(child(job, float(spawned), tree, rest)))
    else:
        sys.exit(main())
