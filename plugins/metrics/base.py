"""Helpers private to the built-in metric plugins: trial weights, time units, ``describe`` entries.

The pooled-metric protocol itself is :class:`ldns_framework.PooledMetric`; the numbers come
from :mod:`ldns_framework.metrics`. What is left here is how these plugins read a fold's
trial weights, pick their time unit and declare their values.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ldns_framework import SpikeData, metrics, option


def time_unit_option(choices: str) -> Any:
    """The ``time_unit`` config field; ``choices`` says what 'seconds' and 'bins' give, e.g.
    "Rates in Hz ('seconds') or spikes per bin ('bins')"."""
    return option("auto", doc=f"{choices}, or 'auto': bins when the data's metadata says isi_unit: bins "
                              f"(Lorenz), else seconds.", choices=metrics.TIME_UNITS)


class TimeUnit:
    """Mixin for a metric with a :func:`time_unit_option`: its context is the resolved unit."""

    config: Any

    def prepare(self, data: SpikeData) -> str:
        """``"seconds"`` or ``"bins"`` (``auto``: from the data's metadata)."""
        return metrics.resolve_time_unit(self.config.time_unit, data.metadata)

    def unit(self, quantity: str, context: str | None) -> str:
        """Label of a ``"time"`` or ``"rate"`` value in the context's unit (or the option's, before any data)."""
        return metrics.unit_label(quantity, context or self.config.time_unit)


def check_weights(weights: np.ndarray, n_trials: int) -> np.ndarray:
    """``weights`` as int64 (trials,), checked to be non-negative integers (trial multiplicities)."""
    weights = np.asarray(weights)
    if weights.shape != (n_trials,):
        raise ValueError(f"weights: expected one weight per trial, shape ({n_trials},), got {weights.shape}")
    if weights.size and (weights.min() < 0 or not np.array_equal(weights, np.round(weights))):
        raise ValueError("weights: expected non-negative integer trial weights (multiplicities)")
    return weights.astype(np.int64)


def resample_index(weights: np.ndarray) -> np.ndarray:
    """Trial indices of the multiset: trial ``i`` repeated ``weights[i]`` times (in trial order)."""
    return np.repeat(np.arange(weights.size), weights)


def lower_better(names: tuple[str, ...], unit: str) -> dict[str, dict[str, str]]:
    """``describe`` entries for lower-is-better values sharing one unit."""
    return {name: {"unit": unit, "better": "lower"} for name in names}


def higher_better(names: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """``describe`` entries for Pearson r values (unitless, higher is better)."""
    return {name: {"unit": "", "better": "higher"} for name in names}
