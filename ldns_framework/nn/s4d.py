"""S4D: a diagonal state-space layer applied as one long convolution (METHOD.md Sec. 1).

Gu, Gupta, Goel & Re 2022, "On the Parameterization and Initialization of Diagonal State Space
Models"; the time mixer of the LDNS autoencoder and denoiser (Kapoor, Schulz et al. 2024, Sec. 3
and App. A; the reference uses the DPLR form of S4, of which the diagonal form is the faster
modern equivalent). Each of the H channels runs

    x'(t) = A x(t) + B u(t),   y(t) = 2 Re(C x(t)) + D u(t)                               (1)

with a complex diagonal A of N/2 modes (N = ``state_size``; the conjugate modes are implicit,
hence the 2 Re; B = 1 is folded into C) and Re A = -exp(log_a_real) < 0, so every mode is stable
whatever the optimiser does. Zero-order hold with a learned step dt (log-uniform init in
[dt_min, dt_max]) gives x_t = exp(dt A) x_{t-1} + (exp(dt A) - 1)/A u_t, and unrolling it turns
(1) into a convolution y = K * u + D u with, for any length L, the kernel

    K[l] = 2 Re( sum_n C_n (exp(dt A_n) - 1) / A_n * exp(dt A_n)^l ),   l = 0 .. L-1,        (2)

one Vandermonde product, nothing stored for a maximum length. A bidirectional layer adds a second
kernel K_back from Eq. (2) with its own C (A and dt shared, as in the reference) that reads strictly
future inputs, flipped: y_t = sum_{s<=t} K[t-s] u_s + sum_{s>t} K_back[s-t-1] u_s + D u_t
(:func:`ldns_framework.nn.fft_convolution`). Init of Im A (Re A = -1/2 for both), two diagonal
approximations of HiPPO-LegS: S4D-Lin ``"lin"``, Im A_n = pi n; S4D-Inv ``"inv"``,
Im A_n = N/pi (N/(2n+1) - 1).

The skip term D u is folded into the forward kernel's lag 0 (K[0] + D), so the layer is a single
convolution, done by :func:`ldns_framework.nn.longconv.convolution_operator`: a Toeplitz matrix
product for short inputs and large enough batches, else an FFT. The kernel and that operator are
computed once per forward call, so once per training step.

Kernel cache: in eval mode with gradients off (sampling, encoding) a layer computes its kernel and
its convolution operator (Toeplitz matrix or circular kernel) once per length and reuses them, so a
1000-step sampler does not rebuild the same kernels 1000 times. An entry is valid only while A, dt,
C and D are the very tensors it was computed from at the same version: an optimiser step, an EMA
update, ``load_state_dict`` or a device move invalidates it (each writes in place, which bumps the
tensor's version, or replaces the tensor). Writes through
``.data`` bypass the version counter: call :meth:`S4D.clear_cache` after them. In training
mode or with gradients on the kernel is always fresh and the cache is dropped.

Channels first, like ``torch.nn.Conv1d``: u (B, H, L) -> y (B, H, L).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ldns_framework.nn.inits import INITS
from ldns_framework.nn.longconv import ConvolutionOperator, auto_method, convolution_operator

__all__ = ["INITS", "S4D", "s4d_imag_init"]


#: Parameter names of an earlier copy of this layer (the LDNS denoiser's), mapped on
#: load so that run directories written with it still load.
_LEGACY_NAMES = {"log_neg_real": "log_a_real", "imag": "a_imag"}

#: Tensors the cached kernel (Eq. 2) and convolution operator (Eq. 2 plus the skip term d) depend on.
_KERNEL_TENSORS = ("log_dt", "log_a_real", "a_imag", "c", "d")


def s4d_imag_init(init: str, state_size: int) -> torch.Tensor:
    """Im A (N/2,) for S4D-Lin (pi n) or S4D-Inv (N/pi (N/(2n+1) - 1)), n = 0 .. N/2-1."""
    n = torch.arange(state_size // 2, dtype=torch.float32)  # (N/2,)
    if init == "lin":
        return math.pi * n
    if init == "inv":
        return state_size / math.pi * (state_size / (2 * n + 1) - 1)
    raise ValueError(f"init: expected one of {INITS}, got {init!r}")


def _complex_exp(z: torch.Tensor) -> torch.Tensor:
    """exp(z) = e^Re z (cos Im z + i sin Im z) from real exp, cos and sin, which torch vectorises on
    the CPU where its complex exp is not: the kernel's exps, forward and backward, 1.6x faster (ad hoc,
    H 128, 2 threads)."""
    return torch.polar(z.real.exp(), z.imag)


class S4D(nn.Module):
    """Diagonal S4 layer, Eq. (1)-(2): u (B, H, L) -> y (B, H, L); causal unless ``bidirectional``.

    Parameters: ``log_dt`` (H,), ``log_a_real`` (H, N/2) with Re A = -exp(.), ``a_imag`` (H, N/2),
    ``c`` (dir, H, N/2, 2) complex C stored as real pairs (dir = 2 when bidirectional), ``d`` (H,).
    """

    def __init__(self, channels: int, *, state_size: int = 64, bidirectional: bool = True,
                 dt_min: float = 1e-3, dt_max: float = 1e-1, init: str = "lin") -> None:
        super().__init__()
        if channels < 1:
            raise ValueError(f"channels: expected >= 1, got {channels}")
        if state_size < 2 or state_size % 2:
            raise ValueError(f"state_size: expected an even int >= 2 (conjugate pairs), got {state_size}")
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"dt_min: expected 0 < dt_min <= dt_max, got dt_min={dt_min}, dt_max={dt_max}")
        a_imag = s4d_imag_init(init, state_size)  # (N/2,)
        directions = 2 if bidirectional else 1
        log_dt = torch.rand(channels) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)  # (H,) log-uniform
        self.log_dt = nn.Parameter(log_dt)
        self.log_a_real = nn.Parameter(torch.full((channels, state_size // 2), math.log(0.5)))  # (H, N/2): Re A = -1/2
        self.a_imag = nn.Parameter(a_imag.expand(channels, -1).clone())  # (H, N/2)
        c = torch.randn(directions, channels, state_size // 2, dtype=torch.cfloat)  # (dir, H, N/2)
        self.c = nn.Parameter(torch.view_as_real(c))  # (dir, H, N/2, 2): real storage for optimisers
        self.d = nn.Parameter(torch.randn(channels))  # (H,) skip term
        self._cache: dict[int, torch.Tensor] = {}  # length -> kernel (dir, H, L), valid for _cache_stamp
        self._operators: dict[tuple[int, str], ConvolutionOperator] = {}  # (length, method) -> operator
        self._cache_stamp: tuple[tuple[torch.Tensor, int], ...] = ()

    @property
    def bidirectional(self) -> bool:
        return self.c.shape[0] == 2

    @property
    def a(self) -> torch.Tensor:
        """The diagonal of A, (H, N/2) complex, Re A < 0."""
        return torch.complex(-self.log_a_real.exp(), self.a_imag)  # (H, N/2)

    def kernel(self, length: int) -> torch.Tensor:
        """Real kernels of Eq. (2), (dir, H, L): [0] forward (lags 0..L-1), [1] backward (bidirectional
        only; lags -1..-L). Cached per length in eval mode with gradients off (module docstring)."""
        if length < 1:
            raise ValueError(f"length: expected >= 1, got {length}")
        if not self._use_cache():
            return self._compute_kernel(length)
        if length not in self._cache:
            self._cache[length] = self._compute_kernel(length)
        return self._cache[length]

    def operator(self, length: int, batch: int | None = None) -> ConvolutionOperator:
        """The layer as one convolution on ``length`` bins for ``batch`` trials per call (the method
        depends on both: :func:`ldns_framework.nn.longconv.auto_method`), Eq. (2) with D added at
        lag 0; cached like :meth:`kernel`."""
        method = auto_method(length, batch)
        if not self._use_cache():
            return self._compute_operator(length, method)
        if (length, method) not in self._operators:
            self._operators[length, method] = self._compute_operator(length, method)
        return self._operators[length, method]

    def clear_cache(self) -> None:
        """Drop the cached kernels (needed only after writing the parameters through ``.data``)."""
        self._cache = {}
        self._operators = {}
        self._cache_stamp = ()

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """u (B, H, L) -> (B, H, L). Runs in float32 or wider: half-precision FFTs need power-of-two lengths."""
        with torch.autocast(u.device.type, enabled=False):
            y = self.operator(u.shape[-1], u.shape[0])(u)  # (B, H, L), computed in float32 or wider
        return y

    def _use_cache(self) -> bool:
        """Whether the cache applies now (eval, no grad); drops it when not or when it went stale."""
        if self.training or torch.is_grad_enabled():
            self.clear_cache()
            return False
        if not self._cache_is_valid():
            self.clear_cache()
            self._cache_stamp = tuple((t.detach(), t._version) for t in self._kernel_tensors())
        return True

    def _compute_operator(self, length: int, method: str) -> ConvolutionOperator:
        kernel = self.kernel(length)  # (dir, H, L)
        forward = torch.cat([kernel[0, :, :1] + self.d[:, None].to(kernel.dtype), kernel[0, :, 1:]], dim=-1)  # (H, L)
        backward = kernel[1] if self.bidirectional else None  # (H, L)
        return convolution_operator(forward, backward, length, method=method,
                                    dtype=torch.promote_types(kernel.dtype, torch.float32))

    def _kernel_tensors(self) -> tuple[torch.Tensor, ...]:
        # getattr, not parameters(): a copy may hold them as buffers (an EMA of the weights).
        return tuple(getattr(self, name) for name in _KERNEL_TENSORS)

    def _cache_is_valid(self) -> bool:
        """The cache was filled from these very tensors (same storage: the stamp keeps it alive, so an
        address cannot be reused) at their current version (every in-place write bumps it)."""
        stamp = self._cache_stamp
        return bool(stamp) and all(
            t.data_ptr() == ref.data_ptr() and t._version == version
            for t, (ref, version) in zip(self._kernel_tensors(), stamp))

    def _compute_kernel(self, length: int) -> torch.Tensor:
        """Eq. (2) for lags 0..L-1, both directions at once -> (dir, H, L)."""
        a = self.a  # (H, N/2)
        dt_a = self.log_dt.exp()[:, None] * a  # (H, N/2)
        c = torch.view_as_complex(self.c) * (dt_a.exp() - 1.0) / a  # (dir, H, N/2): ZOH input term folded into C
        # Vandermonde factored as z^(b k + j) = z^(b k) z^j with b ~ sqrt(L): 2 sqrt(L) complex exps
        # per mode instead of L (the exps, not the product, dominate the cost; ~10x faster at L = 512).
        block = math.isqrt(length - 1) + 1  # b, with b^2 >= L
        inner = _complex_exp(dt_a[..., None] * torch.arange(block, device=a.device))  # (H, N/2, b): powers j
        outer = _complex_exp(dt_a[..., None] * torch.arange(0, length, block, device=a.device))  # (H, N/2, K): powers b k
        kernel = torch.einsum("dhnk,hnj->dhkj", c[..., None] * outer, inner)  # (dir, H, K, b): power b k + j
        return 2.0 * kernel.flatten(-2)[..., :length].real  # (dir, H, L)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        for old, new in _LEGACY_NAMES.items():
            if prefix + old in state_dict and prefix + new not in state_dict:
                state_dict[prefix + new] = state_dict.pop(prefix + old)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
