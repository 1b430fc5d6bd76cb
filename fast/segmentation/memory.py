"""Allocator settings of the segmenter jobs (`fast train-segmenter`, `fast evaluate`).

glibc's malloc serves every block above its mmap threshold (adaptive, at most 32 MiB) with a fresh
``mmap`` and returns it to the kernel on ``free``; freed memory at the top of the heap is trimmed
back too. A segmenter job allocates and frees the same large blocks over and over (segformer's
decoder concatenates four 256-channel maps: ~150 MB per inference batch of 16 images at 192 px;
the metrics hold several arrays of one float64 per test pixel), so each one was page-faulted and
zeroed by the kernel again: ~800k page faults and about half the CPU time of inference on the
Magnetic Tile test set. Keeping freed memory in the process for reuse removes that work; the
numbers computed do not change (torch aligns its buffers itself), and the memory held stays at
the job's peak, which it reached anyway.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger(__name__)

# <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# Blocks below this come from the heap and are reused after free; above the largest block a job
# allocates (~150 MB), well below what a job may use.
MMAP_THRESHOLD = 1 << 30
TRIM_THRESHOLD = (1 << 31) - 1   # the largest value mallopt takes (an int): never trim


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory for reuse (see the module docstring). Returns whether it
    did; other C libraries (macOS, musl, Windows) are left as they are."""
    try:
        mallopt = ctypes.CDLL(None).mallopt   # the C library the interpreter runs on
    except (AttributeError, OSError, TypeError):
        log.debug("no mallopt in this C library: allocator left as it is")
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    log.debug("mallopt mmap threshold %d, trim threshold %d: %s", MMAP_THRESHOLD, TRIM_THRESHOLD,
              "set" if done else "refused")
    return done
