"""Loading a generator does not depend on which method module was imported first: STAGE's and
SARD's extra modules are known to fast.diffusion.model itself (fast.diffusion.extras)."""

from __future__ import annotations

import subprocess
import sys

from generators import fit_generator

from fast.config import load_config
from fast.data.manifest import PreparedCategory, manifest_path

CFG = {"experiment": "t", "datasets": {"synthetic": {"categories": ["fabric"]}}, "methods": ["stage", "sard"],
       "resolution": 32, "device": "cpu",
       "diffusion": {"num_train_timesteps": 50, "unet": {"block_out_channels": [8, 16]},
                     "train": {"steps": 1, "finetune_steps": 1, "batch_size": 2, "checkpoint_every": 10}}}


def test_stage_and_sard_generators_load_in_a_fresh_interpreter_without_their_modules(synthetic_prepared, tmp_path):
    cfg = load_config(CFG)
    prepared = PreparedCategory.load(manifest_path(synthetic_prepared, "synthetic", "fabric"))
    dirs = {}
    for name in ("stage", "sard"):
        fit_generator(name, cfg, prepared, tmp_path / name)
        dirs[name] = tmp_path / name
    code = ("import sys\n"
            "from fast.diffusion.model import DiffusionModel\n"
            "for d in sys.argv[1:]:\n"
            "    m = DiffusionModel.load(d, 'cpu')\n"
            "    print(m.method, sorted(m.extra_modules))\n"
            "assert not any(k in sys.modules for k in ('fast.methods.stage', 'fast.methods.sard')), sorted(sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code, *map(str, dirs.values())], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split("\n")[:2] == ["stage ['stage_ad_an', 'stage_ad_img']", "sard ['sard_disc', 'sard_disc_adam']"]
