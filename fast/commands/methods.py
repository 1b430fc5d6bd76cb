"""`fast methods`: the registry grouped (the papers' methods and baselines, FAST's ablations, the
sampler frontier), each departure from a paper said once per group; `fast methods NAME` prints one
method in full (fast.methods.listing)."""

from __future__ import annotations

from fast import methods as registry
from fast.errors import FastError
from fast.methods.listing import describe_parts, group_of

GROUPS = {"methods": "Methods of the papers and baselines",
          "ablations": "Ablations: FAST's one trained model under other samplers or options",
          "frontier": "Frontier: FAST's model under each few-step sampler at matched NFE (fast-<sampler>-nfe<N>)"}


def run_methods(args) -> int:
    names = getattr(args, "names", None) or []
    unknown = [n for n in names if n not in registry.REGISTRY]
    if unknown:
        raise FastError(f"unknown method {unknown[0]!r}; `fast methods` lists them")
    if names:
        for name in names:
            description, departures = describe_parts(name)
            print(f"{name} (generator: {registry.GENERATOR_OF.get(name) or '-'})\n  {description}")
            if departures:
                print(f"  departures from its paper: {departures}")
        return 0
    width = max(len(n) for n in registry.REGISTRY)
    first_said: dict[str, str] = {}    # departure text -> the method it was first printed for
    for group, title in GROUPS.items():
        members = [n for n in registry.REGISTRY if group_of(n) == group]
        print(f"{title}\n{'method':<{width}}  {'generator':<10}  description")
        said = {}
        for name in members:
            description, departures = describe_parts(name)
            gen = registry.GENERATOR_OF.get(name) or "-"
            print(f"{name:<{width}}  {gen:<10}  {description}")
            if departures:
                said.setdefault(departures, []).append(name)
        for departures, who in said.items():
            # a departure shared by a group (every fast-* row samples the one `fast` model) is said once
            label = who[0] if len(who) == 1 else f"all {len(who)} rows above"
            text = f"as `{first_said[departures]}` above" if departures in first_said else departures
            print(f"  departures ({label}): {text}")
            first_said.setdefault(departures, who[0])
        print()
    print("`fast methods NAME` prints one method in full.")
    return 0
