"""Long convolutions along time by FFT, causal or bidirectional, linear (never circular).

For an input u (..., H, L) and per-channel kernels, :func:`fft_convolution` returns

    y_t = sum_{s <= t} K[t - s] u_s  +  sum_{s > t} K_back[s - t - 1] u_s,     t = 0 .. L-1,   (1)

the second sum only when a backward kernel is given. K holds lags 0, 1, 2, ... (the present and
the past: a causal filter); K_back holds lags -1, -2, ... (strictly the future). Equation (1) is a
linear convolution with a kernel supported on lags -(L-1) .. L-1; a circular convolution of size
n computes it exactly when no lag wraps onto another, i.e. when n >= L + max(len(K) - 1, len(K_back))
(at most 2L - 1). The transform size is the next length >= that bound that the FFT does fast
(only factors 2, 3 and 5; ``scipy.fft.next_fast_len``), so the cost is O(L log L) instead of the
O(L^2) of the direct sum. :func:`circular_kernel` and :func:`spectral_convolution` split the work
so that a layer can prepare its kernel once and reuse it (ldns_framework.nn.longconv).
"""

from __future__ import annotations

import functools
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["circular_kernel", "fft_convolution", "fft_size", "spectral_convolution"]


def fft_size(length: int, forward_lags: int, backward_lags: int = 0) -> int:
    """Smallest fast FFT size n for Eq. (1) on ``length`` bins with kernels of ``forward_lags``
    (lags 0..forward_lags-1) and ``backward_lags`` (lags -1..-backward_lags) taps, so that the
    circular convolution of size n equals the linear one on the first ``length`` outputs."""
    if length < 1 or forward_lags < 1 or backward_lags < 0:
        raise ValueError(f"fft_size: expected length >= 1, forward_lags >= 1, backward_lags >= 0, "
                         f"got {length}, {forward_lags}, {backward_lags}")
    reach = max(min(forward_lags, length) - 1, min(backward_lags, length - 1))  # farthest lag that matters
    return next_fast_length(length + reach)


@functools.lru_cache(maxsize=4096)
def next_fast_length(target: int) -> int:
    """Smallest n >= target with no prime factor above 5 (what ``scipy.fft.next_fast_len(target,
    real=True)`` returns; computed here because importing scipy.fft costs 0.25 s on a layer's first call)."""
    best = 1 << max(0, target - 1).bit_length()  # the next power of two is one candidate
    power5 = 1
    while power5 < best:
        power35 = power5
        while power35 < best:
            candidate = power35
            while candidate < target:
                candidate *= 2
            best = min(best, candidate)
            power35 *= 3
        power5 *= 5
    return best


def check_convolution_inputs(length: int, kernel: torch.Tensor) -> None:
    """One-line errors for an input without time bins or a kernel without lags."""
    if length < 1:
        raise ValueError(f"u: expected at least one time bin, got length {length}")
    if kernel.shape[-1] < 1:
        raise ValueError(f"kernel: expected at least one lag, got shape {tuple(kernel.shape)}")


def circular_kernel(kernel: torch.Tensor, backward: torch.Tensor | None, length: int,
                    dtype: torch.dtype) -> tuple[torch.Tensor, int]:
    """Eq. (1)'s kernel laid out for a circular convolution of size n on inputs of ``length`` bins:
    kernel (..., H, K) lags 0..K-1, backward (..., H, K') lags -1..-K' or None -> (full (..., H, n)
    with lag j at index j mod n, n)."""
    check_convolution_inputs(length, kernel)
    forward = kernel[..., :length].to(dtype)  # (..., H, K) with K <= L
    taps = 0 if backward is None else min(backward.shape[-1], length - 1)
    n = fft_size(length, forward.shape[-1], taps)
    full = F.pad(forward, (0, n - forward.shape[-1]))  # (..., H, n): lag j at index j
    if taps:
        back = backward[..., :taps].to(dtype).flip(-1)  # (..., H, K'): lags -K' .. -1
        full = full + F.pad(back, (n - taps, 0))  # (..., H, n): lag -j at index n - j
    return full, n


class _SpectralConvolution(torch.autograd.Function):
    """y = irfft(rfft(u, n) rfft(full, n), n)[..., :L], with the adjoint written out: autograd's own
    backward of ``rfft`` is a full-length complex FFT plus zero-filled copies (2.5x the time of the
    forward rfft in a profile of the Lorenz training step); the adjoints below are one real FFT
    pair each, and the kernel's is reduced over the batch before its inverse transform.

    d/du_s = sum_t g_t full[(t - s) mod n]    = irfft(G conj(K))[s]
    d/dfull_j = sum_t g_t u[(t - j) mod n]    = irfft(sum over batch of G conj(U))[j]
    """

    @staticmethod
    def forward(ctx: Any, u: torch.Tensor, full: torch.Tensor, n: int) -> torch.Tensor:
        u_hat = torch.fft.rfft(u, n=n)  # (..., H, n//2 + 1)
        k_hat = torch.fft.rfft(full, n=n)  # (..., H, n//2 + 1)
        ctx.save_for_backward(u_hat, k_hat)
        ctx.n, ctx.u_shape, ctx.k_shape = n, u.shape, full.shape
        return torch.fft.irfft(u_hat * k_hat, n=n)[..., : u.shape[-1]]  # (..., H, L)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:
        u_hat, k_hat = ctx.saved_tensors
        g_hat = torch.fft.rfft(grad, n=ctx.n)  # (..., H, n//2 + 1): the gradient zero-padded to n
        grad_u = grad_full = None
        if ctx.needs_input_grad[0]:
            grad_u = torch.fft.irfft(g_hat * k_hat.conj(), n=ctx.n)[..., : ctx.u_shape[-1]]
            grad_u = grad_u.sum_to_size(ctx.u_shape)  # (..., H, L)
        if ctx.needs_input_grad[1]:
            grad_full = torch.fft.irfft((g_hat * u_hat.conj()).sum_to_size(k_hat.shape), n=ctx.n)
            grad_full = grad_full.sum_to_size(ctx.k_shape)  # (..., H, n)
        return grad_u, grad_full, None


def spectral_convolution(u: torch.Tensor, full: torch.Tensor, n: int) -> torch.Tensor:
    """Eq. (1) from a :func:`circular_kernel`: u (..., H, L) in full's dtype -> (..., H, L)."""
    return _SpectralConvolution.apply(u, full, n)


def fft_convolution(u: torch.Tensor, kernel: torch.Tensor, backward: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. (1): u (..., H, L), kernel (..., H, K) lags 0..K-1, backward (..., H, K') lags -1..-K' or
    None (causal) -> y (..., H, L) in u's dtype.

    Kernels broadcast against u's leading dimensions ((H, K) for one kernel per channel, (B, H, K)
    for one per trial); taps beyond the input length cannot reach any output and are ignored.
    Half-precision inputs are computed in float32 (half-precision FFTs need power-of-two sizes).
    """
    check_convolution_inputs(u.shape[-1], kernel)
    dtype = torch.promote_types(torch.promote_types(u.dtype, kernel.dtype), torch.float32)
    full, n = circular_kernel(kernel, backward, u.shape[-1], dtype)
    return spectral_convolution(u.to(dtype), full, n).to(u.dtype)  # (..., H, L)
