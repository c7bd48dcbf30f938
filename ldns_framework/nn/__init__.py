"""Neural building blocks for plugin authors (public API; docs/nn.md).

- :class:`S4D`: the diagonal state-space layer (causal or bidirectional, with a kernel cache for
  eval/no-grad use), the time mixer of the built-in LDNS autoencoder and denoiser.
- :func:`fft_convolution`: causal or bidirectional long convolution along time by FFT, and
  :func:`fft_size`, the transform size that keeps it linear.

Channels first, like ``torch.nn.Conv1d``: (B, H, L). Components exchange (B, T, channels) tensors,
so a plugin transposes before and after these layers.
"""

from __future__ import annotations

from ldns_framework.nn.fftconv import fft_convolution, fft_size
from ldns_framework.nn.s4d import INITS, S4D, s4d_imag_init

__all__ = ["INITS", "S4D", "fft_convolution", "fft_size", "s4d_imag_init"]
