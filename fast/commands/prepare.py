"""`fast prepare`: split and resize a local copy, all categories or none (fast.data.prepare)."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from fast.data.prepare import parse_options, prepare_category
from fast.data.registry import check_category, get_format, resolve_options
from fast.errors import FastError
from fast.io import atomic_dir

log = logging.getLogger(__name__)


def run_prepare(args) -> int:
    fmt = get_format(args.dataset)
    options = resolve_options(fmt, parse_options(getattr(args, "options", None)))
    root = Path(args.root)
    if not root.is_dir():
        raise FastError(f"--root {root}: directory not found (run `fast fetch {fmt.name}` first)")
    resolution = int(args.resolution)
    if not 8 <= resolution <= 4096:
        raise FastError(f"--resolution {resolution}: must be between 8 and 4096")
    categories = list(dict.fromkeys(args.category or fmt.categories(root, options)))
    if not categories:
        raise FastError(f"dataset {fmt.name!r}: no categories found under {root}")
    for c in categories:
        check_category(fmt, root, c, options)
    out = Path(args.out) / fmt.name
    # all categories complete, or none renamed into place
    summaries = []
    with contextlib.ExitStack() as stack:
        tmps = {c: stack.enter_context(atomic_dir(out / c)) for c in categories}
        for c in categories:
            summaries.append(prepare_category(fmt, root, c, tmps[c], resolution, int(args.seed), options))
    for s in summaries:
        log.info("prepared %s/%s: %s", fmt.name, s["category"], s["counts"])
    return 0
