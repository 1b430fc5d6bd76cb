"""Numeric precision of the torch work (config key ``precision``): one rule for generator training,
sampling, segmenter training and evaluation.

- ``fp32``: float32 throughout; on CUDA TF32 is switched off for matrix products and cuDNN
  convolutions (torch's own default leaves cuDNN's on).
- ``tf32``: float32 tensors, on CUDA matrix products and convolutions in TF32
  (``torch.backends.cuda.matmul.allow_tf32`` and ``torch.backends.cudnn.allow_tf32``). A CPU has
  no TF32: there it is fp32.
- ``bf16``: forward passes under ``torch.autocast(device_type, dtype=torch.bfloat16)`` (on CUDA
  with TF32 for what autocast leaves in float32); weights, optimiser state and gradients stay
  float32, and every loss is reduced in float32. On a CPU this is CPU autocast (slow without
  bf16 matrix units; for tests and checks, not for runs).
- ``auto`` (the default): bf16 on CUDA, fp32 on a CPU. On a CPU nothing changes: the published
  tables were made there in fp32, and ``auto`` reproduces them bit for bit. On CUDA bf16 is the
  fastest (the paper's LDM UNet, one H200, batch 64: 1165 evaluations/s in bf16, 684 in TF32,
  161 in fp32; batch 8: 161, 171 and 125) and the usual mixed precision of latent diffusion.

``Precision.of(name, device)`` resolves a name; ``with prec.context():`` sets the CUDA TF32 flags
and enters autocast for what runs inside (the flags are restored on exit), ``prec.cast(t)`` brings
a network output back to float32 (a no-op on float32 tensors, so fp32 runs stay bit-identical).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from fast.errors import FastError

PRECISIONS = ("auto", "fp32", "tf32", "bf16")
DEFAULT = "auto"


def resolve(name: str | None, device) -> str:
    """fp32 | tf32 | bf16 of config value ``name`` (None: the default) on ``device``."""
    name = DEFAULT if name is None else str(name)
    if name not in PRECISIONS:
        raise FastError(f"precision {name!r}: expected one of {', '.join(PRECISIONS)}")
    kind = _device_type(device)
    if name == "auto":
        return "bf16" if kind == "cuda" else "fp32"
    if name == "tf32" and kind != "cuda":
        return "fp32"      # no TF32 off CUDA: the same float32 arithmetic
    return name


@dataclass(frozen=True)
class Precision:
    """A resolved precision (``name``: fp32 | tf32 | bf16) on one device type (cpu | cuda)."""

    name: str
    device_type: str

    @classmethod
    def of(cls, name: str | None, device) -> "Precision":
        return cls(resolve(name, device), _device_type(device))

    @contextlib.contextmanager
    def context(self):
        """TF32 flags (CUDA) and autocast (bf16) for the code inside; a no-op for fp32 on a CPU."""
        import torch

        with contextlib.ExitStack() as stack:
            if self.device_type == "cuda":
                old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
                stack.callback(_set_tf32, *old)
                _set_tf32(self.name != "fp32", self.name != "fp32")
            if self.name == "bf16":
                stack.enter_context(torch.autocast(self.device_type, dtype=torch.bfloat16))
            yield self

    @staticmethod
    def cast(x):
        """A network output of reduced precision (bfloat16, float16) in float32; any other tensor
        unchanged, the very same object (float32 and float64 stay as they are)."""
        import torch

        return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


def _device_type(device) -> str:
    """cpu | cuda of a torch.device or a device string."""
    return getattr(device, "type", str(device).split(":")[0])


def _set_tf32(matmul: bool, cudnn: bool) -> None:
    import torch

    torch.backends.cuda.matmul.allow_tf32 = bool(matmul)
    torch.backends.cudnn.allow_tf32 = bool(cudnn)


FP32 = Precision("fp32", "cpu")

__all__ = ["DEFAULT", "FP32", "PRECISIONS", "Precision", "resolve"]
