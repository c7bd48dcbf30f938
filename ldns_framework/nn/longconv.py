"""Eq. (1) of ldns_framework.nn.fftconv by the faster of two exact methods, prepared once per length.

Up to :data:`DIRECT_MAX_LENGTH` bins, with at least :data:`DIRECT_MIN_BATCH` trials per call, the
convolution is one batched matrix product per channel with the kernel's Toeplitz matrix (O(L^2) multiply-adds, but done by the GEMM at near-peak rate);
beyond it by FFT (O(L log L), but the transforms, the complex products and their gradients move
several times the input's bytes at a few GFLOP/s). Forward and backward pass, bidirectional, one
thread (the ``conv`` rows of ``make bench``, benchmarks/results/2026-11-25-intel-xeon-2cores-2.json,
a loaded 2-core CPU): at H 256, batch 64 the Toeplitz product took 0.61x the FFT's time at L = 128,
0.71x at L = 256 and 1.70x at L = 512; at the denoiser's H 64, batch 512, L 256, 0.44x. The matrix
is a fixed cost per call (built, and with gradients differentiated, once per training step; read
once per eval call), so small batches take the FFT: in an ad-hoc measurement at H = L = 256 a
training pass at batch 32 took 2.3x the FFT's time and one at batch 64 0.73x; in eval mode with the
matrix cached (quiet machine, one thread, H 64 and 256): 2.8x and 1.6x at batch 16, 0.54x and 0.48x
at batch 64 (the ``conv`` row at batch 32 and the ``encode`` row at batch 1 of ``make bench`` check
these choices). Those L = 256 figures came from a heavily loaded machine (load 5.9 on 2 cores); on
quieter runs the same ``conv`` row read 1.09x, 1.29x and 1.37x the FFT's time at batch 64
(benchmarks/results/2026-11-25-intel-xeon-2cores-4.json, 2026-11-26-intel-xeon-2cores.json and
-2), while L = 128 stayed at 0.57-0.87x, and whole training steps at batch 64, alternated, agreed
(Lorenz denoiser, L 256: 0.14-0.17 s by FFT against 0.19-0.20 s by Toeplitz product; monkey
autoencoder, L 140: 0.51 s against 0.47 s). So with gradients, inputs longer than
:data:`DIRECT_LONG` bins need more trials; at batch 128 the product stays ahead (the Lorenz
autoencoder step took 0.93x the FFT step's time).

Toeplitz form: with w (H, 2L - 1) the taps for lags -(L-1) .. L-1 (zero where a kernel is shorter),
U[h, i, j] = w[h, i + j] holds lag i + j - (L - 1), so with the input reversed in time, u'_j = u_{L-1-j},

    y_t = sum_j U[t, j] u'_j  =  sum_s lag(t - s) u_s,

which is Eq. (1). U is ``w.unfold`` made contiguous: one copy of H L^2 values, and its gradient is
the sum along U's anti-diagonals (``unfold``'s backward), so no index scatter is needed.
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F

from ldns_framework.nn.fftconv import check_convolution_inputs, circular_kernel, spectral_convolution

__all__ = ["DIRECT_LONG", "DIRECT_MAX_LENGTH", "DIRECT_MIN_BATCH", "METHODS", "ConvolutionOperator", "auto_method",
           "convolution_operator", "long_convolution"]

#: Longest input for which "auto" uses the Toeplitz product (measured crossover, module docstring).
DIRECT_MAX_LENGTH = 256
#: Fewest trials per call for which "auto" uses the Toeplitz product, (with gradients, without):
#: building and reading the H L^2 matrix is a fixed cost that a small batch does not repay.
DIRECT_MIN_BATCH = (64, 32)
#: (length, trials): with gradients, inputs longer than ``length`` bins take the Toeplitz product
#: only from ``trials`` trials per call (module docstring).
DIRECT_LONG = (160, 128)
METHODS = ("auto", "direct", "fft")


def auto_method(length: int, batch: int | None, per_channel: bool = True, grad: bool | None = None) -> str:
    """What "auto" picks for ``batch`` trials (None: any) of ``length`` bins: "direct" for short inputs,
    per-channel kernels and enough trials (:data:`DIRECT_MIN_BATCH`, by whether gradients are on, and
    :data:`DIRECT_LONG`), else "fft"."""
    grad = torch.is_grad_enabled() if grad is None else grad
    min_batch = DIRECT_MIN_BATCH[0] if grad else DIRECT_MIN_BATCH[1]
    if grad and length > DIRECT_LONG[0]:
        min_batch = DIRECT_LONG[1]
    if per_channel and length <= DIRECT_MAX_LENGTH and (batch is None or batch >= min_batch):
        return "direct"
    return "fft"


@attrs.frozen(eq=False)
class ConvolutionOperator:
    """Eq. (1) for inputs of ``length`` bins: ``weights`` is the Toeplitz matrix U (H, L, L) for
    ``method == "direct"``, the kernel by circular lag (..., H, n) for an FFT of size ``n`` for ``"fft"``."""

    method: str
    length: int
    weights: torch.Tensor
    n: int = 0

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        """u (..., H, L) -> y (..., H, L) in u's dtype."""
        if u.shape[-1] != self.length:
            raise ValueError(f"u: expected {self.length} time bins (the operator's length), got shape {tuple(u.shape)}")
        wide = u.to(self.weights.dtype)
        if self.method == "fft":
            return spectral_convolution(wide, self.weights, self.n).to(u.dtype)  # (..., H, L)
        channels, length = u.shape[-2:]
        reversed_time = wide.reshape(-1, channels, length).flip(-1).transpose(0, 1)  # (H, B, L): u'_j = u_{L-1-j}
        y = torch.matmul(reversed_time, self.weights.transpose(-1, -2))  # (H, B, L): y_t = sum_j U[t, j] u'_j
        return y.transpose(0, 1).reshape(u.shape).to(u.dtype)  # (..., H, L)


def convolution_operator(kernel: torch.Tensor, backward: torch.Tensor | None, length: int, *,
                         method: str = "auto", dtype: torch.dtype = torch.float32,
                         batch: int | None = None) -> ConvolutionOperator:
    """Prepare Eq. (1) for ``length`` bins: kernel (..., H, K) lags 0..K-1, backward (..., H, K')
    lags -1..-K' or None, computed in ``dtype`` (float32 or wider). ``method``: "direct" (Toeplitz
    product; per-channel kernels (H, K) only), "fft", or "auto" (:func:`auto_method` for ``batch``
    trials per call)."""
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    check_convolution_inputs(length, kernel)
    per_channel = kernel.dim() == 2 and (backward is None or backward.dim() == 2)
    if method == "auto":
        method = auto_method(length, batch, per_channel)
    if method == "fft":
        full, n = circular_kernel(kernel, backward, length, dtype)
        return ConvolutionOperator("fft", length, full, n)
    if not per_channel:
        raise ValueError(f"kernel: the direct method takes one kernel per channel (H, K), got shape {tuple(kernel.shape)}")
    forward = kernel[:, :length].to(dtype)  # (H, K), lags 0..K-1
    past = F.pad(forward, (0, length - forward.shape[-1]))  # (H, L): lags 0..L-1
    future = kernel.new_zeros(kernel.shape[0], length - 1, dtype=dtype)  # (H, L-1): lags -(L-1)..-1
    if backward is not None:
        taps = backward[:, : length - 1].to(dtype)  # (H, K'), lags -1..-K'
        future = F.pad(taps, (0, length - 1 - taps.shape[-1])).flip(-1)  # (H, L-1): lags -(L-1)..-1
    taps_by_lag = torch.cat([future, past], dim=-1)  # (H, 2L-1): lags -(L-1)..L-1
    return ConvolutionOperator("direct", length, taps_by_lag.unfold(-1, length, 1).contiguous())  # (H, L, L)


def long_convolution(u: torch.Tensor, kernel: torch.Tensor, backward: torch.Tensor | None = None, *,
                     method: str = "auto") -> torch.Tensor:
    """Eq. (1) of fftconv by ``method`` (see :func:`convolution_operator`): u (..., H, L) -> (..., H, L)
    in u's dtype; float16/bfloat16 inputs are computed in float32."""
    dtype = torch.promote_types(torch.promote_types(u.dtype, kernel.dtype), torch.float32)
    batch = u[..., 0, 0].numel()
    return convolution_operator(kernel, backward, u.shape[-1], method=method, dtype=dtype, batch=batch)(u)
