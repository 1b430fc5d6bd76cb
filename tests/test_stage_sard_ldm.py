"""STAGE and SARD on the `ldm` backbone (the tiny offline LDM of test_diffusion_ldm): they train
only what the backbone exposes plus their own modules, and synthesise exact, deterministic pairs."""

from __future__ import annotations

import numpy as np
import pytest
from generators import fit_generator
from safetensors.torch import load_file
from test_diffusion_ldm import tiny_ldm  # noqa: F401  (the fixture)

from fast.config import load_config
from fast.data.manifest import PreparedCategory, manifest_path
from fast.methods import SynthesisRequest, build_method


@pytest.mark.parametrize("name, own", [("stage", ("extra_modules.stage_ad_img.", "extra_modules.stage_ad_an.")),
                                       ("sard", ("extra_modules.sard_disc.", "extra_modules.sard_disc_adam."))])
def test_fit_and_synthesize_on_the_ldm_backbone(name, own, tiny_ldm, synthetic_prepared, tmp_path):  # noqa: F811
    cfg = load_config({
        "experiment": "t", "datasets": {"synthetic": {"categories": ["washer"]}}, "methods": [name],
        "resolution": 32, "device": "cpu",
        "diffusion": {"backbone": "ldm", "pretrained": str(tiny_ldm), "num_train_timesteps": 50,
                      "beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012,
                      "train": {"steps": 3, "finetune_steps": 3, "batch_size": 4, "checkpoint_every": 10}},
        # adv_max_t is SARD's own (STAGE refuses an option it does not read)
        "method_options": {name: {"steps": 5, **({"adv_max_t": 1.0} if name == "sard" else {})}},
    })
    prepared = PreparedCategory.load(manifest_path(synthetic_prepared, "synthetic", "washer"))
    fit_generator(name, cfg, prepared, tmp_path / "gen")
    state = load_file(str(tmp_path / "gen" / "model.safetensors"))
    assert "backbone.token_embeds" in state
    assert all(any(k.startswith(p) for k in state) for p in own)
    assert not any(k.startswith(("backbone.unet.", "backbone.vae.", "backbone.bert.")) for k in state)
    m = build_method(name, cfg)
    m.load(tmp_path / "gen")
    bg_row, m_row = prepared.rows("normal_train").iloc[0], prepared.rows("gen_train").iloc[0]
    req = SynthesisRequest(prepared.load_image(bg_row), prepared.load_mask(m_row), m_row["anomaly_type"], "b", "m")
    (img, mask, meta), = m.synthesize([req], seed=0)
    (img2, _, _), = m.synthesize([req], seed=0)
    assert img.shape == req.background.shape == (32, 32, 3) and meta["nfe"] == 5
    assert np.array_equal(img[mask == 0], req.background[mask == 0]) and np.array_equal(img, img2)


def test_sard_adversarial_term_trains_the_generator_through_the_ldm_decoder(tiny_ldm, synthetic_prepared):  # noqa: F811
    """The VAE is frozen, but the adversarial term on decoded x0_hat must still reach the trainable
    token vectors (a no_grad decode silently trained SARD without its discriminator)."""
    import torch

    from fast.diffusion.train import TrainData
    from fast.methods.sard import sard_loss

    cfg = load_config({
        "experiment": "t", "datasets": {"synthetic": {"categories": ["washer"]}}, "methods": ["sard"],
        "resolution": 32, "device": "cpu",
        "diffusion": {"backbone": "ldm", "pretrained": str(tiny_ldm), "num_train_timesteps": 50,
                      "beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012},
    })
    prepared = PreparedCategory.load(manifest_path(synthetic_prepared, "synthetic", "washer"))
    data = TrainData.from_prepared(prepared, 32, anomalous_fraction=1.0)
    method = build_method("sard", cfg)
    torch.manual_seed(0)
    model = method.build_model(data.class_names, prepared.channels)
    batch = data.sample(np.random.default_rng(0), 4)
    grads = []
    for weight in (0.0, 1.0):
        model.zero_grad(set_to_none=True)
        out = sard_loss(model, batch, torch.Generator().manual_seed(1), method._disc_optimizer(model),
                        adv_weight=weight, adv_max_t=1.0)
        out["loss"].backward()
        grads.append(model.backbone.token_embeds.grad.clone())
    assert float(out["loss_adv"]) > 0
    assert (grads[1] - grads[0]).abs().sum() > 0     # the adversarial term sends a gradient
