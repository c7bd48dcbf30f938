"""Resource limits of this machine, checked before anything large is allocated.

Sizes that grow with user input (trials x length x neurons of generated data, sampled trials,
threads) are compared with what the machine has, so that a slip such as ``n_trials: 10**12``
is an error naming the option and the limit, not a process that eats a shared node's memory
or aborts inside a thread library.

Memory available is the smaller of the kernel's estimate (``MemAvailable`` in /proc/meminfo)
and the room left under the cgroup's limit (a batch job's allocation); ``LDNS_MEMORY_LIMIT``
(bytes, or with a K/M/G/T suffix) overrides both, e.g. to share a node with other jobs. One
array set may take :data:`MEMORY_FRACTION` of it, the rest being left for the models and their
temporaries.

Plugins reach this module as ``from ldns_framework import limits``.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, Mapping

from ldns_framework.errors import SpecError, shorten, shown

#: Range of the integers torch and numpy index and seed with.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: Largest seed: numpy's legacy seeding and Lightning's ``seed_everything`` take [0, 2**32 - 1].
SEED_MAX = 2**32 - 1
#: Share of the available memory one array set (data, samples) may take.
MEMORY_FRACTION = 0.5
#: Threads allowed per CPU of this machine (more only oversubscribes).
THREADS_PER_CPU = 4
#: Most threads any spec may ask for, whatever the machine (libgomp aborts far above this).
MAX_THREADS = 1024
#: Device names a spec (``run.device``) or ``--device`` takes.
DEVICE_FORM = re.compile(r"auto|cpu|cuda(:[0-9]{1,4})?|mps")
#: Environment variable overriding the memory available to ldns.
MEMORY_ENV = "LDNS_MEMORY_LIMIT"

_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def available_memory() -> int:
    """Bytes this process may still use: ``LDNS_MEMORY_LIMIT``, else min(MemAvailable, cgroup room)."""
    override = os.environ.get(MEMORY_ENV, "").strip()
    if override:
        return _parse_bytes(override)
    candidates = [n for n in (_meminfo_available(), _cgroup_room()) if n is not None]
    if not candidates:  # not Linux: what sysconf says is free
        try:
            return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return 8 * 2**30
    return min(candidates)


def cpu_count() -> int:
    """CPUs this process may run on (its affinity mask, e.g. a batch job's allocation)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def memory_budget() -> int:
    """Bytes one array set may take: :data:`MEMORY_FRACTION` of :func:`available_memory`."""
    return int(available_memory() * MEMORY_FRACTION)


def format_bytes(n: float) -> str:
    """``1.5 GiB``-style size for messages."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def check_array(path: str, dims: Mapping[str, int], bytes_per_element: float) -> None:
    """Raise :class:`SpecError` at ``path`` when arrays of ``prod(dims)`` elements at
    ``bytes_per_element`` (all arrays of that shape together) would exceed :func:`memory_budget`.

    ``dims`` names each factor as the user knows it, e.g. ``{"n_trials": 5000, "length": 256,
    "n_neurons": 128}`` or ``{"--n": n, "--length": t, "neurons": 128}``; the message lists them.
    """
    elements = math.prod(int(v) for v in dims.values())
    needed = elements * bytes_per_element
    budget = memory_budget()
    if needed > budget:
        product = " x ".join(f"{shorten(name)} {value}" for name, value in dims.items())
        raise SpecError(path, f"{product} = {elements:.3g} values would need about {format_bytes(needed)}, more "
                              f"than the limit of {format_bytes(budget)} ({MEMORY_FRACTION:.0%} of the "
                              f"{format_bytes(available_memory())} available; {MEMORY_ENV} overrides it); "
                              f"reduce {', '.join(map(shorten, dims))}")


def check_threads(n: int, path: str = "run.num_threads") -> None:
    """Raise :class:`SpecError` when ``n`` threads exceed :data:`THREADS_PER_CPU` x this machine's CPUs."""
    limit = THREADS_PER_CPU * cpu_count()
    if n > limit:
        raise SpecError(path, f"expected at most {limit} threads ({THREADS_PER_CPU} x the {cpu_count()} CPUs "
                              f"this process may use; 0 = torch's default), got {n}")


def check_device(device: str, path: str = "run.device") -> None:
    """Raise :class:`SpecError` when ``device`` ('cuda', 'cuda:N', 'mps') is not on this machine."""
    base, _, index = device.partition(":")
    if base not in ("cuda", "mps"):
        return
    import torch

    if base == "mps":
        if not torch.backends.mps.is_available():
            raise SpecError(path, "'mps' asked for, but this machine has no Apple GPU available to torch "
                                  "(torch.backends.mps.is_available() is False); use 'auto' or 'cpu'")
        return
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise SpecError(path, f"{device!r} asked for, but this machine has no CUDA device "
                              "(torch.cuda.is_available() is False); use 'auto' (a GPU when there is one) or 'cpu'")
    if index and int(index) >= count:
        raise SpecError(path, f"{device!r} asked for, but this machine has {count} CUDA device(s): "
                              f"cuda:0 to cuda:{count - 1}")


def torch_device(device: str, path: str = "run.device") -> Any:
    """The ``torch.device`` that ``device`` names on this machine; 'auto' is CUDA, else MPS, else the CPU.

    A :class:`SpecError` at ``path`` for a malformed name or a device this machine lacks.
    """
    if not isinstance(device, str) or not DEVICE_FORM.fullmatch(device):
        raise SpecError(path, f"expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {shown(device)}")
    check_device(device, path)
    import torch

    if device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _parse_bytes(text: str) -> int:
    number, unit = text.rstrip("iBb").upper(), ""
    if number[-1:] in _UNITS:
        number, unit = number[:-1], number[-1]
    try:
        value = float(number) * _UNITS[unit]
    except ValueError:
        raise SpecError(MEMORY_ENV, f"expected bytes, optionally with a K, M, G or T suffix (e.g. 8G), got "
                                    f"{shorten(text)!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise SpecError(MEMORY_ENV, f"expected a positive size such as 8G, got {shorten(text)!r}")
    return int(value)


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_room() -> int | None:
    """Bytes left under this process's cgroup memory limit (v2, then v1); None without a limit."""
    for limit_file, usage_file in (("memory.max", "memory.current"),
                                   ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes")):
        try:
            limit = (Path("/sys/fs/cgroup") / limit_file).read_text().strip()
            usage = (Path("/sys/fs/cgroup") / usage_file).read_text().strip()
            if limit == "max" or int(limit) >= 2**60:
                return None
            return max(0, int(limit) - int(usage))
        except (OSError, ValueError):
            continue
    return None
