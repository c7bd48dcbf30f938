"""Neural building blocks for plugin authors (public API; docs/nn.md).

- :class:`S4D`: the diagonal state-space layer (causal or bidirectional, with a kernel cache for
  eval/no-grad use), the time mixer of the built-in LDNS autoencoder and denoiser.
- :func:`long_convolution`: causal or bidirectional long convolution along time by the faster exact
  method for the length and batch (a Toeplitz matrix product up to :data:`DIRECT_MAX_LENGTH` bins
  with at least :data:`DIRECT_MIN_BATCH` trials (:data:`DIRECT_LONG` for longer inputs with
  gradients), else FFT; :func:`auto_method`);
  :func:`convolution_operator` prepares it once (a :class:`ConvolutionOperator`) for reuse.
- :func:`fft_convolution`: the same convolution always by FFT, and :func:`fft_size`, the transform
  size that keeps it linear.
- :class:`PointwiseConv1d`: ``nn.Conv1d`` with kernel size 1 (the channel mixers), computed as a
  batched matrix product, which is faster than the convolution routine on a CPU.

Channels first, like ``torch.nn.Conv1d``: (B, H, L). Components exchange (B, T, channels) tensors,
so a plugin transposes before and after these layers.
"""

from __future__ import annotations

import importlib
from typing import Any

from ldns_framework.nn.inits import INITS

#: Public name -> the submodule defining it, imported on first use: importing the package (or its
#: torch-free ``inits``) does not import torch.
_EXPORTS = {
    "DIRECT_LONG": "longconv",
    "DIRECT_MAX_LENGTH": "longconv",
    "DIRECT_MIN_BATCH": "longconv",
    "ConvolutionOperator": "longconv",
    "auto_method": "longconv",
    "convolution_operator": "longconv",
    "long_convolution": "longconv",
    "fft_convolution": "fftconv",
    "fft_size": "fftconv",
    "PointwiseConv1d": "pointwise",
    "S4D": "s4d",
    "s4d_imag_init": "s4d",
}

__all__ = ["DIRECT_LONG", "DIRECT_MAX_LENGTH", "DIRECT_MIN_BATCH", "INITS", "S4D", "ConvolutionOperator", "PointwiseConv1d", "auto_method",
           "convolution_operator", "fft_convolution", "fft_size", "long_convolution", "s4d_imag_init"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
