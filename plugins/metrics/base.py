"""Pooled metrics: statistics that are sums over trials, so resampled sets are cheap.

A bootstrap fold is a multiset of trials: trial ``i`` taken ``w[i]`` times. For a statistic
that is a sum over trials (mean rate, pooled ISI moments, trial-averaged auto-correlation,
population-count histogram) the fold's value is a weighted sum of per-trial values, so the
evaluation computes per-trial statistics once per set of trials and each fold costs one
weighted sum. A statistic that is not separable per trial (the correlation matrix) recomputes
on the resampled trials inside :meth:`PooledMetric.pool`.

The four steps, all called by ``ldns_framework.evaluation.evaluate`` (duck-typed, so any metric
with these methods gets the fast path; others are called through :meth:`compute`):

1. ``context = prepare(data)``: once per split, on the real trials (units, neuron groups).
2. ``per_trial = trial_statistics(spikes, context)``: once per set of trials.
3. ``pooled = pool(per_trial, weights, context)``: per fold and side; ``weights`` (trials,) are
   non-negative integer multiplicities (0 leaves a trial out).
4. ``compare_statistics(pooled_model, pooled_data, context) -> {name: float}``.

``compute(model, data)`` runs the four steps with unit weights, so it equals the statistic of
the whole sets.
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np

from ldns_framework import DataError, Metric, SpikeData

TIME_UNITS = ("auto", "seconds", "bins")


class PooledMetric(Metric):
    """A metric computed from per-trial statistics pooled with trial weights (module docstring)."""

    def prepare(self, data: SpikeData) -> Any:
        """What the comparison needs from the real data (units, groups); ``None`` by default."""
        return None

    @abc.abstractmethod
    def trial_statistics(self, spikes: SpikeData, context: Any) -> Any:
        """Statistics of every trial of ``spikes`` (or what :meth:`pool` needs to compute them)."""

    @abc.abstractmethod
    def pool(self, per_trial: Any, weights: np.ndarray, context: Any) -> Any:
        """The statistics of the multiset of trials given by integer ``weights`` (trials,)."""

    @abc.abstractmethod
    def compare_statistics(self, model: Any, data: Any, context: Any) -> dict[str, float]:
        """Named values comparing pooled model statistics with pooled data statistics."""

    def describe(self, context: Any) -> dict[str, dict[str, str]]:
        """Per value name: ``unit`` and ``better`` (``"lower"`` or ``"higher"``), for reports."""
        return {}

    def compute(self, model: SpikeData, data: SpikeData) -> dict[str, float]:
        if model.n_neurons != data.n_neurons:
            raise DataError("counts", f"expected {data.n_neurons} neurons in the model samples like the data, "
                                      f"got {model.n_neurons}")
        context = self.prepare(data)
        pooled_model = self.pool(self.trial_statistics(model, context), np.ones(model.n_trials, np.int64), context)
        pooled_data = self.pool(self.trial_statistics(data, context), np.ones(data.n_trials, np.int64), context)
        return self.compare_statistics(pooled_model, pooled_data, context)


def check_weights(weights: np.ndarray, n_trials: int) -> np.ndarray:
    """``weights`` as int64 (trials,), checked to be non-negative integers."""
    weights = np.asarray(weights)
    if weights.shape != (n_trials,):
        raise ValueError(f"expected one weight per trial, shape ({n_trials},), got {weights.shape}")
    if weights.size and (weights.min() < 0 or not np.array_equal(weights, np.round(weights))):
        raise ValueError("expected non-negative integer trial weights (multiplicities)")
    return weights.astype(np.int64)


def resample_index(weights: np.ndarray) -> np.ndarray:
    """Trial indices of the multiset: trial ``i`` repeated ``weights[i]`` times (in trial order)."""
    weights = np.asarray(weights, dtype=np.int64)
    return np.repeat(np.arange(weights.size), weights)


def weighted_trial_mean(per_trial: np.ndarray, weights: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Weighted mean over the trial axis of ``per_trial`` (trials, ...), counting only ``valid`` trials.

    NaN when no valid trial has a positive weight.
    """
    w = weights * valid  # (trials,)
    total = w.sum()
    if total <= 0:
        return np.full(per_trial.shape[1:], np.nan)
    return np.tensordot(w.astype(np.float64), per_trial, axes=(0, 0)) / total


def resolve_time_unit(choice: str, data: SpikeData) -> str:
    """``"bins"`` or ``"seconds"``: ``auto`` reads bins when the data says so (Lorenz), else seconds."""
    if choice != "auto":
        return choice
    return "bins" if str(data.metadata.get("isi_unit", "")).lower() == "bins" else "seconds"


def per_trial_sums(counts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Spike count per trial and neuron over the valid bins: (trials, neurons) float64."""
    if np.all(lengths == counts.shape[1]):
        return counts.sum(axis=1, dtype=np.int64).astype(np.float64)
    mask = np.arange(counts.shape[1])[None, :] < lengths[:, None]  # (trials, time)
    out = np.empty((counts.shape[0], counts.shape[2]))
    step = max(1, 4_000_000 // max(1, counts.shape[1] * counts.shape[2]))
    for start in range(0, counts.shape[0], step):
        part = slice(start, start + step)
        out[part] = np.einsum("it,itn->in", mask[part].astype(np.int64), counts[part].astype(np.int64, copy=False))
    return out


def unit_label(base: str, unit: str) -> str:
    """``"s"`` / ``"bins"`` style labels: ``base`` is ``"time"`` or ``"rate"``."""
    if base == "time":
        return "s" if unit == "seconds" else "bins"
    return "Hz" if unit == "seconds" else "spikes/bin"


def lower_better(names: tuple[str, ...], unit: str) -> dict[str, dict[str, str]]:
    """``describe`` entries for lower-is-better values sharing one unit."""
    return {name: {"unit": unit, "better": "lower"} for name in names}


def higher_better(names: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """``describe`` entries for Pearson r values (unitless, higher is better)."""
    return {name: {"unit": "", "better": "higher"} for name in names}


def trial_blocks(spikes: SpikeData, elements: int = 500_000):
    """Blocks of trials of equal valid length, as ``(trial indices, length)``, each ~``elements`` entries.

    With :func:`as_series` a block becomes one pseudo-trial whose "neurons" are the block's
    (trial, neuron) series: the metrics functions then return per-(trial, neuron) results in
    one vectorised call instead of one call per trial.
    """
    for length in np.unique(spikes.lengths):
        members = np.flatnonzero(spikes.lengths == length)
        step = max(1, elements // max(1, int(length) * spikes.n_neurons))
        for start in range(0, members.size, step):
            yield members[start:start + step], int(length)


def as_series(counts: np.ndarray, trials: np.ndarray, length: int) -> np.ndarray:
    """(trials, time, neurons) -> (1, length, len(trials) * neurons); series ``b * neurons + n``."""
    block = counts[trials, :length]  # (B, L, N)
    return np.ascontiguousarray(block.transpose(1, 0, 2)).reshape(1, length, -1)
