"""Training curves of every generator of an experiment and whether each one flattened.

    python scripts/own_part_curves.py results/<experiment>/generators OUTDIR

reads ``<generators>/<dataset>/<category>/<generator>/train_log.csv`` (the shared base model and each
method's own part: FARM + adaptor, STAGE's adapters, SARD's UNet + discriminator) and writes to OUTDIR:
- ``<dataset>.<category>.<generator>.train_log.csv``: copies of the logs (the published record);
- ``convergence.csv``: per generator and in-mask loss column (``*_in``: the squared error inside
  the defect masks), the mean over the first and the last 10 % of the steps and ``late_drop``, how
  much lower the last fifth of the steps is than the fifth before it, relative to the last fifth
  ((mean of 60-80 % - mean of 80-100 %) / mean of 80-100 %); a curve counts as flattened when
  late_drop < 0.05 or the drop is within two standard errors of the two means (a noisy plateau:
  a method that starts from the shared base model can start near its floor);
- ``own_part_curves.png``: each generator's in-mask losses, smoothed over 5 % of its steps.
Exits 1 when a curve did not flatten, so a budget that is too short is seen before a table is read.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

FLAT = 0.05


def late_drop(values: np.ndarray) -> tuple[float, bool]:
    """(relative drop from the 4th to the 5th fifth of the steps, whether the curve flattened)."""
    n = len(values)
    a, b = values[int(0.6 * n):int(0.8 * n)], values[int(0.8 * n):]
    drop = float(a.mean() - b.mean())
    se = float(np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))) if min(len(a), len(b)) > 1 else 0.0
    rel = drop / float(b.mean())
    return rel, bool(rel < FLAT or drop <= 2 * se)


def convergence(logs: dict[str, pd.DataFrame]) -> pd.DataFrame:
    rows = []
    for name, log in logs.items():
        for col in [c for c in log.columns if c.endswith("_in")]:
            v = log[col].to_numpy(float)
            k = max(1, len(v) // 10)
            rel, flat = late_drop(v)
            rows.append({"generator": name, "column": col, "steps": len(v), "first_10pct": float(v[:k].mean()),
                         "last_10pct": float(v[-k:].mean()), "late_drop": rel, "flattened": flat})
    return pd.DataFrame(rows)


def plot(logs: dict[str, pd.DataFrame], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(logs), figsize=(3.6 * len(logs), 3.2), squeeze=False)
    for ax, (name, log) in zip(axes[0], logs.items()):
        window = max(1, len(log) // 20)
        for col in [c for c in log.columns if c.endswith("_in")]:
            ax.plot(log["step"], log[col].rolling(window, min_periods=1).mean(), label=col)
        ax.set_title(name.split(".")[-1], fontsize=10)
        ax.set_xlabel("optimiser step")
        ax.set_yscale("log")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("in-mask loss (smoothed)")
    fig.tight_layout()
    fig.savefig(out, dpi=130)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("generators", type=Path)
    ap.add_argument("out", type=Path)
    a = ap.parse_args(argv)
    paths = sorted(a.generators.glob("*/*/*/train_log.csv"))
    if not paths:
        print(f"{a.generators}: no */*/*/train_log.csv (train the generators first)", file=sys.stderr)
        return 2
    a.out.mkdir(parents=True, exist_ok=True)
    logs = {}
    for p in paths:
        name = ".".join(p.parent.relative_to(a.generators).parts)
        shutil.copyfile(p, a.out / f"{name}.train_log.csv")
        logs[name] = pd.read_csv(p)
    table = convergence(logs)
    table.to_csv(a.out / "convergence.csv", index=False, float_format="%.6g")
    plot(logs, a.out / "own_part_curves.png")
    print(table.to_string(index=False))
    return 0 if table["flattened"].all() else 1


if __name__ == "__main__":
    sys.exit(main())
