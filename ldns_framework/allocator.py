"""Keep freed memory in the process's heap, so large tensors stop costing page faults on every step.

glibc's malloc serves a block above its mmap threshold (adaptive, at most 32 MiB on 64-bit) from
fresh pages and unmaps them when the block is freed. A training step whose activations are larger
than that maps, page-faults and zeroes them afresh on every step: the Lorenz autoencoder step
(hidden 256, 256 bins) ran 3x slower per trial at batch 128 than at batch 32 for that reason alone
(`make bench`, section "allocator"). Turning mmap off for malloc and never trimming the heap's top
lets every step reuse the previous step's blocks. The price: the resident size stays at its peak
instead of shrinking after it, which a training or sampling process reaches again on its next step.

Only glibc on Linux has these settings; elsewhere this is a no-op. ``LDNS_KEEP_FREED_MEMORY=0``
turns it off, for processes that must hand memory back between peaks.
"""

from __future__ import annotations

import ctypes
import os
import sys
from functools import lru_cache
from typing import Any

__all__ = ["ENV_VARIABLE", "keep_freed_memory"]

#: Set to 0 to leave glibc's allocator as it is.
ENV_VARIABLE = "LDNS_KEEP_FREED_MEMORY"

# mallopt(3) parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
#: No block served by mmap; the heap's free top returned to the OS only beyond 2 GiB.
_KEEP = ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1))

_applied = False


@lru_cache(maxsize=1)
def _glibc() -> Any:
    """The process's C library when it is glibc (the one with ``mallopt``), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    return libc if hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt") else None


def keep_freed_memory() -> bool:
    """Apply the settings of the module docstring once per process (unless ``LDNS_KEEP_FREED_MEMORY=0``);
    returns whether they are in force."""
    global _applied
    if _applied:
        return True
    if os.environ.get(ENV_VARIABLE, "1").strip() == "0":
        return False
    libc = _glibc()
    if libc is None:
        return False
    _applied = all(libc.mallopt(parameter, value) == 1 for parameter, value in _KEEP)
    return _applied
