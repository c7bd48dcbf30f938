"""S4D: a diagonal state-space layer applied as one long convolution.

Gu et al. 2022, "On the Parameterization and Initialization of Diagonal State Space Models"; the
LDNS autoencoder's time mixer (Kapoor, Schulz et al. 2024, Sec. 3.1 and App. A; the reference
uses the DPLR form of S4, of which the diagonal form is the faster modern equivalent).

Each channel h runs x' = A x + B u, y = Re(C x) + D u with a complex diagonal A of N/2 modes (the
conjugate modes are implicit, hence the 2 Re below; B = 1 is folded into C). Zero-order-hold
discretisation with step dt gives, for any length L, the kernel

    K[l] = 2 Re( sum_n C_n (exp(dt A_n) - 1) / A_n * exp(dt A_n)^l ),   l = 0 .. L-1,

one Vandermonde product with nothing cached for a maximum length. The convolution runs by FFT,
zero padded to 2L so that it is linear rather than circular. A bidirectional layer adds a
second, flipped kernel (its own C; A and dt are shared, as in the reference) that reads strictly
future inputs. Tensors are channels-first inside this module: (B, H, L) with H channels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["S4D", "direct_convolution", "fft_convolution"]

INITS = ("lin", "inv")


def _init_a_imag(init: str, state_size: int, channels: int) -> torch.Tensor:
    """Imaginary parts of A, (H, N/2): S4D-Lin (pi n) or S4D-Inv, both approximations of HiPPO-LegS."""
    n = torch.arange(state_size // 2, dtype=torch.float32)  # (N/2,)
    if init == "lin":
        imag = math.pi * n
    elif init == "inv":
        imag = state_size / math.pi * (state_size / (2 * n + 1) - 1)
    else:
        raise ValueError(f"init: expected one of {INITS}, got {init!r}")
    return imag.expand(channels, -1).clone()  # (H, N/2)


class S4D(nn.Module):
    """Diagonal S4 layer, (B, H, L) -> (B, H, L); causal unless ``bidirectional``."""

    def __init__(self, channels: int, *, state_size: int = 64, bidirectional: bool = True,
                 dt_min: float = 1e-3, dt_max: float = 1e-1, init: str = "lin") -> None:
        super().__init__()
        if state_size < 2 or state_size % 2:
            raise ValueError(f"state_size: expected an even int >= 2 (conjugate pairs), got {state_size}")
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"expected 0 < dt_min <= dt_max, got dt_min={dt_min}, dt_max={dt_max}")
        directions = 2 if bidirectional else 1
        log_dt = torch.rand(channels) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)  # (H,) log-uniform
        self.log_dt = nn.Parameter(log_dt)
        # Re(A) = -exp(log_a_real) < 0 keeps every mode stable whatever the optimiser does.
        self.log_a_real = nn.Parameter(torch.full((channels, state_size // 2), math.log(0.5)))  # (H, N/2)
        self.a_imag = nn.Parameter(_init_a_imag(init, state_size, channels))  # (H, N/2)
        c = torch.randn(directions, channels, state_size // 2, dtype=torch.cfloat)  # (dir, H, N/2)
        self.c = nn.Parameter(torch.view_as_real(c))  # (dir, H, N/2, 2): real storage for optimisers
        self.d = nn.Parameter(torch.randn(channels))  # (H,) skip term

    @property
    def bidirectional(self) -> bool:
        return self.c.shape[0] == 2

    def kernel(self, length: int) -> torch.Tensor:
        """Real kernels (dir, H, L): [0] forward (lags 0..L-1), [1] backward (bidirectional only)."""
        a = torch.complex(-self.log_a_real.exp(), self.a_imag)  # (H, N/2)
        dt_a = self.log_dt.exp()[:, None] * a  # (H, N/2)
        c = torch.view_as_complex(self.c) * (dt_a.exp() - 1.0) / a  # (dir, H, N/2): ZOH input term folded into C
        # Vandermonde factored as z^(b k + j) = z^(b k) z^j with b ~ sqrt(L): 2 sqrt(L) complex exps
        # per mode instead of L (the exps, not the product, dominate the cost; ~10x faster at L = 512).
        block = math.isqrt(max(length - 1, 0)) + 1  # b, with b^2 >= L
        inner = torch.exp(dt_a[..., None] * torch.arange(block, device=a.device))  # (H, N/2, b): powers j
        outer = torch.exp(dt_a[..., None] * torch.arange(0, length, block, device=a.device))  # (H, N/2, K): powers b k
        kernel = torch.einsum("dhnk,hnj->dhkj", c[..., None] * outer, inner)  # (dir, H, K, b): power b k + j
        return 2.0 * kernel.flatten(-2)[..., :length].real  # (dir, H, L)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """u (B, H, L) -> (B, H, L). Runs in float32 or wider: half-precision FFTs need power-of-two lengths."""
        with torch.autocast(u.device.type, enabled=False):
            wide = u.to(torch.promote_types(u.dtype, torch.float32))  # (B, H, L)
            y = fft_convolution(wide, self.kernel(u.shape[-1]), self.d)  # (B, H, L)
        return y.to(u.dtype)


def fft_convolution(u: torch.Tensor, kernel: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """u (B, H, L), kernel (dir, H, L), skip (H,) -> (B, H, L) by FFT, where

    y_t = sum_{s<=t} K0[t-s] u_s  +  sum_{s>t} K1[s-t-1] u_s  +  D u_t   (the K1 sum only when dir = 2).
    """
    length = u.shape[-1]
    k = F.pad(kernel[0], (0, length))  # (H, 2L): lags 0..L-1, zeros after so nothing wraps
    if kernel.shape[0] == 2:
        k = k + F.pad(kernel[1].flip(-1), (length, 0))  # (H, 2L): index 2L-1-j holds K1[j], i.e. lag -(j+1)
    spectrum = torch.fft.rfft(u, n=2 * length) * torch.fft.rfft(k, n=2 * length)  # (B, H, L+1)
    y = torch.fft.irfft(spectrum, n=2 * length)[..., :length]  # (B, H, L)
    return y + u * skip[:, None]


def direct_convolution(u: torch.Tensor, kernel: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """The same map as :func:`fft_convolution`, summed lag by lag in O(L^2): a reference for tests."""
    length = u.shape[-1]
    y = u * skip[:, None]  # (B, H, L)
    for lag in range(length):
        y[..., lag:] += kernel[0, :, lag, None] * u[..., : length - lag]  # input s = t - lag
        if kernel.shape[0] == 2:
            y[..., : length - lag - 1] += kernel[1, :, lag, None] * u[..., lag + 1:]  # input s = t + lag + 1
    return y
