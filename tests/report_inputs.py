"""The input file lists `fast report` takes, gathered from a test's fake results tree (the layout the
workflow writes; the package itself never globs it). Not a test module."""

from __future__ import annotations

from pathlib import Path


def report_args(results) -> list[str]:
    """``--metrics ... --timings ... --fidelity ...`` for every such file under ``results``."""
    r = Path(results)
    files = {"--metrics": r.glob("segmentation/**/metrics.json"), "--timings": r.glob("synthetic/**/timing.json"),
             "--fidelity": r.glob("fidelity/**/*.csv")}
    return [a for flag, found in files.items() for a in (flag, *map(str, sorted(found)))]
