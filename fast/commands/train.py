"""`fast train`: one generator for one dataset x category (resumable; fast.diffusion.train)."""

from __future__ import annotations

from pathlib import Path

from fast.data.manifest import PreparedCategory
from fast.errors import FastError
from fast.io import ensure_dir


def run_train(args) -> int:
    """`fast train`: one generator for one dataset x category (resumable)."""
    from fast.config import load_config
    from fast.data.manifest import manifest_path
    from fast.methods import BASE_OF, build_method

    cfg = load_config(args.config)
    if args.steps is not None:
        if args.steps < 1:
            raise FastError("--steps must be >= 1")
        cfg["diffusion"]["train"]["steps"] = int(args.steps)
    if args.generator not in BASE_OF:
        raise FastError(f"--generator {args.generator!r} is not a trainable generator; expected one of {list(BASE_OF)}")
    base_dir = Path(args.base_dir) if getattr(args, "base_dir", None) else None
    needs = BASE_OF[args.generator]
    if needs and base_dir is None:
        raise FastError(f"--generator {args.generator} starts from the category's {needs!r} generator: pass "
                        f"--base-dir (train it first: `fast train --generator {needs}`)")
    if not needs and base_dir is not None:
        raise FastError(f"--generator {args.generator} trains from scratch; drop --base-dir")
    if base_dir is not None and not (base_dir / "model.safetensors").is_file():
        raise FastError(f"--base-dir {base_dir}: no trained generator there (model.safetensors missing)")
    prepared = PreparedCategory.load(manifest_path(args.prepared, args.dataset, args.category))
    ensure_dir(Path(args.out), "--out")  # a path that cannot be written is refused before training
    method = build_method(args.generator, cfg)
    method.fit(prepared, Path(args.out), base_dir)
    return 0
