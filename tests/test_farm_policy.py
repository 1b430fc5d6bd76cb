"""One FARM policy for every sampler of FAST's model: FARM injects at exactly the network
evaluations of timesteps t >= aias.farm_stop x T, whatever the sampler (AIAS, DDPM, DDIM, PLMS,
DPM-Solver++, UniPC, DEIS, every frontier entry), and `fast-nofarm` differs from `fast` in nothing
but FARM. Instrumented on a toy model at the real schedule (T = 1000)."""

from __future__ import annotations

import pytest
import torch

from fast.config import load_config
from fast.diffusion.schedule import Schedule
from fast.methods import REGISTRY, build_method
from fast.methods.fast import FastMethod
from fast.samplers import build_sampler

T = 1000
SCHED = Schedule(T, "linear", 1e-4, 0.02)
FAST_VARIANTS = sorted(n for n in FastMethod.SAMPLING if n in REGISTRY)


class RecordingFarmModel:
    """eps and FARM stand-ins that record the timestep of every network evaluation and every
    FARM injection."""

    farm = True
    x0_clip = (-1.0, 1.0)
    schedule = SCHED

    def __init__(self):
        self.eps_t: list[int] = []
        self.farm_t: list[int] = []

    def inject(self, z, mask, t, noise, abar):
        self.farm_t.append(int(torch.as_tensor(t).view(-1)[0]))
        return (1 - mask) * z + mask * (abar ** 0.5 * torch.tanh(z) + (1 - abar) ** 0.5 * noise)

    def eps(self, z, t, cond, mask=None, bg=None):
        self.eps_t.append(int(torch.as_tensor(t).view(-1)[0]))
        return torch.tanh(0.3 * z)


def _config(name: str, **aias) -> dict:
    return load_config({"experiment": "farm-policy", "datasets": {"synthetic": {"categories": ["x"]}},
                        "methods": [name], "aias": aias})


def _run(name: str, **aias) -> RecordingFarmModel:
    sampler, steps, options = build_method(name, _config(name, **aias)).sampling_plan()
    model = RecordingFarmModel()
    x_bg, mask = torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8)
    mask[..., 2:6, 2:6] = 1
    build_sampler(sampler, SCHED, options).sample(model, x_bg, mask, torch.tensor([0]), steps,
                                                  torch.Generator().manual_seed(0))
    return model


@pytest.mark.parametrize("name", FAST_VARIANTS)
def test_farm_acts_at_exactly_the_evaluations_at_or_above_farm_stop(name):
    m = _run(name)
    assert m.eps_t, name
    expected = [] if name == "fast-nofarm" else [t for t in m.eps_t if t >= 0.1 * T]
    assert m.farm_t == expected, (name, sorted(set(m.farm_t) - set(expected)))
    if name != "fast-nofarm":
        assert min(m.farm_t) >= 100 and max(m.farm_t) == max(m.eps_t)   # FARM on the coarse part only


def test_aias10_keeps_the_authors_farm_calls_and_ddpm_stops_at_the_same_t():
    """AIAS-10 (t_fine 2): FARM on its 10 segments (last at t = 101), none in the fine steps; DDPM-1000
    applies FARM on t = 999..100 (old code: down to t = 0)."""
    aias = _run("fast")
    assert aias.farm_t == aias.eps_t[:10] and aias.farm_t[-1] == 101 and aias.eps_t[10:] == [1, 0]
    ddpm = _run("fast-ddpm1000")
    assert ddpm.farm_t == list(range(999, 99, -1))


def test_farm_stop_is_one_key_for_every_sampler():
    for name in ("fast", "fast-ddim50", "fast-dpmpp20"):
        m = _run(name, farm_stop=0.5)
        assert m.farm_t and min(m.farm_t) >= 500 and m.farm_t == [t for t in m.eps_t if t >= 500]
    assert _run("fast-ddpm1000", farm_stop=0.0).farm_t == list(range(999, -1, -1))


def test_fast_nofarm_differs_from_fast_in_farm_only():
    plan = {n: build_method(n, _config(n)).sampling_plan() for n in ("fast", "fast-nofarm")}
    (s1, n1, o1), (s2, n2, o2) = plan["fast"], plan["fast-nofarm"]
    assert (s1, n1) == (s2, n2)
    assert {k: v for k, v in o1.items() if k != "farm"} == {k: v for k, v in o2.items() if k != "farm"}
    assert o1.get("farm", True) is True and o2["farm"] is False
    assert _run("fast").eps_t == _run("fast-nofarm").eps_t


@pytest.mark.parametrize("sampler,steps", [("aias", 10), ("ddim", 20), ("dpmpp", 12)])
def test_fusion_window_fuses_only_inside_the_authors_window(sampler, steps):
    """fusion: every pastes the clean background after the last update (outside M, z0 == x_bg);
    window fuses only after updates landing inside (T/4, 3T/4), so the last ones leave it free."""
    x_bg, mask = torch.full((1, 1, 8, 8), 0.5), torch.zeros(1, 1, 8, 8)
    mask[..., 2:6, 2:6] = 1
    model = RecordingFarmModel()
    out = {}
    for fusion in ("every", "window"):
        s = build_sampler(sampler, SCHED, {"fusion": fusion, "farm": False})
        out[fusion] = s.sample(model, x_bg, mask, torch.tensor([0]), steps, torch.Generator().manual_seed(1)).z0
        assert [s.fuses_at(t) for t in (-1, 100, 250, 251, 500, 749, 750, 999)] == (
            [True] * 8 if fusion == "every" else [False, False, False, True, True, True, False, False])
    outside = mask == 0
    assert torch.equal(out["every"][outside], x_bg[outside])
    assert (out["window"][outside] - x_bg[outside]).abs().max() > 0.05
    assert torch.equal(out["every"][~outside] == out["every"][~outside], torch.ones_like(out["every"][~outside], dtype=bool))
