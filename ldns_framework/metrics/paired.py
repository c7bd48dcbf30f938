"""Paired comparisons of two sets of values (per neuron, per pair, per bin): Pearson r and RMSE.

Every metric's headline comparison ends in one of these, so each is written once. Pearson r is
NaN-safe and matches the reference's ``np.corrcoef(a, b)[0, 1]`` (LDNS_NOTES.md section 4.3:
per-neuron mean and std ISI, correlation entries, population count density).
"""

from __future__ import annotations

import numpy as np


def _paired(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"expected paired values, got {a.size} and {b.size}")
    return a, b


def pearson_r(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r over the positions where both ``a`` and ``b`` are finite.

    NaN (undefined, not an error) when fewer than two such positions remain or when either
    side is constant over them: its spread is at most ``1e-12`` of its largest magnitude,
    so values equal up to rounding (e.g. correlations that are all 1) count as constant.
    Symmetric in its arguments.
    """
    a, b = _paired(a, b)
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


def rmse(a: np.ndarray, b: np.ndarray, *, finite_only: bool = False) -> float:
    """``sqrt(mean((a - b) ** 2))`` over all paired entries; NaN when there is none.

    Any NaN entry makes the result NaN, unless ``finite_only``: then only the positions finite
    on both sides count (the reference's ``rmse_nan`` for ISIs, where a neuron without enough
    ISIs is NaN). Symmetric in its arguments.
    """
    a, b = _paired(a, b)
    if finite_only:
        keep = np.isfinite(a) & np.isfinite(b)
        a, b = a[keep], b[keep]
    return float(np.sqrt(np.mean((a - b) ** 2))) if a.size else float("nan")


def _constant(values: np.ndarray) -> bool:
    """True when the spread of ``values`` is zero up to float rounding."""
    return bool(np.ptp(values) <= 1e-12 * np.max(np.abs(values)))
