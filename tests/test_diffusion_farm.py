"""FARM: shapes, the background-adaptive soft mask, timestep conditioning; the adaptor."""

from __future__ import annotations

import torch

from fast.diffusion.farm import FARM, Adaptor
from fast.diffusion.losses import fast_loss
from fast.diffusion.backbones import PixelBackbone
from fast.diffusion.model import DiffusionModel
from fast.diffusion.schedule import Schedule


def _farm(seed=0):
    torch.manual_seed(seed)
    return FARM(3, (16, 16), (8, 16, 32)).eval()


def test_farm_shapes_and_encoder_grid():
    f = _farm()
    assert f.enc_grid == (4, 4) and f.f_bg[-1].out_features == 16  # one value per encoder position
    z = torch.randn(2, 3, 16, 16)
    out = f(z, torch.zeros(2, 1, 16, 16), torch.tensor([3, 900]))
    assert out.shape == z.shape
    assert not torch.allclose(f(z, torch.zeros(2, 1, 16, 16), torch.tensor([3, 3])), out)  # t matters


def test_soft_mask_is_one_inside_the_mask_so_f_bg_only_acts_on_background():
    f = _farm()
    z = torch.randn(2, 3, 16, 16)
    t = torch.tensor([10, 500])
    ones, zeros = torch.ones(2, 1, 16, 16), torch.zeros(2, 1, 16, 16)
    a_full, a_empty = f(z, ones, t), f(z, zeros, t)
    with torch.no_grad():
        f.f_bg[-1].bias += 3.0  # change sigmoid(f_bg(tau))
    assert torch.allclose(f(z, ones, t), a_full, atol=1e-6)  # M_soft = M_d = 1 everywhere
    assert not torch.allclose(f(z, zeros, t), a_empty, atol=1e-4)


def test_adaptor_starts_as_identity():
    a = Adaptor(3)
    e = torch.randn(2, 3, 8, 8)
    assert torch.equal(a(e, torch.ones(2, 1, 8, 8)), e)


def test_fast_loss_trains_farm_towards_masked_x0():
    torch.manual_seed(0)
    sched = Schedule(50, "linear", 1e-4, 0.02)
    model = DiffusionModel(PixelBackbone(1, 16, 2, (8, 16), 1), sched, ["good", "a"], "fast", (8, 8, 16))
    x = torch.rand(4, 1, 16, 16) * 2 - 1
    mask = torch.zeros(4, 1, 16, 16)
    mask[:, :, 4:10, 4:12] = 1
    batch = {"x": x, "mask": mask, "cond": torch.tensor([1, 1, 0, 1])}
    out = fast_loss(model, batch, torch.Generator().manual_seed(0), lam=5.0)
    assert torch.isclose(out["loss"], out["loss_eps"] + 5.0 * out["loss_farm"])
    out["loss"].backward()
    assert model.farm.out.weight.grad.abs().sum() > 0
    assert model.backbone.unet.conv_in.weight.grad.abs().sum() > 0


class _ConstantFarmModel:
    """encode = identity, FARM = 1 everywhere, eps = 0: FAST's loss terms can be written by hand."""

    schedule = Schedule(50, "linear", 1e-4, 0.02)

    def encode(self, x):
        return x

    def farm(self, z_t, mask, t):
        return torch.ones_like(z_t)

    def eps(self, z, t, cond, mask=None, bg=None):
        return torch.zeros_like(z)


def test_fast_loss_weights_the_farm_term_like_the_eps_term():
    """x0 = 0.5, F = 1, a 4-of-16-pixel mask: inside (F - M x0)^2 = 0.25, outside (F - 0)^2 = 1, so the
    FARM term is 0.25 + 0.1 x 1 = 0.35 with outside_weight 0.1 (a plain mean over the window, the old
    reduction, gives (4 x 0.25 + 12 x 1) / 16 = 0.8125, weighting the in-mask error by 4/16)."""
    x = torch.full((1, 1, 4, 4), 0.5)
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., 1:3, 1:3] = 1
    out = fast_loss(_ConstantFarmModel(), {"x": x, "mask": mask, "cond": torch.tensor([1])},
                    torch.Generator().manual_seed(0), lam=5.0, outside_weight=0.1)
    assert float(out["loss_farm_in"]) == 0.25 and float(out["loss_farm_out"]) == 1.0
    assert abs(float(out["loss_farm"]) - 0.35) < 1e-7
    assert torch.isclose(out["loss"], out["loss_eps"] + 5.0 * out["loss_farm"])
    # the eps term (eps_theta = 0): mean of eps^2 inside + 0.1 x outside, the same normalisation
    assert torch.isclose(out["loss_eps"], out["loss_eps_in"] + 0.1 * out["loss_eps_out"])
