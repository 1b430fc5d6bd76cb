"""scripts/own_part_curves.py: the flattening rule on hand-built curves, and the files it writes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

spec = importlib.util.spec_from_file_location("own_part_curves", Path(__file__).parents[1] / "scripts" / "own_part_curves.py")
opc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(opc)


def test_late_share_by_hand():
    # 10 steps: first 10 % = [10], 60-80 % = [4, 3] (mean 3.5), last 20 % = [3, 3] (mean 3):
    # (3.5 - 3) / (10 - 3) = 1/14
    v = np.array([10, 8, 6, 5, 4.5, 4, 4, 3, 3, 3], float)
    assert abs(opc.late_share(v) - 0.5 / 7) < 1e-12
    # still falling linearly: 0.2 of the drop happens in the last 20 % of the steps
    lin = np.linspace(1.0, 0.0, 100)
    assert opc.late_share(lin) > 0.2
    assert np.isnan(opc.late_share(np.ones(20)))          # no improvement at all


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
