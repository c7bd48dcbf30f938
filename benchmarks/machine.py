"""The machine's own yardsticks, measured in the same run as the benchmarks: the matmul rate (the
compute roof) and large-copy bandwidth (the memory roof) on the CPU or a GPU, and a short machine name."""

from __future__ import annotations

import platform
import re
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch


def machine_name(device: str = "cpu") -> str:
    """A short slug: the GPU's name for a ``cuda`` device, else the CPU model and core count."""
    if device != "cpu":
        model = torch.cuda.get_device_name(0)
    else:
        model = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo") as info:
                names = [line.split(":", 1)[1] for line in info if line.startswith("model name")]
            model = f"{names[0]}-{len(names)}cores" if names else model
        except OSError:
            pass
    slug = re.sub(r"[^a-z0-9]+", "-", re.sub(r"\(r\)|\(tm\)|processor|cpu", "", model.lower())).strip("-")
    return slug[:48] or "unknown"


def synchronised(call: Callable[[], Any], device: str | torch.device) -> Callable[[], None]:
    """``call`` that returns once its GPU kernels have finished (GPU work is queued asynchronously)."""
    device = torch.device(device)
    if device.type != "cuda":
        return call

    def call_and_wait() -> None:
        call()
        torch.cuda.synchronize(device)

    return call_and_wait


def _median_seconds(call: Callable[[], Any], repeats: int, device: str) -> float:
    """Median wall seconds of ``call`` on ``device`` after one untimed call."""
    call = synchronised(call, device)
    call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def matmul_gflops(size: int = 4096, repeats: int = 3, device: str = "cpu", dtype: torch.dtype = torch.float32) -> float:
    """GFLOP/s of a (size x size) @ (size x size) matmul in ``dtype`` (fp32 without TF32: torch's
    default), median of ``repeats``."""
    a, b = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))
    return 2 * size ** 3 / _median_seconds(lambda: torch.mm(a, b), repeats, device) / 1e9


def copy_gbytes_per_s(mib: int = 512, repeats: int = 3, device: str = "cpu") -> float:
    """GB/s of a large tensor copy (bytes read + bytes written), median of ``repeats``."""
    source = torch.randn(mib * 2 ** 20 // 4, device=device)
    target = torch.empty_like(source)
    return 2 * source.numel() * 4 / _median_seconds(lambda: target.copy_(source), repeats, device) / 1e9
