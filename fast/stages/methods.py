"""`fast methods`: the registry, one line per method (fast.methods.listing)."""

from __future__ import annotations

from fast import methods as registry
from fast.methods.listing import describe


def run_methods(args) -> int:
    width = max(len(n) for n in registry.REGISTRY)
    print(f"{'method':<{width}}  {'generator':<16}  description")
    for name in registry.REGISTRY:
        gen = registry.GENERATOR_OF.get(name) or "-"
        print(f"{name:<{width}}  {gen:<16}  {describe(name)}")
    return 0
