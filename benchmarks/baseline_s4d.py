"""Frozen copy of the S4D forward pass as it was before the speed work of issue 13 (2026-11-25):
every S4D layer convolved by FFT (rfft of the input padded to 2L, times the kernel's rfft, irfft)
and added the skip term D u afterwards; the 1x1 channel mixers ran as ``nn.Conv1d`` (now
:class:`ldns_framework.nn.PointwiseConv1d`, a batched matrix product). The benchmarks time it beside
the current layers, on the same model and weights, interleaved in one run, so each speed-up is a
ratio measured under the same load. Kept verbatim on purpose: it is the yardstick, not code to reuse.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ldns_framework.nn import S4D, PointwiseConv1d, fft_size


def baseline_fft_convolution(u: torch.Tensor, kernel: torch.Tensor, backward: torch.Tensor | None) -> torch.Tensor:
    """The pre-issue-13 ``fft_convolution``: u (..., H, L), kernels (H, L) -> (..., H, L)."""
    length = u.shape[-1]
    dtype = torch.promote_types(torch.promote_types(u.dtype, kernel.dtype), torch.float32)
    forward = kernel[..., :length].to(dtype)
    taps = 0 if backward is None else min(backward.shape[-1], length - 1)
    n = fft_size(length, forward.shape[-1], taps)
    full = F.pad(forward, (0, n - forward.shape[-1]))
    if taps:
        back = backward[..., :taps].to(dtype).flip(-1)
        full = full + F.pad(back, (n - taps, 0))
    spectrum = torch.fft.rfft(u.to(dtype), n=n) * torch.fft.rfft(full, n=n)
    return torch.fft.irfft(spectrum, n=n)[..., :length].to(u.dtype)


def baseline_forward(self: S4D, u: torch.Tensor) -> torch.Tensor:
    """The pre-issue-13 ``S4D.forward`` (kernel from the layer's own Eq. 2, unchanged since)."""
    with torch.autocast(u.device.type, enabled=False):
        wide = u.to(torch.promote_types(u.dtype, torch.float32))
        kernel = self.kernel(u.shape[-1])
        y = baseline_fft_convolution(wide, kernel[0], kernel[1] if self.bidirectional else None)
        y = y + self.d[:, None] * wide
    return y.to(u.dtype)


@contextlib.contextmanager
def baseline_layers(model: nn.Module) -> Iterator[None]:
    """Within the block every S4D layer of ``model`` runs the frozen baseline forward, and every
    pointwise layer ``nn.Conv1d``'s."""
    layers = [m for m in model.modules() if isinstance(m, S4D)]
    pointwise = [m for m in model.modules() if isinstance(m, PointwiseConv1d)]
    for layer in layers:
        layer.forward = types.MethodType(baseline_forward, layer)
    for layer in pointwise:
        layer.forward = types.MethodType(nn.Conv1d.forward, layer)
    try:
        yield
    finally:
        for layer in layers + pointwise:
            del layer.forward
