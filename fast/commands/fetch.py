"""`fast fetch`: one dataset as published under OUT/<dataset>/, atomically (fast.data.fetch)."""

from __future__ import annotations

import logging
from pathlib import Path

from fast.data.fetch import RECORD, fill_raw_dir
from fast.data.registry import get_format
from fast.io import atomic_dir, write_json

log = logging.getLogger(__name__)


def run_fetch(args) -> int:
    fmt = get_format(args.dataset)
    out = Path(args.out) / fmt.name
    with atomic_dir(out) as tmp:
        record = fill_raw_dir(tmp, args, fmt)
        write_json(tmp / RECORD, record)
    log.info("fetched %s into %s", fmt.name, out)
    return 0
