"""scripts/own_part_curves.py: the flattening rule on hand-built curves, and the files it writes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

spec = importlib.util.spec_from_file_location("own_part_curves", Path(__file__).parents[1] / "scripts" / "own_part_curves.py")
opc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(opc)


def test_late_drop_by_hand():
    # 10 steps: 60-80 % = [4, 3] (mean 3.5), 80-100 % = [3, 2] (mean 2.5): drop 1 / 2.5 = 0.4, but
    # 1 <= 2 SE = 2 sqrt(0.5/2 + 0.5/2) = 1.41: a drop this small against that noise counts as flat
    v = np.array([10, 8, 6, 5, 4.5, 4, 4, 3, 3, 2], float)
    rel, flat = opc.late_drop(v)
    assert abs(rel - 0.4) < 1e-12 and flat
    lin = np.linspace(1.0, 0.5, 100)              # still falling, no noise: not flat
    rel, flat = opc.late_drop(lin)
    assert rel > 0.1 and not flat
    noisy = 0.02 + 0.005 * np.random.default_rng(0).standard_normal(600)   # a noisy plateau: flat
    assert opc.late_drop(noisy)[1]


def test_writes_copies_table_and_figure_and_fails_on_a_curve_still_falling(tmp_path):
    gens = tmp_path / "generators" / "ds" / "cat"
    steps = np.arange(1, 201)
    flat = 0.1 + np.exp(-steps / 10)
    falling = 1.0 - steps / 250
    for name, col in (("base", flat), ("fast", falling)):
        (gens / name).mkdir(parents=True)
        pd.DataFrame({"step": steps, "loss": col, "loss_eps_in": col}).to_csv(gens / name / "train_log.csv", index=False)
    out = tmp_path / "out"
    assert opc.main([str(tmp_path / "generators"), str(out)]) == 1
    table = pd.read_csv(out / "convergence.csv")
    assert dict(zip(table["generator"], table["flattened"])) == {"ds.cat.base": True, "ds.cat.fast": False}
    assert (out / "own_part_curves.png").stat().st_size > 1000
    assert (out / "ds.cat.fast.train_log.csv").is_file()
