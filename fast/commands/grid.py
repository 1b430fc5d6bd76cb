"""`fast grid`: the sample grid PNG (fast.report.grid)."""

from __future__ import annotations

import logging
from pathlib import Path

from fast.errors import FastError
from fast.io import atomic_path
from fast.report.grid import MIN_SAMPLES, collect, render

log = logging.getLogger(__name__)


def run_grid(args) -> int:
    if args.per_cell < 1:
        raise FastError(f"--per-cell must be >= 1, got {args.per_cell}")
    n = max(MIN_SAMPLES, args.per_cell)
    blocks = collect(args.synthetic, n, getattr(args, "prepared", None))
    img = render(blocks, n)
    out = Path(args.out)
    with atomic_path(out) as tmp:
        img.save(tmp, format="png")
    log.info("grid: %d categories x %d rows x %d samples -> %s", len(blocks), len(blocks[0].rows), n, out)
    return 0
