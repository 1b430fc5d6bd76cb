"""What `fast methods` prints of each method: its description, its departures from its paper and its
group, read from its catalog record (fast.catalog), so listing imports no method module; a method
whose module is not written yet is listed as such."""

from __future__ import annotations

import importlib.util

from fast import catalog


def describe_parts(name: str) -> tuple[str, str]:
    """(description, departures from its paper) of method ``name``."""
    record = catalog.record(name)
    module = record.factory.split(":")[0]
    if importlib.util.find_spec(module) is None:
        return "(not implemented yet: module %s missing)" % module, ""
    return record.description or "(no description)", record.departures


def group_of(name: str) -> str:
    """The listing group: the papers' methods and baselines, ablations of FAST, or the frontier."""
    return catalog.record(name).group
