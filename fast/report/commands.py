"""`fast report` (tables and figures of one experiment) and `fast fidelity` (synthetic vs real defects)."""

from __future__ import annotations


def add_parsers(sub) -> None:
    p = sub.add_parser("report", help="aggregate metrics.json files into tables and figures")
    p.add_argument("--config", required=True)
    p.add_argument("--results", required=True, help="experiment directory results/<experiment>")
    p.add_argument("--reference", default=None, help="CSV of published numbers (default: shipped copy)")
    p.add_argument("--out", default=None, help="default: --results")
    for kind, what in (("metrics", "metrics.json (per_image.csv beside each is read too)"),
                       ("timings", "synthetic timing.json"), ("fidelity", "fidelity CSV")):
        p.add_argument(f"--{kind}", nargs="*", default=None, metavar="FILE",
                       help=f"the {what} files to aggregate (default: those of the configured "
                            f"experiment under --results)")
    p.set_defaults(func=_report)

    p = sub.add_parser("fidelity", help="in-mask statistics of synthetic vs real gen_train defects, per anomaly type")
    p.add_argument("--config", required=True, help="config YAML path or JSON string")
    p.add_argument("--prepared", required=True, help="prepared root (holds <dataset>/<category>/manifest.csv)")
    p.add_argument("--dataset", required=True)
    p.add_argument("--category", required=True)
    p.add_argument("--synthetic", required=True, help="synthetic directory <...>/<dataset>/<category>/<method>")
    p.add_argument("--out", required=True, help="CSV path (one row per anomaly type)")
    p.set_defaults(func=_fidelity)


def _report(args):
    from fast.report.build import run_report

    return run_report(args)


def _fidelity(args):
    from fast.fidelity import run_fidelity

    return run_fidelity(args)
