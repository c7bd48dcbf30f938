"""Long convolutions along time by FFT, causal or bidirectional, linear (never circular).

For an input u (..., H, L) and per-channel kernels, :func:`fft_convolution` returns

    y_t = sum_{s <= t} K[t - s] u_s  +  sum_{s > t} K_back[s - t - 1] u_s,     t = 0 .. L-1,   (1)

the second sum only when a backward kernel is given. K holds lags 0, 1, 2, ... (the present and
the past: a causal filter); K_back holds lags -1, -2, ... (strictly the future). Equation (1) is a
linear convolution with a kernel supported on lags -(L-1) .. L-1; a circular convolution of size
n computes it exactly when no lag wraps onto another, i.e. when n >= L + max(len(K) - 1, len(K_back))
(at most 2L - 1). The transform size is the next length >= that bound that the FFT does fast
(only factors 2, 3 and 5; ``scipy.fft.next_fast_len``), so the cost is O(L log L) instead of the
O(L^2) of the direct sum.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["fft_convolution", "fft_size"]


def fft_size(length: int, forward_lags: int, backward_lags: int = 0) -> int:
    """Smallest fast FFT size n for Eq. (1) on ``length`` bins with kernels of ``forward_lags``
    (lags 0..forward_lags-1) and ``backward_lags`` (lags -1..-backward_lags) taps, so that the
    circular convolution of size n equals the linear one on the first ``length`` outputs."""
    if length < 1 or forward_lags < 1 or backward_lags < 0:
        raise ValueError(f"fft_size: expected length >= 1, forward_lags >= 1, backward_lags >= 0, "
                         f"got {length}, {forward_lags}, {backward_lags}")
    from scipy.fft import next_fast_len  # here, not at import: scipy.fft adds ~0.1 s to every start-up

    reach = max(min(forward_lags, length) - 1, min(backward_lags, length - 1))  # farthest lag that matters
    return next_fast_len(length + reach, real=True)


def fft_convolution(u: torch.Tensor, kernel: torch.Tensor, backward: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. (1): u (..., H, L), kernel (..., H, K) lags 0..K-1, backward (..., H, K') lags -1..-K' or
    None (causal) -> y (..., H, L) in u's dtype.

    Kernels broadcast against u's leading dimensions ((H, K) for one kernel per channel, (B, H, K)
    for one per trial); taps beyond the input length cannot reach any output and are ignored.
    Half-precision inputs are computed in float32 (half-precision FFTs need power-of-two sizes).
    """
    length = u.shape[-1]
    if length < 1:
        raise ValueError(f"u: expected at least one time bin, got shape {tuple(u.shape)}")
    if kernel.shape[-1] < 1:
        raise ValueError(f"kernel: expected at least one lag, got shape {tuple(kernel.shape)}")
    dtype = torch.promote_types(torch.promote_types(u.dtype, kernel.dtype), torch.float32)
    forward = kernel[..., :length].to(dtype)  # (..., H, K) with K <= L
    taps = 0 if backward is None else min(backward.shape[-1], length - 1)
    n = fft_size(length, forward.shape[-1], taps)
    full = F.pad(forward, (0, n - forward.shape[-1]))  # (..., H, n): lag j at index j
    if taps:
        back = backward[..., :taps].to(dtype).flip(-1)  # (..., H, K'): lags -K' .. -1
        full = full + F.pad(back, (n - taps, 0))  # (..., H, n): lag -j at index n - j
    spectrum = torch.fft.rfft(u.to(dtype), n=n) * torch.fft.rfft(full, n=n)  # (..., H, n//2 + 1)
    return torch.fft.irfft(spectrum, n=n)[..., :length].to(u.dtype)  # (..., H, L)
