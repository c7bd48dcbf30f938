"""A compact bidirectional S4D layer: the denoiser's time mixer (METHOD.md Sec. 3).

Gu et al. 2022, "On the Parameterization and Initialization of Diagonal State Space Models". Each
of the H channels is a diagonal linear state-space model with N/2 complex modes (their conjugates
are implicit, hence the factor 2 Re below) discretised by zero-order hold with a learned step dt.
Unrolled, it is a convolution with the kernel

    K[l] = 2 Re( sum_n C_n (exp(dt A_n) - 1) / A_n * exp(dt A_n l) ),   l = 0 .. L-1,

which is computed for whatever length L the input has, so the layer is length-agnostic: a
denoiser trained on 256 bins samples 512 (LDNS_NOTES 1.8). The LDNS denoisers are all
bidirectional (LDNS_NOTES 1.5): a second kernel with its own C (A and dt shared) reads strictly
future bins. The convolution runs by FFT over 2L points, so it is linear, not circular.

Channels-first inside this module: (B, H, L).
"""

from __future__ import annotations

import contextlib
import math
from typing import Iterator

import torch
from torch import nn

__all__ = ["S4D", "cached_kernels", "convolve", "convolve_direct"]


class S4D(nn.Module):
    """Diagonal S4 layer, u (B, H, L) -> y (B, H, L); bidirectional by default, S4D-Lin init."""

    def __init__(self, channels: int, *, state_size: int = 64, bidirectional: bool = True,
                 dt_min: float = 1e-3, dt_max: float = 1e-1) -> None:
        super().__init__()
        if state_size < 2 or state_size % 2:
            raise ValueError(f"state_size: expected an even int >= 2 (conjugate pairs), got {state_size}")
        modes = state_size // 2
        directions = 2 if bidirectional else 1
        log_dt = math.log(dt_min) + torch.rand(channels) * (math.log(dt_max) - math.log(dt_min))  # (H,)
        self.log_dt = nn.Parameter(log_dt)  # log-uniform step sizes
        self.log_neg_real = nn.Parameter(torch.full((channels, modes), math.log(0.5)))  # (H, N/2): Re A = -exp(.) < 0
        self.imag = nn.Parameter(math.pi * torch.arange(modes, dtype=torch.float32).repeat(channels, 1))  # (H, N/2)
        c = torch.randn(directions, channels, modes, dtype=torch.cfloat)  # (dir, H, N/2)
        self.c = nn.Parameter(torch.view_as_real(c))  # (dir, H, N/2, 2): complex stored as real pairs
        self.d = nn.Parameter(torch.randn(channels))  # (H,) skip connection
        self._cache: dict[int, torch.Tensor] | None = None  # length -> kernel, only inside cached_kernels()

    def kernel(self, length: int) -> torch.Tensor:
        """Real kernels (dir, H, L): [0] causal lags 0..L-1, [1] (bidirectional) future lags 1..L."""
        if self._cache is not None and length in self._cache:
            return self._cache[length]
        a = torch.complex(-self.log_neg_real.exp(), self.imag)  # (H, N/2)
        dt_a = self.log_dt.exp()[:, None] * a  # (H, N/2)
        c = torch.view_as_complex(self.c) * (torch.exp(dt_a) - 1) / a  # (dir, H, N/2): ZOH input matrix folded in
        powers = _powers(dt_a, length)  # (H, N/2, L): exp(dt A l)
        kernel = 2 * torch.einsum("dhn,hnl->dhl", c, powers).real  # (dir, H, L)
        if self._cache is not None:
            self._cache[length] = kernel
        return kernel

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """u (B, H, L) -> (B, H, L), computed in float32 (half-precision FFTs need power-of-two sizes)."""
        with torch.autocast(u.device.type, enabled=False):
            x = u.float()  # (B, H, L)
            y = convolve(x, self.kernel(u.shape[-1]), self.d)  # (B, H, L)
        return y.to(u.dtype)


def _powers(dt_a: torch.Tensor, length: int) -> torch.Tensor:
    """exp(dt_a l) for l = 0 .. L-1, dt_a (H, N/2) complex -> (H, N/2, L).

    Complex exps dominate the kernel's cost, so l = m s + r is split with s ~ sqrt(L):
    exp(dt_a m s) exp(dt_a r) takes 2 sqrt(L) exps and one product per entry instead of L exps.
    """
    step = max(1, math.isqrt(length))  # s
    rows = -(-length // step)  # ceil(L / s)
    coarse = torch.exp(dt_a[..., None] * (step * torch.arange(rows, device=dt_a.device)))  # (H, N/2, rows)
    fine = torch.exp(dt_a[..., None] * torch.arange(step, device=dt_a.device))  # (H, N/2, s)
    return (coarse[..., :, None] * fine[..., None, :]).flatten(-2)[..., :length]  # (H, N/2, L)


def convolve(u: torch.Tensor, kernel: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """u (B, H, L), kernel (dir, H, L), skip (H,) -> y (B, H, L) by FFT:

    y_t = sum_{s <= t} K0[t - s] u_s + sum_{s > t} K1[s - t - 1] u_s + D u_t  (the K1 term when dir = 2).
    """
    length = u.shape[-1]
    parts = [kernel[0], kernel.new_zeros(kernel.shape[1], 1)]  # (H, L), (H, 1): lags 0..L-1, then lag +-L
    if kernel.shape[0] == 2:
        parts.append(kernel[1, :, : length - 1].flip(-1))  # (H, L-1): index 2L-j holds K1[j-1], lag -j
    full = torch.cat(parts, dim=-1)  # (H, 2L) or (H, L+1); rfft zero-pads to 2L
    spectrum = torch.fft.rfft(u, n=2 * length) * torch.fft.rfft(full, n=2 * length)  # (B, H, L+1)
    return torch.fft.irfft(spectrum, n=2 * length)[..., :length] + skip[:, None] * u  # (B, H, L)


def convolve_direct(u: torch.Tensor, kernel: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """The map of :func:`convolve` as an explicit O(L^2) sum: the reference for tests."""
    length = u.shape[-1]
    y = skip[:, None] * u  # (B, H, L)
    for t in range(length):
        for s in range(length):
            if s <= t:
                y[..., t] += kernel[0, :, t - s] * u[..., s]
            elif kernel.shape[0] == 2:
                y[..., t] += kernel[1, :, s - t - 1] * u[..., s]
    return y


@contextlib.contextmanager
def cached_kernels(module: nn.Module) -> Iterator[None]:
    """Within the block, every S4D in ``module`` computes its kernel once per length.

    For sampling only (fixed weights, no_grad): a 1000-step sampler otherwise rebuilds the same
    kernels 1000 times. The caches are dropped on exit.
    """
    layers = [m for m in module.modules() if isinstance(m, S4D)]
    for layer in layers:
        layer._cache = {}
    try:
        yield
    finally:
        for layer in layers:
            layer._cache = None
