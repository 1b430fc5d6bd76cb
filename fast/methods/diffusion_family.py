"""DiffusionMethod: the shared SynthesisMethod for every diffusion generator (fit, load, synthesize).

Subclasses set ``generator`` and the per-name sampling plan (``SAMPLING``: name -> (sampler,
steps or None for the config default, options)) and override ``build_model`` (which modules),
``loss`` (the training objective) and, if needed, ``make_sampler``. Method options
(``cfg["method_options"][name]``) may override ``sampler``, ``steps``, ``batch_size`` and any
option of the sampler (``fast.samplers.sampler_options``: ``eta``, ``farm``, ``t_fine``,
``coefficients``, ...; another key is an error).

Noise groups and batches: the requests are cut into chunks of ``batch_size`` (default 16), and a
chunk into runs of one image size; each such run is a *noise group* with a generator of its own
(seeded from the synthesis seed and the run's place), the draw of every published set. The config's
``synthesis.batch_size`` is how many requests one network call computes: null computes each
noise group as one batch; a number gathers pending requests of one image size into batches of
that size, across groups, and each row keeps its group's noise (fast.samplers.noise.GroupedNoise),
so the images do not depend on it. ``precision`` (fast.precision) applies to training and sampling.

Extending (STAGE, SARD): subclass, set ``generator = "stage"``, override ``build_model``/``loss``,
and if the sampling differs, implement a Sampler (fast/samplers/base.py) and return it from
``make_sampler`` (``strided_sampler`` for a strided DDPM one); ``fit``/``load``/``synthesize`` stay
as they are.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from fast import catalog
from fast.config import resolve_device
from fast.data.manifest import GOOD, PreparedCategory
from fast.diffusion.backbones import backbone_spec_from_config, build_backbone
from fast.diffusion.model import DiffusionModel
from fast.diffusion.schedule import Schedule
from fast.diffusion.train import TrainData, train_loop
from fast.errors import FastError
from fast.methods import BASE_OF
from fast.methods.base import INTEGER, SynthesisMethod, SynthesisRequest, Synthesized, kind_of_default
from fast.precision import Precision
from fast.samplers import SAMPLERS, build_sampler, sampler_class, sampler_options
from fast.samplers.base import synthesize_batch
from fast.samplers.noise import GroupedNoise


class DiffusionMethod(SynthesisMethod):
    generator: str | None = None
    SAMPLING: dict[str, tuple[str, int | None, dict]] = {}
    # every diffusion method; a method of SAMPLING also takes `sampler` and that sampler's options
    OPTIONS = {"steps": INTEGER, "batch_size": INTEGER}

    def __init__(self, cfg: dict, name: str | None = None):
        super().__init__(cfg, name)
        self.model: DiffusionModel | None = None
        self._device = None

    @property
    def device(self):
        # resolved on first use: checking a config's options must not need the configured device
        if self._device is None:
            self._device = resolve_device(self.cfg["device"])
        return self._device

    @property
    def precision(self) -> Precision:
        """The config's ``precision`` on this method's device (fast.precision)."""
        return Precision.of(self.cfg.get("precision"), self.device)

    def known_options(self) -> dict[str, object]:
        known = dict(self.OPTIONS)
        if self.name in self.SAMPLING:
            known["sampler"] = tuple(SAMPLERS)
            sampler = self.options.get("sampler", self.SAMPLING[self.name][0])
            if sampler in SAMPLERS:
                choices = sampler_class(sampler).Options.CHOICES
                known.update({k: choices.get(k) or kind_of_default(v) for k, v in sampler_options(sampler).items()})
        return known

    # -- training ------------------------------------------------------------------------------
    # Every diffusion method starts from the shared base model of its category (trained once by
    # the `base` generator: mask-aware backbone, mask-weighted eps loss), as the papers all start
    # from one pretrained LDM, and then trains only its own part for ``finetune_steps``. A method
    # whose ``trains_backbone`` is False keeps the base's epsilon model frozen.
    trains_backbone = True

    def farm_widths(self):
        return None

    def build_model(self, class_names: list[str], channels: int, backbone=None) -> DiffusionModel:
        d = self.cfg["diffusion"]
        if backbone is None:
            backbone = build_backbone(backbone_spec_from_config(self.cfg, channels, len(class_names)))
        try:
            return DiffusionModel(backbone, Schedule.from_config(d), class_names, self.generator,
                                  farm_widths=self.farm_widths(),
                                  adaptor=bool(d["farm"]["adaptor"]) and self.farm_widths() is not None,
                                  extra=self.extra_modules(), patch=d.get("patch"))
        except ValueError as exc:  # e.g. FARM on a latent grid not divisible by 4
            key = "diffusion.patch" if d.get("patch") else "resolution"
            raise FastError(f"{key} {d.get('patch') or self.cfg['resolution']} does not fit the "
                            f"{self.generator!r} generator: {exc}; choose a multiple of 32") from None

    def extra_modules(self) -> dict | None:
        """Spec of this method's extra modules (fast.diffusion.model.register_extra_builder)."""
        return None

    def loss(self, model, batch, generator):
        raise NotImplementedError

    def trainable_parameters(self, model: DiffusionModel) -> list:
        params = list(model.backbone.trainable_parameters()) if self.trains_backbone else []
        for sub in (model.farm, model.adaptor, model.extra_modules):
            if sub is not None:
                params += [p for p in sub.parameters() if p.requires_grad]
        return params

    def _from_base(self, base_dir: Path, data: TrainData, dataset: str | None = None,
                   category: str | None = None) -> DiffusionModel:
        check_generator_record(base_dir, self.cfg, BASE_OF[self.generator], dataset, category,
                               what="--base-dir", method=f"--generator {self.generator}")
        base = DiffusionModel.load(base_dir, "cpu")
        if base.class_names != data.class_names:
            raise FastError(f"{base_dir}: base model was trained on classes {base.class_names}, this "
                            f"category has {data.class_names}; retrain the base model")
        if base.patch != (self.cfg["diffusion"].get("patch") or None):
            raise FastError(f"{base_dir}: base model works on patch {base.patch}, the config asks for "
                            f"diffusion.patch {self.cfg['diffusion'].get('patch')}; retrain the base model")
        return self.on_base(base, data)

    def on_base(self, base: DiffusionModel, data: TrainData) -> DiffusionModel:
        """This method's model around the base model's backbone (frozen unless the method trains it)."""
        if not self.trains_backbone:
            base.backbone.requires_grad_(False)
        return self.build_model(data.class_names, base.backbone.channels, backbone=base.backbone)

    def fit(self, train_set: PreparedCategory, out_dir: Path, base_dir: Path | None = None) -> None:
        run = self.training_setup(train_set, base_dir)
        self.model = self.run_training(run, out_dir)

    def training_setup(self, train_set: PreparedCategory, base_dir: Path | None = None,
                       base_model: DiffusionModel | None = None) -> "TrainingSetup":
        """Everything ``fit`` trains with: the data, the model (built, or on the base model from
        ``base_dir``, or on ``base_model`` as it is: `fast bench memory` needs no trained base), its
        trainable parameters, steps, lr and the record (`fast bench training` times ``run_training``
        on it)."""
        tr = self.cfg["diffusion"]["train"]
        data = TrainData.from_prepared(train_set, int(self.cfg["resolution"]),
                                       float(tr["anomalous_fraction"]), self.cfg["diffusion"].get("patch"))
        torch.manual_seed(int(self.cfg["seed"]))  # initial weights (the only global-RNG use)
        if base_dir is None and base_model is None and self.starts_from_base():
            raise FastError(f"generator {self.generator!r} starts from the category's base model: pass its "
                            f"directory (fast train --base-dir)")
        if base_model is not None:
            model = self.on_base(base_model, data)
            steps, lr = int(tr["finetune_steps"]), float(tr.get("finetune_lr") or tr["lr"])
            started = {"base_dir": None, "frozen_backbone": not self.trains_backbone}
        elif base_dir is None:
            model, steps, lr = self.build_model(data.class_names, train_set.channels), int(tr["steps"]), float(tr["lr"])
            started = None
        else:
            model = self._from_base(Path(base_dir), data, _dataset_of(train_set), train_set.category)
            steps, lr = int(tr["finetune_steps"]), float(tr.get("finetune_lr") or tr["lr"])
            started = {"base_dir": str(base_dir), "frozen_backbone": not self.trains_backbone}
        # what the generator was trained on: `fast synthesize` refuses another (check_generator_record)
        spec = {**model.spec(), "dataset": _dataset_of(train_set), "category": train_set.category,
                "resolution": int(self.cfg["resolution"]), "started_from": started}
        return TrainingSetup(data, model, self.trainable_parameters(model), steps, lr, spec)

    def run_training(self, run: "TrainingSetup", out_dir: Path, *, steps: int | None = None, batch_size: int | None = None,
              precision: Precision | None = None, checkpoint_every: int | None = None, on_step=None,
              progress: bool = True) -> DiffusionModel:
        """``train_loop`` on ``run`` with the config's steps, batch, checkpoints and precision (each
        overridable, for `fast bench training`)."""
        tr = self.cfg["diffusion"]["train"]
        return train_loop(run.model, run.params, self.loss, run.data.sample, out_dir,
                          steps=run.steps if steps is None else int(steps),
                          batch_size=int(tr["batch_size"]) if batch_size is None else int(batch_size), lr=run.lr,
                          checkpoint_every=int(tr["checkpoint_every"]) if checkpoint_every is None else checkpoint_every,
                          seed=int(self.cfg["seed"]), spec=run.spec, device=self.device,
                          precision=self.precision if precision is None else precision, on_step=on_step,
                          progress=progress)

    def starts_from_base(self) -> bool:
        return bool(BASE_OF.get(self.generator))

    def outside_weight(self) -> float:
        return float(self.cfg["diffusion"]["train"]["outside_weight"])

    def load(self, generator_dir: Path | None) -> None:
        if generator_dir is None:
            raise FastError(f"method {self.name!r} needs --generator-dir (a trained {self.generator!r} generator)")
        spec = read_generator_record(generator_dir)
        if spec.get("method") != self.generator:
            raise FastError(f"--generator-dir {generator_dir} holds a {spec.get('method')!r} generator but method "
                            f"{self.name!r} samples a {self.generator!r} generator; pass that one "
                            f"(`fast train --generator {self.generator}` trains it)")
        self.model = DiffusionModel.load(generator_dir, self.device)

    # -- sampling ------------------------------------------------------------------------------
    # the config's `aias` section: options of every sampler that takes them (start, clip_x0,
    # farm_stop and fusion are shared by all fused samplers, the rest are AIAS's own)
    AIAS_SECTION = ("t_fine", "coefficients", "update_from", "start", "clip_x0", "farm_stop", "fusion")
    DEFAULT_STEPS = 50    # steps of a non-AIAS sampler (and of STAGE's and SARD's) unless given

    def sampling_plan(self) -> tuple[str, int, dict]:
        """(sampler, steps, options): the method's entry of SAMPLING, the config's `aias` section
        and ``method_options`` (``sampler``, ``steps`` and the sampler's options; another key is a
        FastError naming the sampler's options)."""
        sampler, steps, opts = self.SAMPLING[self.name]
        over = {k: v for k, v in self.options.items() if k not in ("batch_size",)}
        sampler = over.pop("sampler", sampler)
        steps = over.pop("steps", steps)
        known = sampler_options(sampler)
        for key in over:
            if key not in known:
                raise FastError(f"method_options.{self.name}.{key}: sampler {sampler!r} has no option {key!r}; "
                                f"its options: {', '.join(known)} (and sampler, steps, batch_size)")
        a = self.cfg["aias"]
        options = {k: a[k] for k in self.AIAS_SECTION if k in known}
        options.update({k: v for k, v in opts.items() if k in known})
        options.update(over)
        if steps is None:
            steps = int(a["steps"]) if sampler == "aias" else self.DEFAULT_STEPS
        if steps == "T":
            steps = int(self.cfg["diffusion"]["num_train_timesteps"])
        return sampler, int(steps), options

    def validate_sampling(self) -> None:
        """Check the sampling steps against the config's schedule before any model is loaded."""
        from fast.config import aias_limits

        T = int(self.cfg["diffusion"]["num_train_timesteps"])
        if self.name in self.SAMPLING:
            sampler, steps, options = self.sampling_plan()
            where = f"method_options.{self.name}.steps" if "steps" in self.options else (
                "aias.steps" if self.SAMPLING[self.name][1] is None else f"method {self.name!r} steps")
            if sampler == "aias":
                t_fine = {**sampler_options("aias"), **options}["t_fine"]
                msg = aias_limits(T, int(t_fine), int(steps), where)
                if msg:
                    raise FastError(msg)
                return
        else:
            steps, where = int(self.options.get("steps", self.DEFAULT_STEPS)), f"method_options.{self.name}.steps"
        if not 1 <= int(steps) <= T:
            raise FastError(f"{where} {steps}: must be between 1 and diffusion.num_train_timesteps ({T})")

    def make_sampler(self):
        """(sampler, steps) this method samples with."""
        name, steps, options = self.sampling_plan()
        return build_sampler(name, self.model.schedule, options), steps

    def strided_sampler(self, sampler_cls):
        """(sampler, steps) of a method with its own strided sampler (STAGE, SARD): ``steps`` and
        ``clip_x0`` from ``method_options``."""
        steps = int(self.options.get("steps", self.DEFAULT_STEPS))
        options = {k: self.options[k] for k in ("clip_x0",) if k in self.options}
        return sampler_cls(self.model.schedule, **options), steps

    def synthesize(self, requests: Sequence[SynthesisRequest], seed: int) -> Iterator[Synthesized]:
        if self.model is None:
            raise FastError(f"method {self.name!r}: load() a trained generator before synthesize()")
        sampler, steps = self.make_sampler()
        feather = int(self.cfg["synthesis"]["feather"])
        requests = list(requests)
        groups = noise_groups(requests, int(self.options.get("batch_size", 16)))
        batch = self.cfg["synthesis"]["batch_size"]
        if batch is None:   # each noise group is one batch
            for key, idx in groups:
                items = [requests[i] for i in idx]
                yield from self._synthesize_group(items, sampler, steps, group_generator(seed, key), feather)
            return
        # batches of up to `batch` pending requests of one image size (the size of the first
        # pending request), each row with the noise of its own group; results in request order
        group_of = {i: (k, j) for k, (_, idx) in enumerate(groups) for j, i in enumerate(idx)}
        seeds = [group_seed(seed, key) for key, _ in groups]
        sizes = [len(idx) for _, idx in groups]
        pending, done, emitted = list(range(len(requests))), {}, 0
        while pending:
            shape = requests[pending[0]].background.shape
            take = [i for i in pending if requests[i].background.shape == shape][:int(batch)]
            taken = set(take)
            pending = [i for i in pending if i not in taken]
            noise = GroupedNoise(seeds, sizes, [group_of[i] for i in take])
            outs = self._synthesize_group([requests[i] for i in take], sampler, steps, noise, feather)
            done.update(zip(take, outs))
            while emitted in done:
                yield done.pop(emitted)
                emitted += 1

    def synthesis_record(self) -> dict:
        """What timing.json records of how the set was computed: the precision, the requests per
        network call (synthesis.batch_size, else the noise group) and the noise group size."""
        group = int(self.options.get("batch_size", 16))
        batch = self.cfg["synthesis"]["batch_size"]
        return {"precision": self.precision.name, "batch_size": int(batch) if batch else group,
                "noise_group": group}

    def _synthesize_group(self, items, sampler, steps, generator, feather):
        bgs = np.stack([np.asarray(r.background, np.uint8).reshape(r.background.shape[0], r.background.shape[1], -1)
                        for r in items])
        masks = np.stack([(np.asarray(r.mask) > 0).astype(np.uint8) for r in items])
        if bgs.shape[-1] != self.model.backbone.channels:
            raise FastError(f"background has {bgs.shape[-1]} channels but the generator was trained on "
                            f"{self.model.backbone.channels}")
        cond = self.model.cond_index([r.anomaly_type for r in items])
        t0 = time.perf_counter()
        outs = synthesize_batch(self.model, sampler, bgs, masks, cond, steps, generator, feather, self.device,
                                self.precision)
        dt = (time.perf_counter() - t0) / len(items)
        return [(out.reshape(r.background.shape), m,
                 {"nfe": int(outs.nfe), "sampler": sampler.name, "steps": int(steps), "seconds": round(dt, 6)})
                for r, out, m in zip(items, outs.images, masks)]


def noise_groups(requests: Sequence[SynthesisRequest], group_size: int) -> list[tuple[tuple[int, int], list[int]]]:
    """The noise groups of ``requests``: ((chunk start, run index), request indices). Chunks of
    ``group_size`` consecutive requests, each cut into runs of one background shape (order kept)."""
    out: list[tuple[tuple[int, int], list[int]]] = []
    for bi in range(0, len(requests), group_size):
        runs: list[list[int]] = []
        for i in range(bi, min(bi + group_size, len(requests))):
            if runs and requests[runs[-1][0]].background.shape == requests[i].background.shape:
                runs[-1].append(i)
            else:
                runs.append([i])
        out += [((bi, k), run) for k, run in enumerate(runs)]
    return out


def group_seed(seed: int, key: tuple[int, int]) -> int:
    """The seed of noise group ``key``'s generator, from the synthesis seed."""
    rng = np.random.default_rng([int(seed), *key])
    return int(rng.integers(0, 2**62))


def group_generator(seed: int, key: tuple[int, int]) -> torch.Generator:
    return torch.Generator().manual_seed(group_seed(seed, key))


@dataclass
class TrainingSetup:
    """What a generator trains with (DiffusionMethod.training_setup)."""

    data: TrainData
    model: DiffusionModel
    params: list
    steps: int
    lr: float
    spec: dict


def _dataset_of(train_set: PreparedCategory) -> str:
    """The dataset of a prepared category (``<prepared>/<dataset>/<category>/manifest.csv``)."""
    return train_set.root.parent.name


def read_generator_record(generator_dir: str | Path) -> dict:
    """The ``config.json`` of a trained generator (what it was trained on), before any weights load."""
    d = Path(generator_dir)
    path = d / "config.json"
    if not path.is_file() or not (d / "model.safetensors").is_file():
        raise FastError(f"{d}: not a trained generator (needs model.safetensors and config.json; "
                        f"run `fast train` first)")
    try:
        spec = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise FastError(f"{path}: unreadable generator record ({exc}); retrain the generator") from None
    if not isinstance(spec, dict):
        raise FastError(f"{path}: not a generator record; retrain the generator")
    return spec.get("model", spec) if isinstance(spec.get("model"), dict) else spec


def expected_record(cfg: dict, dataset: str | None, category: str | None) -> list[tuple[str, str, object]]:
    """(config key, record key path, expected value) of everything a generator must match."""
    d = cfg["diffusion"]
    out: list[tuple[str, str, object]] = [("--dataset", "dataset", dataset), ("--category", "category", category),
                                          ("resolution", "resolution", int(cfg["resolution"])),
                                          ("diffusion.patch", "patch", d.get("patch") or None),
                                          ("diffusion.backbone", "backbone.kind", d["backbone"])]
    if d["backbone"] == "pixel":
        out += [("diffusion.unet.block_out_channels", "backbone.block_out_channels",
                 [int(c) for c in d["unet"]["block_out_channels"]]),
                ("diffusion.unet.layers_per_block", "backbone.layers_per_block", int(d["unet"]["layers_per_block"])),
                ("diffusion.mask_channels", "backbone.mask_channels", bool(d["mask_channels"]))]
    else:
        out += [("diffusion.pretrained", "backbone.pretrained", d.get("pretrained")),
                ("diffusion.ldm.num_vectors", "backbone.num_vectors", int(d["ldm"]["num_vectors"]))]
    sched = Schedule.from_config(d).as_dict()
    out += [(f"diffusion.{k}", f"schedule.{k}", v) for k, v in sched.items()]
    return out


_ABSENT = object()


def _get(spec: dict, dotted: str, absent=None):
    cur = spec
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return absent
        cur = cur[part]
    return cur


# record keys whose null is a value (diffusion.patch null: whole images), not "unknown"
NULL_IS_A_VALUE = ("patch",)


def _say(value) -> str:
    return "null" if value is None else repr(value)


def check_generator_record(generator_dir: str | Path, cfg: dict, generator: str, dataset: str | None,
                           category: str | None, *, what: str = "--generator-dir",
                           method: str | None = None, prepared: PreparedCategory | None = None) -> dict:
    """Refuse a generator trained on something else than this run asks for (another generator
    kind, dataset, category, resolution, window, UNet or schedule) or than the ``prepared`` images
    it will sample on (another resolution), naming the key and how to retrain. Keys a legacy record
    lacks are not compared. Returns the record."""
    spec = read_generator_record(generator_dir)
    train = f"fast train --config <this config> --dataset {dataset} --category {category}"
    if generator == catalog.BASE:
        retrain = f"pass the one trained for this run, or retrain it: `{train} --generator base --out BASE`"
    else:
        retrain = (f"pass the one trained for this run, or retrain it (its base model first): `{train} "
                   f"--generator base --out BASE` then `{train} --generator {generator} --base-dir BASE --out DIR`")
    kind = spec.get("method")
    if kind != generator:
        raise FastError(f"{what} {generator_dir} holds a {kind!r} generator, but {method or 'this run'} needs "
                        f"a {generator!r} generator; pass that one or train it "
                        f"(`fast train --generator {generator}`)")
    for key, path, want in expected_record(cfg, dataset, category):
        have = _get(spec, path, _ABSENT)
        if have is _ABSENT or ((have is None or want is None) and path not in NULL_IS_A_VALUE):
            continue
        if have is None or want is None:
            same = have is want
        elif isinstance(want, float) or isinstance(have, float):
            same = abs(float(have) - float(want)) <= 1e-12 * max(1.0, abs(float(want)))
        else:
            same = have == want
        if not same:
            raise FastError(f"{what} {generator_dir} was trained with {key} {_say(have)}, this run asks for "
                            f"{_say(want)}; {retrain}")
    have = _get(spec, "resolution", None)
    if prepared is not None and have is not None and int(have) != prepared.resolution:
        raise FastError(f"{what} {generator_dir} was trained at resolution {have}, the prepared images of "
                        f"{prepared.manifest} are at {prepared.resolution}; prepare them at {have} "
                        f"(`fast prepare --resolution {have}`) or {retrain}")
    if generator == catalog.FAST and spec.get("farm_widths") is not None:
        want = [int(w) for w in cfg["diffusion"]["farm"]["widths"]]
        if list(spec["farm_widths"]) != want:
            raise FastError(f"{what} {generator_dir} was trained with diffusion.farm.widths "
                            f"{spec['farm_widths']!r}, this run asks for {want!r}; retrain FARM on its base "
                            f"model: `{train} --generator fast --base-dir BASE --out DIR`")
    return spec


__all__ = ["DiffusionMethod", "GOOD", "check_generator_record", "read_generator_record"]
