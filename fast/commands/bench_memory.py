"""`fast bench memory`: the peak device memory of every GPU job of a config, traced on any machine.

Each job's own step runs through the project's code (generator training: ``train_step`` of
fast.diffusion.train, twice, so AdamW's state exists; sampling: ``generate`` of
fast.samplers.base, encode + the method's sampler + decode; segmenter training:
``segmenter_step``, twice) on the configured models at the given batch sizes and precisions, under
PyTorch's fake tensors: every operation allocates its outputs' shapes and dtypes, none computes,
so the paper's 1.5 B-parameter LDM at batch 64 traces on a laptop (seconds for a training step,
minutes for a 50-step sampler: Python runs every operation, the arithmetic is skipped). A dispatch mode
counts every live tensor storage (rounded up to the 512-byte blocks of CUDA's caching allocator)
from the model's weights on; the peak is what ``torch.cuda.max_memory_allocated`` would report for
the same operations. Not counted: the CUDA context, cuDNN / cuBLAS workspaces and the
allocator's fragmentation (``max_memory_reserved`` above allocated), which is why :data:`FITS`
keeps a margin. The trace runs on a CPU: bf16 is CPU autocast, whose list of ops run in bfloat16
is close to but not identical with CUDA's, and attention takes the kernels PyTorch picks on a CPU
(the fused, memory-efficient ones, as on CUDA).
"""

from __future__ import annotations

import contextlib
import gc
import tempfile
import weakref
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from fast import catalog
from fast.catalog import BASE
from fast.commands.bench import _batches, _bench_category, _config, _precisions, training_jobs
from fast.errors import FastError

BLOCK = 512                 # CUDA's caching allocator rounds every allocation up to 512 bytes
GIB = 2 ** 30
# A job "fits" a card when its traced peak is at most this share of the card's memory: the CUDA
# context, library workspaces and allocator fragmentation, which the trace does not see, take the rest.
FITS = 0.8
CARDS_GB = (24, 40, 80)
METHOD = "traced with fake tensors on the project's code: live tensor storages (512-byte blocks)"


class TensorMemory(TorchDispatchMode):
    """Live bytes of every tensor storage an operation returns (and of ``existing`` tensors), and
    their peak. A storage is freed when its last tensor goes (weakref finalizer).

    ``worst_case`` (for fake tensors, which hold no values): a value read on the host (``bool(t)``,
    ``t.item()``) is true / 1, and a boolean selection ``x[sel]`` selects every row, so a step
    that only sometimes takes its costly branch (SARD's adversarial term on the selected items)
    is traced with it, on the whole batch."""

    def __init__(self, existing=(), worst_case: bool = False):
        super().__init__()
        self.worst_case = worst_case
        self.live: dict[int, int] = {}
        self.current = self.peak = 0
        for t in existing:
            self._add(t)

    def _add(self, t: torch.Tensor) -> None:
        st = t.untyped_storage()
        key = id(st)
        if key in self.live:
            return
        n = -(-st.nbytes() // BLOCK) * BLOCK
        self.live[key] = n
        self.current += n
        self.peak = max(self.peak, self.current)
        weakref.finalize(st, self._free, key)

    def _free(self, key: int) -> None:
        self.current -= self.live.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if self.worst_case and func is torch.ops.aten._local_scalar_dense.default:
            return True if args[0].dtype == torch.bool else 1
        if self.worst_case and func is torch.ops.aten.index.Tensor:
            args = (args[0], [_every_row(i) for i in args[1]], *args[2:])
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self._add(t)
        return out


def _every_row(index):
    """A 1-D boolean index as the index of every row (worst case); any other index unchanged."""
    if index is None or index.dtype != torch.bool:
        return index
    if index.ndim != 1:
        raise FastError("memory trace: a boolean index of more than one dimension; trace this job for real")
    return torch.arange(index.shape[0], device=index.device)


def module_tensors(*modules) -> list[torch.Tensor]:
    """Every parameter and buffer of ``modules`` (what sits on the device before a job's step)."""
    return [t for m in modules if m is not None for t in (*m.parameters(), *m.buffers())]


def traced_peak(fn, existing=(), fake: bool = True) -> tuple[int, int]:
    """(peak bytes, bytes of ``existing``) of running ``fn()``: under fake tensors (nothing is
    computed) or, with ``fake=False``, for real (the tests check that both agree)."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    from fast.diffusion.masks import _overlaps

    existing = list(existing)
    mode = FakeTensorMode(allow_non_fake_inputs=True) if fake else contextlib.nullcontext()
    try:
        with mode, TensorMemory(existing, worst_case=fake) as mem:
            resident = mem.current
            fn()
    finally:
        if fake:     # what a cache computed under fake tensors holds must not outlive the trace
            _overlaps.cache_clear()
    peak = mem.peak
    del mem
    gc.collect()
    return peak, resident


def prepare_schedule(schedule) -> None:
    """The schedule's tables computed for real before a trace: the samplers read their numbers
    (``abar_table`` computes ``alphas_cumprod`` on the way)."""
    schedule.abar_table


# -- the jobs ----------------------------------------------------------------------------------
def generator_training(method, run, batch: int, precision, fake: bool = True) -> tuple[int, int]:
    """Two ``train_step``s of ``run`` (a TrainingSetup) at ``batch``."""
    from fast.diffusion.train import make_optimizer, step_rngs, train_step

    prepare_schedule(run.model.schedule)
    run.model.train()
    opt = make_optimizer(run.params, run.lr)
    batches = [run.data.sample(step_rngs(0, s)[0], batch) for s in range(2)]

    def steps():
        for s, b in enumerate(batches):
            train_step(run.model, opt, method.loss, b, step_rngs(0, s)[1], precision)

    try:
        return traced_peak(steps, module_tensors(run.model) + [t for b in batches for t in b.values()], fake)
    finally:
        for p in run.params:
            p.grad = None


def sampling(method, model, batch: int, precision, fake: bool = True) -> tuple[int, int]:
    """``generate`` with ``method``'s sampler on ``model`` for a batch of ``batch`` images. A
    diffusers solver's step reads its timestep tables (data a trace does not have): AIAS with the
    method's step count stands in, the same network evaluations (the solvers' history, a few
    latents of 32 x 32 x 4 values per image, is left out)."""
    from fast.samplers import build_sampler
    from fast.samplers.base import generate
    from fast.samplers.schedulers import DiffusersSampler

    prepare_schedule(model.schedule)
    method.model = model.eval()
    sampler, steps = method.make_sampler()
    if isinstance(sampler, DiffusersSampler):
        sampler = build_sampler("aias", model.schedule, {"farm": sampler.options.farm})
        steps = min(steps, model.schedule.T - 2)
    sampler.plan(steps)     # computed (and cached) for real: a plan is numbers, not device memory
    res, c = model.backbone.resolution, model.backbone.channels
    x = torch.zeros(batch, c, res, res)
    mask = torch.zeros(batch, 1, res, res)
    mask[..., res // 4: res // 2, res // 4: res // 2] = 1
    cond = torch.ones(batch, dtype=torch.long)

    def run():
        with torch.no_grad():
            generate(model, sampler, x, mask, cond, steps, torch.Generator().manual_seed(0), precision)

    try:
        return traced_peak(run, module_tensors(model) + [x, mask], fake)
    finally:
        model.eval()    # drops what the model cached in the trace (the LDM's text embeddings)


def segmenter_training(name: str, seg_cfg: dict, channels: int, size: int, batch: int, precision,
                       fake: bool = True) -> tuple[int, int]:
    """Two ``segmenter_step``s of segmenter ``name`` at ``batch`` (random initial weights)."""
    from fast.segmentation.models import build_segmenter
    from fast.segmentation.train import segmentation_loss, segmenter_step

    model = build_segmenter(name, channels, None, 0)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=seg_cfg["lr"])
    loss = segmentation_loss()
    x = torch.zeros(batch, channels, size, size)
    y = torch.zeros(batch, 1, size, size)

    def steps():
        for _ in range(2):
            segmenter_step(model, opt, loss, x, y, precision)

    return traced_peak(steps, module_tensors(model) + [x, y], fake)


def _size(n: int) -> str:
    return f"{n / GIB:.2f} GiB" if n >= GIB else f"{n / 2**20:.0f} MiB"


def sampling_method(generator: str) -> str:
    """The first method of the catalog that samples ``generator`` (fast, anomalydiffusion, ...)."""
    from fast.methods import GENERATOR_OF

    return next(m for m in catalog.names() if GENERATOR_OF.get(m) == generator)


def trace_all(cfg, prepared, generators, segmenters, precisions, gen_batches, sample_batches, seg_batches,
              log=print) -> list[dict]:
    """One record per job kind, name, precision and batch: peak and resident (weights) bytes."""
    from fast.methods import build_method
    from fast.precision import Precision

    runs = []

    def record(kind, name, prec, batch, peak_resident):
        peak, resident = peak_resident
        rec = {"kind": kind, "name": name, "precision": Precision.of(prec, "cuda").name, "requested": prec,
               "batch": batch, "peak_bytes": peak, "resident_bytes": resident,
               **{f"fits_{gb}gb": peak <= FITS * gb * 1e9 for gb in CARDS_GB}}
        runs.append(rec)
        log(f"{kind:<20} {name:<17} {rec['precision']:<5} batch {batch:>4}: peak {_size(peak):>10} "
            f"(weights and inputs {_size(resident)})")

    for gen in generators:
        # each generator on a freshly built base model (the trace needs no trained one)
        base = build_method(BASE, cfg).training_setup(prepared)
        method = build_method(gen, cfg)
        run = base if gen == BASE else method.training_setup(prepared, base_model=base.model)
        for prec in precisions:
            # a CUDA job's precision (auto: bf16) traced with the CPU's autocast
            precision = Precision(Precision.of(prec, "cuda").name, "cpu")
            for batch in gen_batches:
                record("generator training", gen, prec, batch, generator_training(method, run, batch, precision))
            sampler = build_method(sampling_method(gen), cfg)
            for batch in sample_batches:
                record("sampling", sampler.name, prec, batch, sampling(sampler, run.model, batch, precision))
        del base, method, run
        gc.collect()
    for name in segmenters:
        for prec in precisions:
            precision = Precision(Precision.of(prec, "cuda").name, "cpu")
            for batch in seg_batches:
                record("segmenter training", name, prec, batch,
                       segmenter_training(name, cfg["segmentation"], prepared.channels, int(cfg["resolution"]),
                                          batch, precision))
    return runs


def memory_table(runs: list[dict]) -> str:
    """Markdown: one row per job (kind, name), one column per precision and batch, peak GiB; a
    peak over the :data:`FITS` share of a 24 GB card is marked with ``!``."""
    cols = list(dict.fromkeys((r["precision"], r["batch"]) for r in runs))
    rows = list(dict.fromkeys((r["kind"], r["name"]) for r in runs))
    at = {(r["kind"], r["name"], r["precision"], r["batch"]): r for r in runs}
    head = "| job | " + " | ".join(f"{p} batch {b}" for p, b in cols) + " |"
    lines = [head, "|---|" + "---:|" * len(cols)]
    for kind, name in rows:
        cells = []
        for p, b in cols:
            r = at.get((kind, name, p, b))
            cells.append("" if r is None else f"{r['peak_bytes'] / GIB:.2f}{'' if r['fits_24gb'] else ' !'}")
        lines.append(f"| {kind} `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_bench_memory(args) -> int:
    """`fast bench memory`."""
    import resource

    cfg = _config(args.config)
    precisions = _precisions(args.precision, cfg)
    generators, segmenters = training_jobs(args, cfg)
    gen_batches = _batches(args.batch, cfg["diffusion"]["train"]["batch_size"])
    sample_batches = _batches(args.sample_batch, cfg["synthesis"]["batch_size"] or 16, "--sample-batch")
    seg_batches = _batches(args.batch, cfg["segmentation"]["batch_size"])
    cfg = {**cfg, "device": "cpu"}
    print(f"memory trace ({METHOD}); resolution {cfg['resolution']} px")
    with tempfile.TemporaryDirectory(prefix="fast-memory-") as tmp:
        prepared = _bench_category(args, cfg, Path(tmp))
        runs = trace_all(cfg, prepared, generators, segmenters, precisions, gen_batches, sample_batches,
                         seg_batches)
    host = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
    print(f"\npeak device memory, GiB (! over {FITS:.0%} of a 24 GB card):\n{memory_table(runs)}\n")
    print(f"host memory: peak resident set {host / GIB:.1f} GiB (this process, the models loaded one at a time)")
    print(f"fits: traced peak <= {FITS:.0%} of the card ({', '.join(f'{g} GB' for g in CARDS_GB)})")
    if args.json:
        from fast.io import write_json

        write_json(args.json, {"method": METHOD, "fits_rule": f"peak_bytes <= {FITS} x card bytes",
                               "torch": torch.__version__,
                               "resolution": int(cfg["resolution"]), "host_peak_rss_bytes": host, "runs": runs})
    return 0


__all__ = ["TensorMemory", "run_bench_memory", "trace_all", "traced_peak"]
