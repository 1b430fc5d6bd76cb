"""`fast methods`, `fast synthesize` and `fast grid`."""

from __future__ import annotations


def add_parsers(sub) -> None:
    p = sub.add_parser("methods", help="list the synthesis methods of the registry")
    p.set_defaults(func=_methods)

    p = sub.add_parser("synthesize", help="synthesise n_per_type image+mask pairs per anomaly type")
    p.add_argument("--config", required=True, help="config YAML path or JSON string")
    p.add_argument("--dataset", required=True)
    p.add_argument("--category", required=True)
    p.add_argument("--method", required=True)
    p.add_argument("--prepared", required=True, help="prepared root")
    p.add_argument("--generator-dir", default=None, help="trained generator (diffusion methods)")
    p.add_argument("--out", required=True, help="output directory (images/, masks/, manifest.csv, timing.json)")
    p.add_argument("--seed", type=int, default=None, help="default: config seed")
    p.add_argument("--n-per-type", type=int, default=None, help="override synthesis.n_per_type")
    p.set_defaults(func=_synthesize)

    p = sub.add_parser("grid", help="sample grid figure: per category, rows = methods (and the real defects), "
                                     "columns = samples, each a zoomed window around its mask beside the mask")
    p.add_argument("--synthetic", required=True, nargs="+",
                   help="synthetic output directories (<...>/<dataset>/<category>/<method>)")
    p.add_argument("--out", required=True, help="PNG path")
    p.add_argument("--per-cell", type=int, default=3, help="samples per method (at least 3 are shown)")
    p.add_argument("--prepared", default=None,
                   help="prepared root: adds the real gen_train defects as the first row of each category")
    p.set_defaults(func=_grid)


def _methods(args):
    from fast.methods.listing import run_methods

    return run_methods(args)


def _synthesize(args):
    from fast.stages.synthesize import run_synthesize

    return run_synthesize(args)


def _grid(args):
    from fast.report.grid import run_grid

    return run_grid(args)
