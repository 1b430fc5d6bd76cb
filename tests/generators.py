"""Test helper (not a test module): fit a generator the way the workflow does, the shared base
model first for generators that start from it."""

from __future__ import annotations

from pathlib import Path

from fast.methods import BASE_OF, build_method


def fit_generator(name: str, cfg: dict, prepared, out: Path, base_dir: Path | None = None):
    """Train generator ``name`` into ``out`` (its base into ``out``-base unless ``base_dir`` is
    given); returns the fitted method."""
    out = Path(out)
    if BASE_OF.get(name) and base_dir is None:
        base_dir = out.with_name(out.name + "-base")
        if not (base_dir / "model.safetensors").is_file():
            build_method(BASE_OF[name], cfg).fit(prepared, base_dir)
    method = build_method(name, cfg)
    method.fit(prepared, out, base_dir if BASE_OF.get(name) else None)
    return method
