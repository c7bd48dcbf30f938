"""Gaussian smoothing along time that never mixes padding into data.

Spikes are smoothed before decoding behaviour and PSTHs are smoothed before comparing them
(NWB_NOTES.md section 6: the NLB smooths spikes with a Gaussian). Variable-length trials
are right-padded, so a plain convolution would pull zeros from the padding into a trial's last
bins. :func:`smooth_time` is a normalised convolution instead: each output bin is the
kernel-weighted mean of the *valid* bins around it, so values at a trial's edges are
estimated from the data that exists, and padding stays 0.
"""

from __future__ import annotations

import math

import numpy as np

from ldns_framework.errors import DataError
from ldns_framework.metrics._arrays import trial_chunks


def gaussian_kernel(sigma_bins: float) -> np.ndarray:
    """Normalised Gaussian weights (2 * ceil(4 sigma) + 1,); ``[1.0]`` for sigma 0 (no smoothing)."""
    if not math.isfinite(sigma_bins) or sigma_bins < 0:
        raise DataError("sigma", f"expected a finite non-negative width in bins, got {sigma_bins!r}")
    if sigma_bins == 0:
        return np.ones(1)
    half = int(math.ceil(4 * sigma_bins))
    offsets = np.arange(-half, half + 1)
    kernel = np.exp(-0.5 * (offsets / sigma_bins) ** 2)
    return kernel / kernel.sum()


def smooth_time(values: np.ndarray, sigma_bins: float, valid: np.ndarray) -> np.ndarray:
    """``values`` (trials, time, channels) smoothed along time over the ``valid`` (trials, time) bins.

    Output bin ``t`` of a valid bin is ``sum_k w_k v[t-k] m[t-k] / sum_k w_k m[t-k]``; invalid
    bins are 0. Values on invalid bins are never read, so padding contents cannot change the result.
    The convolution is a (time, time) banded matrix product per chunk of trials (one 2-d BLAS
    product; a strided convolution along the middle axis, or a batched matmul, was 20x slower).
    """
    values = np.asarray(values)
    valid = np.asarray(valid, dtype=bool)
    if values.ndim != 3 or valid.shape != values.shape[:2]:
        raise DataError("values", f"expected (trials, time, channels) with a (trials, time) mask, got "
                                  f"{values.shape} and {valid.shape}")
    kernel = gaussian_kernel(float(sigma_bins))
    half = kernel.size // 2
    offsets = np.arange(values.shape[1])[:, None] - np.arange(values.shape[1])[None, :]  # (time, time): t - s
    band = np.where(np.abs(offsets) <= half, kernel[np.clip(offsets + half, 0, kernel.size - 1)], 0.0)
    out = np.zeros(values.shape, dtype=np.float64)
    for part in trial_chunks(values):
        mask = valid[part]  # (chunk, time)
        masked = np.where(mask[..., None], values[part], 0.0)  # padding (even NaN) never enters the sums
        with np.errstate(invalid="ignore", divide="ignore"):
            numerator = np.einsum("ts,isc->itc", band, masked, optimize=True)  # one 2-d BLAS product
            smoothed = numerator / (mask.astype(np.float64) @ band.T)[..., None]
        out[part] = np.where(mask[..., None], smoothed, 0.0)
    return out


def sigma_in_bins(sigma_ms: float, bin_width_s: float) -> float:
    """A smoothing width in milliseconds as a number of bins of ``bin_width_s`` seconds."""
    return float(sigma_ms) / (1000.0 * float(bin_width_s))
