"""The method catalog: every fact about a synthesis method in one record, as plain data.

A record names the method, the ``module:factory`` that builds it, the generator it samples and the
one that generator starts from, how it samples (sampler, steps, options), whether its generator
carries FARM, its listing group, and the description and departures from its paper that
`fast methods` prints and the report states. The registry (fast.methods: REGISTRY, GENERATOR_OF,
BASE_OF, SAMPLER_OF, SWEEP), the config checks (fast.config), the schema's ``methods`` enum,
`fast methods`, the report and `fast bench sampling` read these records; nothing else in the
package spells a method's name but the method's own module.

Adding a method: write its module (a ``build(cfg, name)`` returning a
:class:`~fast.methods.base.SynthesisMethod`, docs/methods.md) and add one :class:`Method` record to
``METHODS`` below (and its name to the ``methods`` enum of fast/schemas/config.schema.yaml, which
tests/test_registries.py compares); code outside the package calls :func:`register`.

This module imports nothing (no torch): fast.config sits on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

# listing groups (`fast methods`), in their order
GROUPS = ("methods", "ablations", "frontier")


@dataclass(frozen=True)
class Method:
    """One synthesis method."""

    name: str
    factory: str                        # "module:callable", called as callable(cfg, name)
    description: str
    departures: str = ""                # where the implementation departs from the paper, one line
    group: str = "methods"              # methods (papers and baselines) | ablations | frontier
    generator: str | None = None        # the trained generator it samples; None: training-free
    base: str | None = None             # for a method that trains its own generator: the one it starts from
    # (sampler, steps, sampler options): steps None = aias.steps (AIAS) or the method's default,
    # "T" = every timestep of the schedule, an int = fixed; None: it does not sample a diffusion model
    sampling: tuple[str, int | str | None, dict] | None = None
    family: str | None = None           # the sampler family it belongs to (the curves of the frontier figure)
    nfe: int | None = None              # the frontier's matched number of network evaluations
    farm: bool = False                  # its generator carries FARM (fast.config's geometry and AIAS checks)

    @property
    def aias_steps(self) -> bool:
        """It samples with the config's aias.steps (AIAS without a step count of its own)."""
        return self.sampling is not None and self.sampling[0] == "aias" and self.sampling[1] is None

    @property
    def trains(self) -> bool:
        """It trains a generator of its own (``generator == name``)."""
        return self.generator == self.name


@dataclass(frozen=True)
class Generator:
    """A trainable generator that is not a synthesis method itself."""

    name: str
    factory: str
    description: str
    departures: str = ""
    base: str | None = None


# ``base`` is the mask-aware diffusion model of a category, trained once and shared by every diffusion
# method, which then trains only its own part on top of it (as the papers all start from one
# pretrained LDM).
BASE = "base"
GENERATORS: tuple[Generator, ...] = (
    Generator(BASE, "fast.methods.base_model:build",
              "shared base model: mask-aware diffusion backbone, mask-weighted eps loss"),
)

# Rows of every table that are not synthesis methods (docs/protocol.md, downstream segmentation):
# the real few-shot ceiling and the floor without any anomaly.
REAL_FEWSHOT = "real-fewshot"
NO_ANOMALIES = "no-anomalies"
REFERENCE_ROWS = (REAL_FEWSHOT, NO_ANOMALIES)

# ---- FAST and its ablations: one trained generator under several samplers ----------------------
FAST = "fast"
_FAST_BUILD = "fast.methods.fast:build"
_FAST_DEPARTURES = (
    "pixel backbone: starts from the shared base model (UNet trained with mask + background "
    "input channels, mask-weighted eps loss, frozen here, as the authors freeze their LDM) and "
    "trains FARM + the adaptor; windows; both loss terms mask-weighted alike (the authors: both "
    "plain means), so lambda keeps their relative weight; adaptor residual and zero-initialised "
    "(the authors' FineTune replaces eps by a 6-conv net of [eps, M]); FARM at t >= 0.1 T in every "
    "sampler (the authors: on AIAS's segments only, none in DDPM); background fused after every "
    "update (the authors: inside (T/4, 3T/4) only: the ablation fast-fusionwindow)")
NOFARM = "fast-nofarm"          # AIAS without FARM injection (fast bench sampling's FARM overhead)
FULL_DDPM = "fast-ddpm1000"     # every timestep (fast bench sampling's speed-up reference)


def _ablation(name: str, sampler: str, steps, options: dict, family: str | None = None) -> Method:
    shown = {None: "aias.steps", "T": "all T"}.get(steps, steps)
    farm = "without FARM injection" if options.get("farm") is False else "with FARM injection"
    fusion = ", background fused only inside the authors' (T/4, 3T/4) window" if options.get("fusion") else ""
    return Method(name, _FAST_BUILD, f"ablation: the `{FAST}` model sampled by {sampler} ({shown} steps), {farm}{fusion}",
                  _FAST_DEPARTURES, "ablations", FAST, sampling=(sampler, steps, options),
                  family=family or sampler, farm=True)


# ---- the quality-versus-cost frontier ----------------------------------------------------------
# FAST's one trained model under each few-step sampler at matched numbers of network evaluations,
# `fast-<sampler>-nfe<N>` (AIAS: N - aias.t_fine segments + the t_fine single steps; aiaspaper:
# AIAS with the paper's coefficients; the diffusers multistep solvers: N steps, one evaluation
# each, warm-up included). FARM injection (one rule in t: aias.farm_stop) and foreground fusion
# are the same in every one (fast.samplers.base.FusedSampler).
SWEEP_SAMPLERS = ("aias", "aiaspaper", "ddim", "dpmpp", "unipc", "deis")
SWEEP_NFE = (4, 6, 8, 12, 20, 50)
# family -> (sampler, options); AIAS's steps are set from N (fast.methods.fast.FastMethod.sampling_plan)
_SWEEP_SAMPLING = {"aias": ("aias", {"coefficients": "exact"}), "aiaspaper": ("aias", {"coefficients": "paper"}),
                   "ddim": ("ddim", {"eta": 0.0}), "dpmpp": ("dpmpp", {}), "unipc": ("unipc", {}),
                   "deis": ("deis", {})}


def sweep_name(family: str, nfe: int) -> str:
    return f"{FAST}-{family}-nfe{nfe}"


def _frontier(family: str, nfe: int) -> Method:
    sampler, options = _SWEEP_SAMPLING[family]
    kind = f"AIAS ({options['coefficients']} coefficients)" if sampler == "aias" else sampler
    return Method(sweep_name(family, nfe), _FAST_BUILD,
                  f"frontier: the `{FAST}` model sampled by {kind} at NFE {nfe}, with FARM injection",
                  _FAST_DEPARTURES, "frontier", FAST, sampling=(sampler, nfe, dict(options)), family=family,
                  nfe=nfe, farm=True)


# the real-defect paste baseline of the report: a synthesis method that does not beat it has not
# earned its cost (fast.report.stats compares every other method against it)
BASELINE = "defect-paste"

METHODS: tuple[Method, ...] = (
    Method(FAST, _FAST_BUILD, "FAST: diffusion + FARM + AIAS (arXiv 2509.20295)", _FAST_DEPARTURES,
           generator=FAST, base=BASE, sampling=("aias", None, {}), family="aias", farm=True),
    _ablation("fast-aias50", "aias", 50, {}),
    _ablation(NOFARM, "aias", None, {"farm": False}, "aias (no FARM)"),
    _ablation("fast-fusionwindow", "aias", None, {"fusion": "window"}, "aias (fusion window)"),
    _ablation(FULL_DDPM, "ddpm", "T", {}),
    _ablation("fast-ddim50", "ddim", 50, {"eta": 0.0}),
    _ablation("fast-plms50", "plms", 50, {}),
    _ablation("fast-dpmpp20", "dpmpp", 20, {}),
    # samples the shared base model itself (plain masked eps loss, no FARM: exactly its training objective)
    Method("anomalydiffusion", "fast.methods.anomalydiffusion:build",
           "AnomalyDiffusion-style masked inpainting (no FARM, DDIM eta=1)",
           "samples the shared base model (its objective); mask + background input channels "
           "instead of the spatial embedding; its adaptive attention re-weighting (cross-attention "
           "maps weighted towards the mask) not reproduced: the pixel UNet has no cross-attention; "
           "DDIM-50 instead of ~200 steps; no mask generator",
           generator=BASE, sampling=("ddim", 50, {"eta": 1.0, "farm": False})),
    Method("stage", "fast.methods.stage:build",
           "STAGE: graded diffusion with explicit mask alignment (arXiv 2509.06693), strided DDPM sampling",
           "starts from the shared base model, frozen as in the authors' code, and trains the two "
           "adapters only; strided DDPM (50 steps) instead of 1000; mask + background input channels; "
           "mask-weighted losses",
           generator="stage", base=BASE),
    Method("sard", "fast.methods.sard:build",
           "SARD: region-constrained diffusion + discriminative mask guidance (arXiv 2508.03143), "
           "after the paper's description (no public code)",
           "after the paper's description (no public code); starts from the shared base model; "
           "strided DDPM (50 steps); mask + background input channels; mask-weighted eps loss",
           generator="sard", base=BASE),
    Method("cutpaste", "fast.methods.cutpaste:build",
           "CutPaste: colour-jittered rectangle (2-15 % area) cut from the image and pasted elsewhere",
           "ColorJitter(0.1) in numpy in a fixed order (torchvision permutes the four); the label is "
           "the pasted rectangle (the paper trains an image-level classifier)"),
    Method("cutpaste-scar", "fast.methods.cutpaste:build",
           "CutPaste-scar: thin rotated colour-jittered strip (2-16 x 10-25 px at 256 px)",
           "strip width and length scale with the image size (the paper: fixed px at 256 px); "
           "ColorJitter in a fixed order; the label is the rotated strip's footprint"),
    Method("draem", "fast.methods.draem:build",
           "DRAEM: Perlin-noise mask filled with an augmented texture, blended with beta ~ U[0, 0.8)",
           "Perlin scale range scales with the image size (2^U{0..5} at 256 px); imgaug augmenters "
           "re-implemented in numpy/PIL/OpenCV; scikit-image textures unless a DTD folder is given; "
           "every image gets an anomaly (DRAEM leaves half unchanged)"),
    Method("nsa", "fast.methods.nsa:build",
           "NSA: Poisson-blended (seamlessClone) patches from other normal images; label = changed pixels",
           "median filter scaled with the image (5 px at 256 px), threshold relaxed when nothing "
           "shows; 1-4 patches uniform (NSA: coin flips); object region estimated from the border colour "
           "(NSA: per-class thresholds); binary labels only"),
    Method(BASELINE, "fast.methods.defect_paste:build",
           "Defect paste: real gen_train defects under their masks, pasted with flip/rot90 and feathered edges",
           "not in the papers: the practitioner's baseline"),
    *(_frontier(s, n) for s in SWEEP_SAMPLERS for n in SWEEP_NFE),
)

# `fast bench sampling` (fast.commands.bench) times these, in this order: FAST and NOFARM back to
# back, the frontier solvers at NFE 12 (AIAS-10's own), then the ablations' fixed-step samplers
BENCH = (FAST, NOFARM, sweep_name("aiaspaper", 12), *(sweep_name(s, 12) for s in ("ddim", "dpmpp", "unipc", "deis")),
         "fast-ddim50", "fast-dpmpp20", FULL_DDPM)

# ---- lookups and registration ------------------------------------------------------------------
_RECORDS: dict[str, Method] = {m.name: m for m in METHODS}
_GENERATORS: dict[str, Generator] = {g.name: g for g in GENERATORS}
_LISTENERS: list[Callable[[], None]] = []


def methods() -> tuple[Method, ...]:
    """Every method record, in catalog order (registered ones last)."""
    return tuple(_RECORDS.values())


def names() -> tuple[str, ...]:
    return tuple(_RECORDS)


def get(name: str) -> Method | None:
    return _RECORDS.get(name)


def record(name: str) -> Method:
    try:
        return _RECORDS[name]
    except KeyError:
        raise KeyError(f"no method {name!r} in the catalog") from None


def generators() -> tuple[Generator, ...]:
    return tuple(_GENERATORS.values())


def find(name: str) -> Method | Generator | None:
    """The record of a method or of a generator that is not a method (``base``)."""
    return _RECORDS.get(name) or _GENERATORS.get(name)


def sampling_plans(generator: str) -> dict[str, tuple[str, int | str | None, dict]]:
    """``{method: (sampler, steps, options)}`` of the methods that sample ``generator`` (a copy)."""
    return {m.name: (m.sampling[0], m.sampling[1], dict(m.sampling[2])) for m in _RECORDS.values()
            if m.generator == generator and m.sampling is not None}


def register(*records: Method) -> None:
    """Add methods (their modules importable) to the catalog and to every view derived from it
    (the registry, the config checks and enum, `fast methods`, the report)."""
    for m in records:
        if m.name in _RECORDS or m.name in _GENERATORS or m.name in REFERENCE_ROWS:
            raise ValueError(f"method {m.name!r} is already in the catalog")
        if m.group not in GROUPS:
            raise ValueError(f"method {m.name!r}: group {m.group!r} is not one of {GROUPS}")
        if ":" not in m.factory:
            raise ValueError(f"method {m.name!r}: factory {m.factory!r} is not 'module:callable'")
    _RECORDS.update({m.name: m for m in records})
    _changed()


def unregister(*names_: str) -> None:
    """Remove methods added by :func:`register`."""
    for name in names_:
        if name in {m.name for m in METHODS}:
            raise ValueError(f"method {name!r} is built in")
        _RECORDS.pop(name, None)
    _changed()


def on_change(listener: Callable[[], None]) -> None:
    """Call ``listener()`` after every register/unregister (views derived from the catalog refresh)."""
    if listener not in _LISTENERS:
        _LISTENERS.append(listener)


def _changed() -> None:
    for listener in _LISTENERS:
        listener()
