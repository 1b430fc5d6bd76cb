"""`fast fidelity`: in-mask statistics of synthetic vs real defects, one CSV (fast.fidelity)."""

from __future__ import annotations


from fast.data.manifest import PreparedCategory, manifest_path
from fast.fidelity import fidelity_rows, synthetic_table


def run_fidelity(args) -> int:
    from fast.config import load_config
    from fast.io import atomic_path

    load_config(args.config)  # a bad config is the same one-line error as in every other subcommand
    # one directory, or one per segmenter seed (synthesis.per_seed): pooled into one sample
    dirs = [args.synthetic] if isinstance(args.synthetic, str) else list(args.synthetic)
    synthetic = synthetic_table(dirs)  # before the prepared data: the likelier mistake
    cat = PreparedCategory.load(manifest_path(args.prepared, args.dataset, args.category))
    method = args.method
    table = fidelity_rows(dirs, cat, args.dataset, args.category, method, synthetic)
    with atomic_path(args.out) as tmp:
        table.to_csv(tmp, index=False)
    for r in table.itertuples(index=False):
        print(f"{args.dataset}/{args.category} {method} {r.type}: n={r.n} (real {r.n_real}) "
              f"delta syn/real {r.delta_syn:.1f}/{r.delta_real:.1f} (ratio {r.ratio:.2f}), "
              f"contrast {r.contrast_syn:.1f}/{r.contrast_real:.1f}, grad {r.grad_syn:.1f}/{r.grad_real:.1f}, "
              f"W1 {r.w1:.2f}")
    return 0
