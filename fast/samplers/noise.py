"""Sampling noise that does not depend on the batch it is computed in.

A sampler draws its noise as ``torch.randn((B, ...), generator=g)`` (fast.diffusion.schedule.randn,
diffusers' schedulers): row i of a batch is the i-th slice of g's stream, so the same image would
get other noise in another batch. A synthesis run therefore fixes its *noise groups* (which
requests share a generator, and at which row), and :class:`GroupedNoise` lets any batch of rows
from any groups draw exactly the noise those rows get when their group is sampled alone: every
``torch.randn`` call on its ``generator`` draws, for each group in the batch, the group's whole
block from that group's own generator and keeps the batch's rows of it. A batch that is exactly
one group in order draws what that group's generator draws, nothing else.

It works by a ``TorchFunctionMode`` around ``sampler.sample``: samplers keep their one-generator
interface (STAGE's and SARD's included), and every sampler's network call (``predict_x0``) runs
with torch functions undispatched, so the mode costs nothing inside the networks. Any other use of
the generator (``torch.rand``, ``randint``, ...) is an error, so no future sampler can draw
batch-dependent noise unnoticed. This requires that a sampler's sequence of noise draws does not
depend on the data (it depends on the plan alone in every sampler here).
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Sequence

import torch
from torch.overrides import TorchFunctionMode

from fast.errors import FastError

_ACTIVE: contextvars.ContextVar[bool] = contextvars.ContextVar("grouped_noise", default=False)


class GroupedNoise(TorchFunctionMode):
    """``with GroupedNoise(seeds, sizes, rows) as g: sampler.sample(..., generator=g)``.

    ``seeds[k]``: the seed of noise group k's generator, ``sizes[k]``: its number of rows;
    ``rows[i] = (k, j)``: batch row i is row j of group k."""

    def __init__(self, seeds: Sequence[int], sizes: Sequence[int], rows: Sequence[tuple[int, int]]):
        super().__init__()
        self.generator = torch.Generator()          # the handle samplers pass around; never drawn from
        self.sizes = [int(n) for n in sizes]
        self.rows = [(int(k), int(j)) for k, j in rows]
        for k, j in self.rows:
            if not 0 <= j < self.sizes[k]:
                raise ValueError(f"row {j} of noise group {k} (of {self.sizes[k]} rows)")
        self.groups = list(dict.fromkeys(k for k, _ in self.rows))   # in order of first appearance
        self.streams = {k: torch.Generator().manual_seed(int(seeds[k])) for k in self.groups}
        # where each group's block lands: batch rows in the order of `rows`
        self.picks = {k: torch.tensor([j for kk, j in self.rows if kk == k]) for k in self.groups}
        self.positions = {k: torch.tensor([i for i, (kk, _) in enumerate(self.rows) if kk == k])
                          for k in self.groups}

    def __enter__(self):
        super().__enter__()
        self._token = _ACTIVE.set(True)
        return self.generator

    def __exit__(self, *exc):
        _ACTIVE.reset(self._token)
        return super().__exit__(*exc)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if kwargs.get("generator") is not self.generator:
            return func(*args, **kwargs)
        if func is not torch.randn:
            raise FastError(f"{getattr(func, '__name__', func)} drew from a sampler's generator: only "
                            f"torch.randn keeps batch-independent noise (fast.samplers.noise)")
        return self._randn(*args, **kwargs)

    def _randn(self, *size, generator=None, dtype=None, device=None, layout=None, **kwargs):
        shape = tuple(size[0]) if len(size) == 1 and not isinstance(size[0], int) else tuple(size)
        if not shape or shape[0] != len(self.rows):
            raise FastError(f"noise of shape {shape} drawn for a batch of {len(self.rows)} rows")
        dtype = dtype or torch.get_default_dtype()
        out = torch.empty(shape, dtype=dtype)
        for k in self.groups:
            block = torch.randn((self.sizes[k], *shape[1:]), generator=self.streams[k], dtype=dtype,
                                **({"layout": layout} if layout is not None else {}), **kwargs)
            out[self.positions[k]] = block[self.picks[k]]
        return out if device is None else out.to(device)


@contextlib.contextmanager
def network_call():
    """Around a network evaluation inside a sampler: no torch function dispatch (a
    :class:`GroupedNoise` sees every torch call otherwise; networks draw no sampling noise)."""
    if _ACTIVE.get():
        with torch._C.DisableTorchFunction():
            yield
    else:
        yield


__all__ = ["GroupedNoise", "network_call"]
