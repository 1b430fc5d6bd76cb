"""scripts/gpu_check.sh end to end at toy size on the CPU (--cpu-smoke): the tests part, a random LDM
in the diffusers layout, both benchmarks over fp32/tf32/bf16 and two batch sizes, one JSON; --only
merges a part into an existing JSON."""

from __future__ import annotations

import json
import sys

from workflow_support import REPO, run, tool_env


def test_gpu_check_cpu_smoke_writes_one_json(tmp_path):
    out = tmp_path / "gpu_check.json"
    env = tool_env(PYTHON=sys.executable, TMPDIR=str(tmp_path))
    run(["bash", "scripts/gpu_check.sh", "--cpu-smoke", str(out)], REPO, timeout=900, env=env)
    res = json.loads(out.read_text())
    assert res["machine"]["cpu_smoke"] is True and res["machine"]["gpu"] is None
    assert res["tests"]["exit"] == 0 and res["tests"]["passed"] == 2 and not res["tests"]["failed"]
    sampling, training = res["sampling"], res["training"]
    assert [(r["requested"], r["batch"]) for r in sampling["runs"]] == [
        (p, b) for p in ("fp32", "tf32", "bf16") for b in (2, 4)]
    assert [r["precision"] for r in sampling["runs"]] == ["fp32"] * 4 + ["bf16"] * 2   # no TF32 on a CPU
    for r in sampling["runs"]:
        assert r["methods"]["fast"]["images_per_s"] > 0 and r["unet_evals_per_s"] > 0
        assert r["peak_memory_bytes"] > 0 and r["memory"].startswith("cpu: peak resident set size")
    runs = training["runs"]
    assert {(r["kind"], r["name"]) for r in runs} == {("generator", g) for g in ("base", "fast", "stage", "sard")} | {
        ("segmenter", s) for s in ("segformer", "unet")}
    assert len(runs) == 6 * 3 * 2
    assert all(r["seconds_per_step"] > 0 and r["peak_memory_bytes"] > 0 and "error" not in r for r in runs)
    assert not list(tmp_path.glob("gpu_check.*/"))     # its work directory is removed

    # --only: one part again, merged into the same file
    before = res["training"]
    run(["bash", "scripts/gpu_check.sh", "--cpu-smoke", "--only", "tests", str(out)], REPO, timeout=600, env=env)
    again = json.loads(out.read_text())
    assert again["training"] == before and again["tests"]["passed"] == 2
