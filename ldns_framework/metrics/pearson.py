"""NaN-safe Pearson correlation between two sets of paired values.

Used for the Lorenz reference statistics (LDNS_NOTES.md section 4.3: Pearson r between
data and model values of per-neuron mean ISI, std ISI, correlation entries and population
count density), which the reference computes with ``np.corrcoef(a, b)[0, 1]``.
"""

from __future__ import annotations

import numpy as np


def pearson_r(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r over the positions where both ``a`` and ``b`` are finite.

    NaN (undefined, not an error) when fewer than two such positions remain or when either
    side is constant over them: its spread is at most ``1e-12`` of its largest magnitude,
    so values equal up to rounding (e.g. correlations that are all 1) count as constant.
    Symmetric in its arguments.
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"expected paired values, got {a.size} and {b.size}")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if a.size < 2 or _constant(a) or _constant(b):
        return float("nan")
    a = a - a.mean()
    b = b - b.mean()
    denominator = np.sqrt(np.sum(a * a) * np.sum(b * b))
    if not denominator > 0:
        return float("nan")
    return float(np.clip(np.sum(a * b) / denominator, -1.0, 1.0))


def _constant(values: np.ndarray) -> bool:
    """True when the spread of ``values`` is zero up to float rounding."""
    return bool(np.ptp(values) <= 1e-12 * np.max(np.abs(values)))
