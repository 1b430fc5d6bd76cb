"""`fast <subcommand>`: the only entry point that workflow rules and users call.

Argument parsing and wiring only: each subcommand calls one driver in ``fast.commands``, imported
when the subcommand runs so that ``fast --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import threading
import traceback

from fast import catalog
from fast.errors import FastError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fast", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_generate, _add_data, _add_generators, _add_synthesis, _add_segmentation, _add_report):
        add(sub)
    return parser


def _stage(module: str, function: str):
    """The handler of a subcommand: ``module.function(args)``, imported on call."""
    def handler(args):
        return getattr(importlib.import_module(module), function)(args)
    return handler


def _job_args(p) -> None:
    """--config, --dataset, --category: what every per-category job is called with."""
    p.add_argument("--config", required=True, help="config YAML path or JSON string")
    p.add_argument("--dataset", required=True)
    p.add_argument("--category", required=True)


def _add_generate(sub) -> None:
    """`fast generate`: the whole chain (prepare, train, synthesize) on one folder of your own images."""
    p = sub.add_parser("generate", help="defect/mask pairs on your own images in one command: prepare FOLDER, "
                                         "train (resumable), synthesise, preview.png, exports")
    p.add_argument("folder", metavar="FOLDER",
                   help="one category in the `folder` layout: images/[<type>/], masks/[<type>/], normal/")
    p.add_argument("--out", required=True,
                   help="writes OUT/images/, OUT/masks/, OUT/manifest.csv, OUT/preview.png (+ one folder per --export)")
    p.add_argument("--method", default=catalog.FAST, help="a method of `fast methods` (default: fast)")
    p.add_argument("--config", default=None,
                   help="budgets (config YAML path or JSON string; default: config/folder_example.yaml)")
    p.add_argument("--n-per-type", type=int, default=None, help="pairs per defect type (default: synthesis.n_per_type)")
    p.add_argument("--masks", default=None, metavar="DIR",
                   help="binary PNG masks for the synthetic defects (one subfolder per defect type, or flat "
                        "for the first type), each used in turn; default: the real masks, augmented")
    p.add_argument("--export", action="append", default=None, choices=["smp", "mmseg", "anomalib"],
                   help="also write OUT/<layout>/ for that toolkit (repeatable)")
    p.add_argument("--work", default=None,
                   help="prepared data and generators, reused by a rerun (default: OUT.work beside OUT)")
    p.set_defaults(func=_stage("fast.commands.generate", "run_generate"))


def _add_data(sub) -> None:
    """`fast fetch` and `fast prepare`."""
    p = sub.add_parser("fetch", help="download (or copy from a local path) a dataset, verified, atomically")
    p.add_argument("dataset")
    p.add_argument("--out", default="data/raw", help="raw data root; writes OUT/<dataset>/")
    p.add_argument("--source", default=None,
                   help="local directory or archive, or URL (default: config root, $FAST_DATA_DIR/<dataset>, public URL)")
    p.add_argument("--sha256", default=None, help="expected checksum of the archive")
    p.add_argument("--options", default=None, help="JSON of dataset options (synthetic: sizes and counts)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_stage("fast.commands.fetch", "run_fetch"))

    p = sub.add_parser("prepare", help="split + resize a local copy into DIR/<dataset>/<category>/manifest.csv")
    p.add_argument("dataset")
    p.add_argument("--root", required=True, help="local copy of the dataset as published")
    p.add_argument("--out", required=True, help="prepared root")
    p.add_argument("--category", action="append", default=None, help="repeatable; default: all")
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--options", default=None, help="JSON of dataset options")
    p.set_defaults(func=_stage("fast.commands.prepare", "run_prepare"))


def _add_generators(sub) -> None:
    """`fast train` (one generator for one dataset x category), `fast bench sampling` and `fast bench training`."""
    p = sub.add_parser("train", help="train one generator (resumable) for one dataset x category")
    _job_args(p)
    p.add_argument("--generator", required=True, help="base | fast | stage | sard")
    p.add_argument("--base-dir", default=None,
                   help="the category's trained `base` generator (fast, stage and sard start from it)")
    p.add_argument("--prepared", required=True, help="prepared root (holds <dataset>/<category>/manifest.csv)")
    p.add_argument("--out", required=True, help="generator directory (model.safetensors, config.json, train_log.csv)")
    p.add_argument("--steps", type=int, default=None, help="override diffusion.train.steps")
    p.set_defaults(func=_stage("fast.commands.train", "run_train"))

    bench = sub.add_parser("bench", help="benchmarks: sampling and training speed, peak memory")
    what = bench.add_subparsers(dest="what", required=True, metavar="WHAT")
    p = what.add_parser("sampling", help="images/s, NFE and peak memory of the FAST samplers on one model")
    _bench_args(p)
    p.add_argument("--generator-dir", default=None, help="use this trained `fast` generator instead of training one")
    p.add_argument("--n-images", type=int, default=16,
                   help="images per batch (default 16: the batch `fast synthesize` samples in)")
    p.add_argument("--methods", default=None, help="comma-separated subset of the timed methods (default: all)")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats per method (the best is kept)")
    p.set_defaults(func=_stage("fast.commands.bench", "run_bench"))
    p = what.add_parser("training", help="s/step and peak memory of generator (base, fast, stage, sard) "
                                         "and segmenter training")
    _bench_args(p)
    _training_jobs_args(p)
    p.add_argument("--steps", type=int, default=5, help="timed steps per run, after one warm-up step")
    p.set_defaults(func=_stage("fast.commands.bench", "run_bench_training"))
    p = what.add_parser("memory", help="peak device memory of generator training, sampling and segmenter "
                                       "training, traced without computing (any machine)")
    p.add_argument("--config", default=None, help="config (default: config/config.yaml)")
    p.add_argument("--precision", default=None,
                   help="comma-separated precisions as a CUDA job runs them, e.g. fp32,bf16 (default: the config's)")
    p.add_argument("--batch", default=None,
                   help="comma-separated training batch sizes (default: the configured ones)")
    p.add_argument("--sample-batch", default=None,
                   help="comma-separated sampling batch sizes (default: synthesis.batch_size, else 16)")
    _training_jobs_args(p)
    p.add_argument("--json", default=None, help="write the results as JSON here")
    p.set_defaults(func=_stage("fast.commands.bench_memory", "run_bench_memory"))


def _training_jobs_args(p) -> None:
    """The data and the jobs of `fast bench training` and `fast bench memory`."""
    p.add_argument("--prepared", default=None, help="a prepared root (default: the synthetic dataset, generated)")
    p.add_argument("--dataset", default=None, help="with --prepared")
    p.add_argument("--category", default=None, help="with --prepared; else a synthetic category (default washer)")
    p.add_argument("--generators", default=None, help="comma-separated (default: base,fast,stage,sard; '' none)")
    p.add_argument("--segmenters", default=None,
                   help="comma-separated (default: segmentation.segmenters of the config; '' none)")


def _bench_args(p) -> None:
    """Options of both benchmarks."""
    p.add_argument("--config", default=None, help="config (default: config/config.yaml)")
    p.add_argument("--precision", default=None,
                   help="comma-separated precisions to measure, e.g. fp32,tf32,bf16 (default: the config's)")
    p.add_argument("--batch", default=None,
                   help="comma-separated batch sizes, e.g. 8,64 (default: --n-images for sampling, the configured "
                        "batch sizes for training)")
    p.add_argument("--json", default=None, help="write the results as JSON here")


def _add_synthesis(sub) -> None:
    """`fast methods`, `fast synthesize` and `fast grid`."""
    p = sub.add_parser("methods", help="list the synthesis methods of the registry (grouped; NAME: one in full)")
    p.add_argument("names", nargs="*", metavar="NAME", help="print these methods in full")
    p.set_defaults(func=_stage("fast.commands.methods", "run_methods"))

    p = sub.add_parser("synthesize", help="synthesise n_per_type image+mask pairs per anomaly type")
    _job_args(p)
    p.add_argument("--method", required=True)
    p.add_argument("--prepared", required=True, help="prepared root")
    p.add_argument("--generator-dir", default=None, help="trained generator (diffusion methods)")
    p.add_argument("--out", required=True, help="output directory (images/, masks/, manifest.csv, timing.json)")
    p.add_argument("--seed", type=int, default=None, help="default: config seed")
    p.add_argument("--replicate", type=int, default=None, metavar="SEED",
                   help="draw segmenter seed SEED's own set (synthesis.per_seed), derived from (run seed, SEED); "
                        "default: the one set every segmenter seed shares")
    p.add_argument("--n-per-type", type=int, default=None, help="override synthesis.n_per_type")
    p.set_defaults(func=_stage("fast.commands.synthesize", "run_synthesize"))

    p = sub.add_parser("grid", help="sample grid figure: per category, rows = methods (and the real defects), "
                                     "columns grouped by defect type, the same request down a column; each sample "
                                     "a zoomed window around its mask, the whole image with the mask outlined, "
                                     "and the mask")
    p.add_argument("--synthetic", required=True, nargs="+",
                   help="synthetic output directories (<...>/<dataset>/<category>/<method>[/seed<k>])")
    p.add_argument("--out", required=True, help="PNG path")
    p.add_argument("--per-cell", type=int, default=3, help="samples per method, spread over the defect types (at least 3 in all)")
    p.add_argument("--prepared", default=None,
                   help="prepared root: adds the real gen_train defects as the first row of each category")
    p.set_defaults(func=_stage("fast.commands.grid", "run_grid"))


def _add_segmentation(sub) -> None:
    """`fast train-segmenter` and `fast evaluate`."""
    p = sub.add_parser("train-segmenter", help="train one smp segmenter for one method x seed (fixed budget)")
    _job_args(p)
    p.add_argument("--method", required=True, help="a synthesis method or a reference row (real-fewshot, no-anomalies)")
    p.add_argument("--segmenter", required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--prepared", required=True, help="prepared root")
    p.add_argument("--synthetic", default=None, help="synthetic output directory of the method")
    p.add_argument("--out", required=True, help="writes OUT/model.safetensors + OUT/train_config.json")
    p.set_defaults(func=_stage("fast.commands.train_segmenter", "run_train_segmenter"))

    p = sub.add_parser("evaluate", help="evaluate a trained segmenter on seg_test + normal_test")
    _job_args(p)
    p.add_argument("--prepared", required=True)
    p.add_argument("--model", required=True, help="directory written by train-segmenter")
    p.add_argument("--out", required=True, help="writes OUT/metrics.json + OUT/per_image.csv")
    p.set_defaults(func=_stage("fast.commands.evaluate", "run_evaluate"))


def _add_report(sub) -> None:
    """`fast report` (tables and figures of one experiment) and `fast fidelity` (synthetic vs real defects)."""
    p = sub.add_parser("report", help="aggregate metrics.json files into tables and figures")
    p.add_argument("--config", required=True)
    p.add_argument("--results", required=True,
                   help="experiment directory: tables/ and figures/ are written under it (or under --out)")
    p.add_argument("--reference", default=None, help="CSV of published numbers (default: shipped copy)")
    p.add_argument("--out", default=None, help="default: --results")
    p.add_argument("--metrics", nargs="+", required=True, metavar="FILE",
                   help="the metrics.json files of `fast evaluate` (the per_image.csv beside each is read too)")
    p.add_argument("--timings", nargs="*", default=[], metavar="FILE", help="the timing.json files of `fast synthesize`")
    p.add_argument("--fidelity", nargs="*", default=[], metavar="FILE", help="the CSV files of `fast fidelity`")
    p.set_defaults(func=_stage("fast.commands.report", "run_report"))

    p = sub.add_parser("fidelity", help="in-mask statistics of synthetic vs real gen_train defects, per anomaly type")
    _job_args(p)
    p.add_argument("--prepared", required=True, help="prepared root (holds <dataset>/<category>/manifest.csv)")
    p.add_argument("--method", required=True, help="the synthesis method that wrote --synthetic")
    p.add_argument("--synthetic", required=True, nargs="+",
                   help="that method's `fast synthesize --out` directories (one per segmenter seed "
                        "with synthesis.per_seed): their pairs are pooled")
    p.add_argument("--out", required=True, help="CSV path (one row per anomaly type)")
    p.set_defaults(func=_stage("fast.commands.fidelity", "run_fidelity"))


def fetch_cli_args(entry: dict) -> str:
    """Shell-quoted `fast fetch` options for one ``datasets.<name>`` config entry (used by
    workflow/rules/data.smk): a local root or URL, a pinned checksum, dataset options."""
    import json
    import shlex

    args = []
    if entry.get("root"):
        args += ["--source", entry["root"]]
    elif entry.get("url"):
        args += ["--source", entry["url"]]
    if entry.get("sha256"):
        args += ["--sha256", entry["sha256"]]
    if entry.get("options"):
        args += ["--options", json.dumps(entry["options"], sort_keys=True)]
    return " ".join(shlex.quote(a) for a in args)


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that every ``finally`` (the temporaries of
    fast.io.atomic_dir/atomic_path) runs, as it does for SIGINT."""


def _on_sigterm(signum, frame):
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        result = args.func(args)
    except FastError as exc:
        print(f"fast {args.command}: error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except OSError as exc:  # a fault of the machine (disk full, read-only, ...), not a bug: one line
        from fast.io import os_error_message

        if args.verbose:  # ... unless asked: an OSError can also be a bug, whose traceback is needed
            traceback.print_exc()
        print(f"fast {args.command}: error: {_one_line(os_error_message(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fast {args.command}: interrupted; partial outputs removed", file=sys.stderr)
        return 130
    except Terminated:
        print(f"fast {args.command}: terminated (SIGTERM); partial outputs removed", file=sys.stderr)
        return 128 + signal.SIGTERM
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return int(result or 0)


def _one_line(text: str) -> str:
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
