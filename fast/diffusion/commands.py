"""`fast train` (one generator for one dataset x category) and `fast bench sampling`."""

from __future__ import annotations


def add_parsers(sub) -> None:
    p = sub.add_parser("train", help="train one generator (resumable) for one dataset x category")
    p.add_argument("--config", required=True, help="config YAML path or JSON string")
    p.add_argument("--dataset", required=True)
    p.add_argument("--category", required=True)
    p.add_argument("--generator", required=True, help="base | fast | stage | sard")
    p.add_argument("--base-dir", default=None,
                   help="the category's trained `base` generator (fast, stage and sard start from it)")
    p.add_argument("--prepared", required=True, help="prepared root (holds <dataset>/<category>/manifest.csv)")
    p.add_argument("--out", required=True, help="generator directory (model.safetensors, config.json, train_log.csv)")
    p.add_argument("--steps", type=int, default=None, help="override diffusion.train.steps")
    p.set_defaults(func=_train)

    p = sub.add_parser("bench", help="benchmarks that print measured ratios")
    p.add_argument("what", choices=["sampling"])
    p.add_argument("--config", default=None, help="config (default: the embedded default)")
    p.add_argument("--generator-dir", default=None, help="use this trained `fast` generator instead of training one")
    p.add_argument("--n-images", type=int, default=16,
                   help="images per batch (default 16: the batch `fast synthesize` samples in)")
    p.add_argument("--json", default=None, help="write the results as JSON here")
    p.set_defaults(func=_bench)


def _train(args):
    from fast.stages.train import run_train

    return run_train(args)


def _bench(args):
    from fast.stages.bench import run_bench

    return run_bench(args)
