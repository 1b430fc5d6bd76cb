"""Paired-bootstrap differences between any two rows of an experiment's table (fast.report.stats,
the same resamples and definition as tables/differences.csv), e.g. each method against defect-paste:

  python scripts/pairwise_differences.py results/magnetic_tile/segmentation \\
      --pairs fast:defect-paste fast-plms50:defect-paste fast:fast-nofarm

Prints one line per pair and metric: difference in points, 95 % interval, * when it excludes 0, ^ when
the seeds disagree, ~ when it is smaller in size than the pair's own minimal detectable difference
(80 % power of a paired t-test over its seeds, fast.report.stats; n/a with one seed), the range of the
per-seed differences and that MDD.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fast.report.stats import METRICS, differences, load_per_image
from fast.report.tables import fmt_diff


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("segmentation", help="directory holding the per_image.csv files (searched recursively)")
    ap.add_argument("--pairs", nargs="+", required=True, metavar="METHOD:OTHER")
    ap.add_argument("--metric", choices=METRICS, default="mIoU")
    args = ap.parse_args()
    compare: dict[str, list[str]] = {}
    for pair in args.pairs:
        method, _, other = pair.partition(":")
        compare.setdefault(method, []).append(other)
    per_image = load_per_image(sorted(Path(args.segmentation).rglob("per_image.csv")))
    diffs = differences(per_image, compare=compare)
    for r in diffs[(diffs.metric == args.metric) & (diffs.category == "average")].itertuples():
        mdd = "n/a (one seed)" if r.n_seeds < 2 else f"{100 * r.mdd:.1f}"
        print(f"{r.dataset} {r.segmenter} {args.metric}: {r.method} - {r.reference} = "
              f"{fmt_diff(r._asdict(), r.mdd)[0]} ({r.n_seeds} seeds, per seed {100 * r.seed_lo:+.1f} to "
              f"{100 * r.seed_hi:+.1f}, MDD {mdd}; {r.n_images} test images)")


if __name__ == "__main__":
    main()
