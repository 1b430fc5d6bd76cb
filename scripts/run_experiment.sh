#!/usr/bin/env bash
# Run one experiment end to end and publish its results for the repository (not a test):
#   scripts/run_experiment.sh config/magnetic_tile.yaml docs/results/magnetic_tile
# Runs `snakemake --cores $CORES --configfile CONFIG` in this checkout (data and results under its
# paths), then copies into OUTDIR: the tables (comparison.md/.tex, summary.csv with every per-seed
# number, differences.csv, per_type.csv, fidelity.csv, efficiency.csv, summary.json), the figures and the sample
# grid, training/ (every generator's train_log.csv, in-mask loss curves and convergence.csv:
# scripts/own_part_curves.py), methods.txt (`fast methods`: every method's departures), per_image/
# (each run's per_image.csv + metrics.json, the evaluation layout: any pairwise
# difference can be recomputed from the published files with scripts/pairwise_differences.py
# OUTDIR/per_image), the exact config, and run.json (commit, machine, cores, wall time, whether each
# segmenter seed trained on a synthetic set of its own: synthesis.per_seed) + rule_times.csv (per
# rule: jobs, total and longest seconds, from Snakemake's benchmark files).
set -euo pipefail
CONFIG=${1:?usage: run_experiment.sh CONFIG OUTDIR}
OUT=${2:?usage: run_experiment.sh CONFIG OUTDIR}
CORES=${CORES:-2}
cd "$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)"
command -v snakemake >/dev/null || { echo "run_experiment: error: snakemake not on PATH (activate the venv)" >&2; exit 1; }
EXP=$(python3 -c "import yaml,sys; print(yaml.safe_load(open(sys.argv[1]))['experiment'])" "$CONFIG")
RESULTS=results/$EXP
LOG=$(mktemp /tmp/run_experiment.XXXXXX.log)
start=$(date +%s.%N)
if ! snakemake --cores "$CORES" --configfile "$CONFIG" > "$LOG" 2>&1; then
  tail -n 40 "$LOG" >&2
  echo "run_experiment: error: the run failed (full log: $LOG)" >&2
  exit 1
fi
end=$(date +%s.%N)
mkdir -p "$OUT"
cp "$RESULTS"/tables/{comparison.md,comparison.tex,summary.csv,summary.json,differences.csv,per_type.csv,fidelity.csv,efficiency.csv} "$OUT"/
rm -rf "$OUT/figures" && cp -r "$RESULTS/figures" "$OUT/figures"
find "$OUT/figures" -name .snakemake_timestamp -delete   # Snakemake's directory() marker
rm -rf "$OUT/per_image"
(cd "$RESULTS/segmentation" && find . -name per_image.csv -o -name metrics.json) | while read -r f; do
  mkdir -p "$OUT/per_image/$(dirname "$f")" && cp "$RESULTS/segmentation/$f" "$OUT/per_image/$f"
done
cp "$CONFIG" "$OUT/config.yaml"
# every generator's training curves and whether each flattened (exit 1: a budget too short, said here)
rm -rf "$OUT/training"
if [ -d "$RESULTS/generators" ] && ! python3 scripts/own_part_curves.py "$RESULTS/generators" "$OUT/training" > /dev/null; then
  echo "run_experiment: warning: a generator's in-mask loss was still falling (see $OUT/training/convergence.csv)" >&2
fi
# what exactly was compared: each method's description and its departures from its paper
fast methods > "$OUT/methods.txt"
python3 - "$RESULTS/benchmarks" "$OUT" "$start" "$end" "$CONFIG" "$CORES" <<'PY'
import csv, json, os, platform, subprocess, sys
from collections import defaultdict
from pathlib import Path

bench, out, start, end, config, cores = Path(sys.argv[1]), Path(sys.argv[2]), *map(float, sys.argv[3:5]), *sys.argv[5:]
rules = defaultdict(list)
for tsv in bench.rglob("*.tsv"):
    rule = tsv.relative_to(bench).parts[0]
    with tsv.open() as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if rows:
        rules[rule].append(float(rows[-1]["s"]))
with (out / "rule_times.csv").open("w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["rule", "jobs", "total_s", "max_s"])
    for rule, times in sorted(rules.items(), key=lambda kv: -sum(kv[1])):
        w.writerow([rule, len(times), round(sum(times), 1), round(max(times), 1)])
commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                            text=True).stdout.strip())
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
# the tables' seed spread covers the synthesis draw only with per-seed sets: say which
from fast.config import load_config
per_seed = load_config(config)["synthesis"]["per_seed"]
run = {"config": config, "commit": commit, "dirty_worktree": dirty, "wall_seconds": round(end - start, 1),
       "cores": cores, "cpu": cpu, "nproc": os.cpu_count(), "jobs": sum(len(t) for t in rules.values()),
       "synthesis_per_seed": per_seed}
(out / "run.json").write_text(json.dumps(run, indent=2) + "\n")
print(f"run_experiment: {config} in {run['wall_seconds']:.0f} s on {cores} cores ({cpu}); results in {out}")
PY
