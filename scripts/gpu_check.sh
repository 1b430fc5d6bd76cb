#!/usr/bin/env bash
# GPU check on one GPU, offline, from the repository root; writes one JSON.
#
#   scripts/gpu_check.sh [--cpu-smoke] [--only tests,sampling,training] [--ldm DIR] [OUT.json]
#   scripts/gpu_check.sh --download-wheels        (here, with internet: fills .whl/ for the GPU machine)
#
# 1. Python packages: if diffusers, segmentation_models_pytorch or jsonschema cannot be imported,
#    installs every wheel in .whl/ (no index, no dependencies) into a private directory put on
#    PYTHONPATH. --download-wheels fetches them for Python 3.12 on x86-64 Linux, at the versions this
#    environment has (.whl/ is git-ignored; carry it to the GPU machine).
# 2. tests: the CUDA-relevant test files, copied with `"device": "cpu"` turned into `"device": "auto"`
#    (cuda on a GPU): samplers, generator windows, FAST, the LDM backbone, segmenters, STAGE, SARD,
#    precision, batched synthesis, the benchmarks.
# 3. benchmarks: a randomly initialised LDM in the paper's layout (CompVis/ldm-text2im-large-256:
#    UNet 872 M, KL-f8 autoencoder 84 M, LDM-BERT 582 M parameters; speed and memory are real,
#    samples are not) unless --ldm DIR gives one; config/mvtec_ad.yaml on the synthetic dataset
#    (washer, 256 px); `fast bench sampling` and `fast bench training` at batch 8 and 64 in fp32,
#    tf32 and bf16 (s/step, images/s, UNet evaluations/s, peak memory).
# Writes OUT.json (default: $OUT/gpu_check.json when $OUT is set, else gpu_check.json): the
# machine, the tests' outcome and both benchmarks' JSON. --only runs some parts and merges them
# into an existing OUT.json, so the check can be split over calls of a few minutes each.
# --cpu-smoke: everything at toy size on the CPU (a tiny random LDM at 32 px, batch 2 and 4, one
# timed step, two quick tests), to check the script end to end without a GPU (about a minute).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

SMOKE=0
ONLY="tests,sampling,training"
LDM=""
DOWNLOAD=0
RESULT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu-smoke) SMOKE=1 ;;
    --only) ONLY="$2"; shift ;;
    --ldm) LDM="$2"; shift ;;
    --download-wheels) DOWNLOAD=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    -*) echo "gpu_check.sh: unknown option $1" >&2; exit 2 ;;
    *) RESULT="$1" ;;
  esac
  shift
done
if [ -z "$RESULT" ]; then
  if [ -n "${OUT:-}" ]; then RESULT="$OUT/gpu_check.json"; else RESULT="$REPO/gpu_check.json"; fi
fi
case "$RESULT" in /*) ;; *) RESULT="$REPO/$RESULT" ;; esac
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON="$REPO/.venv/bin/python"; else PYTHON=python3; fi
fi
WHEELS="diffusers segmentation-models-pytorch jsonschema jsonschema-specifications referencing rpds-py importlib-metadata"

if [ "$DOWNLOAD" = 1 ]; then
  mkdir -p .whl
  for name in $WHEELS; do
    version=$("$PYTHON" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name")
    "$PYTHON" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      -d .whl "$name==$version"
  done
  ls -l .whl
  exit 0
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"

# 1. packages
if ! "$PYTHON" -c "import diffusers, segmentation_models_pytorch, jsonschema" 2>/dev/null; then
  if ! ls .whl/*.whl >/dev/null 2>&1; then
    echo "gpu_check.sh: diffusers, segmentation_models_pytorch or jsonschema missing and no wheels in .whl/" \
         "(run scripts/gpu_check.sh --download-wheels where pip reaches the index)" >&2
    exit 1
  fi
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$WORK/site" .whl/*.whl
  export PYTHONPATH="$PYTHONPATH:$WORK/site"
fi

if [ "$SMOKE" = 1 ]; then
  DEVICE=cpu; BATCHES=2,4; STEPS=1; SIZE=tiny; REPEATS=1
  TESTS="tests/test_precision.py::test_resolution_rules tests/test_synthesis_batching.py::test_grouped_noise_rows_are_their_groups_rows"
else
  DEVICE=auto; BATCHES=8,64; STEPS=3; SIZE=paper; REPEATS=2
  TESTS="tests/test_samplers_core.py tests/test_generator_windows.py tests/test_fast_methods.py
         tests/test_diffusion_ldm.py tests/test_segmentation_train.py tests/test_stage_method.py
         tests/test_sard_method.py tests/test_precision.py tests/test_synthesis_batching.py
         tests/test_diffusion_bench.py"
fi
PRECISIONS=fp32,tf32,bf16

# the machine, and the JSON this run adds to
"$PYTHON" - "$RESULT" "$DEVICE" "$SMOKE" <<'EOF'
import json, os, platform, subprocess, sys
from pathlib import Path
import torch
path, device, smoke = Path(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
data = json.loads(path.read_text()) if path.is_file() else {}
cuda = torch.cuda.is_available() and device != "cpu"
try:
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip() or None
except OSError:
    commit = None
data["machine"] = {"gpu": torch.cuda.get_device_name(0) if cuda else None,
                   "gpu_memory_bytes": torch.cuda.get_device_properties(0).total_memory if cuda else None,
                   "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
                   "cpus": os.cpu_count(), "commit": commit, "cpu_smoke": smoke}
path.parent.mkdir(parents=True, exist_ok=True)
path.write_text(json.dumps(data, indent=1))
EOF
merge() {  # merge KEY FILE: put FILE's JSON under KEY of the result
  "$PYTHON" - "$RESULT" "$1" "$2" <<'EOF'
import json, sys
from pathlib import Path
path, key, part = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
data = json.loads(path.read_text())
data[key] = json.loads(part.read_text())
path.write_text(json.dumps(data, indent=1))
EOF
}

# 2. tests, with device auto
if [[ ",$ONLY," == *",tests,"* ]]; then
  # a copy of the repository whose test configs ask for device auto
  mkdir "$WORK/repo"
  tar -C "$REPO" --exclude=./.git --exclude=./.venv --exclude=./.whl --exclude=./results --exclude=./data \
    -cf - . | tar -C "$WORK/repo" -xf -
  for f in $TESTS; do
    file=${f%%::*}
    sed -i 's/"device": "cpu"/"device": "'"$DEVICE"'"/g' "$WORK/repo/$file"
  done
  start=$(date +%s)
  set +e
  (cd "$WORK/repo" && PYTHONPATH="$WORK/repo:$PYTHONPATH" "$PYTHON" -m pytest -p no:cacheprovider -q \
     -m "not slow and not slurm and not dvc" --junitxml "$WORK/junit.xml" $TESTS) 2>&1 | tee "$WORK/tests.log"
  rc=${PIPESTATUS[0]}
  set -e
  "$PYTHON" - "$WORK/junit.xml" "$rc" "$(( $(date +%s) - start ))" "$DEVICE" "$WORK/tests.json" <<'EOF'
import json, sys
import xml.etree.ElementTree as ET
from pathlib import Path
junit, rc, seconds, device, out = sys.argv[1:]
record = {"device": device, "exit": int(rc), "seconds": int(seconds)}
if Path(junit).is_file():
    suite = ET.parse(junit).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    failed = [f"{c.get('classname')}::{c.get('name')}" for c in suite.iter("testcase")
              if c.find("failure") is not None or c.find("error") is not None]
    n, skipped = int(suite.get("tests")), int(suite.get("skipped"))
    record.update({"tests": n, "passed": n - len(failed) - skipped, "failed": failed, "skipped": skipped})
else:  # pytest ended before writing its report
    log = Path(junit).with_name("tests.log")
    record["log_tail"] = log.read_text()[-3000:] if log.is_file() else ""
json.dump(record, open(out, "w"))
EOF
  merge tests "$WORK/tests.json"
fi

# 3. benchmarks on a random LDM in the paper's layout
if [[ ",$ONLY," == *",sampling,"* || ",$ONLY," == *",training,"* ]]; then
  if [ -z "$LDM" ]; then
    LDM="$WORK/ldm"
    "$PYTHON" "$REPO/scripts/random_ldm.py" "$LDM" "$SIZE"
  fi
  "$PYTHON" - "$REPO" "$LDM" "$SMOKE" "$DEVICE" "$WORK/bench.yaml" <<'EOF'
import sys
from pathlib import Path
import yaml
repo, ldm, smoke, device, out = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4], Path(sys.argv[5])
cfg = yaml.safe_load((Path(repo) / "config/mvtec_ad.yaml").read_text())
cfg.update({"experiment": "gpu_check", "device": device, "datasets": {"synthetic": {"categories": ["washer"]}},
            "methods": ["fast"], "resources": {}})
cfg["diffusion"]["pretrained"] = ldm
cfg["segmentation"]["encoder_weights"] = None
if smoke:
    cfg["resolution"] = 32
    cfg["diffusion"]["farm"]["widths"] = [8, 8, 16]
out.write_text(yaml.safe_dump(cfg))
EOF
fi
if [[ ",$ONLY," == *",sampling,"* ]]; then
  "$PYTHON" -m fast bench sampling --config "$WORK/bench.yaml" --precision "$PRECISIONS" --batch "$BATCHES" \
    --methods fast,fast-nofarm --repeats "$REPEATS" --json "$WORK/sampling.json"
  merge sampling "$WORK/sampling.json"
fi
if [[ ",$ONLY," == *",training,"* ]]; then
  "$PYTHON" -m fast bench training --config "$WORK/bench.yaml" --precision "$PRECISIONS" --batch "$BATCHES" \
    --steps "$STEPS" --json "$WORK/training.json"
  merge training "$WORK/training.json"
fi
echo "gpu_check.sh: wrote $RESULT"
