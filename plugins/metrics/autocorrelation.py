"""``autocorrelation``: temporal auto- (and cross-) correlations, model vs data (METHOD.md section 7).

Each (trial, neuron) series is mean-subtracted over its valid bins and correlated with itself
at lags up to ``max_lag`` bins, normalised by the trial length ("biased"), then averaged over
trials (:func:`ldns_framework.metrics.auto_correlations`); the values are covariances in
counts^2. Neurons are put in ``n_groups`` groups by summed squared correlation, computed on
the real data and reused for the model (:func:`ldns_framework.metrics.neuron_groups`).

Values:

* ``autocorr_rmse_lag1_<k>`` (k = ``rmse_max_lag``): RMSE over neurons and lags 1..k of the
  per-neuron auto-correlations (equals :func:`ldns_framework.metrics.autocorr_rmse`).
* ``autocorr_group<g>_rmse``: RMSE over lags 1..max_lag of the group-mean auto-correlation
  (groups numbered from 1, most correlated first; lag 0, the variance, is left out as the
  reference zeroes it; the curve is symmetric, so positive lags say everything).
* ``crosscorr_group<g>_rmse`` (with ``cross: true``): RMSE over lags -max_lag..max_lag of the
  cross-correlation averaged over the group's pairs i < j.

Per trial the statistics are the trial's auto-correlations (and group cross-correlations),
computed a block of trials at a time (each (trial, neuron) series as one series of a
pseudo-trial, :func:`~ldns_plugins.metrics.base.as_series`); trial averages over a weighted
set of trials are exact weighted means.
"""

from __future__ import annotations

from typing import NamedTuple

import attrs
import numpy as np

from ldns_framework import SpikeData, metrics, option
from ldns_plugins.metrics.base import (PooledMetric, as_series, check_weights, lower_better, trial_blocks,
                                       weighted_trial_mean)


@attrs.frozen
class AutocorrelationConfig:
    """Options of the ``autocorrelation`` metric."""

    max_lag: int = option(30, doc="Largest lag (bins) of the group summaries; the reference uses 30.", ge=1)
    rmse_max_lag: int = option(10, doc="The per-neuron RMSE covers lags 1..rmse_max_lag (bins).", ge=1)
    n_groups: int = option(4, doc="Neuron groups by summed squared correlation (computed on the data).", ge=1)
    cross: bool = option(True, doc="Also compare the group cross-correlations (pairs i < j within a group).")


class _Context(NamedTuple):
    groups: list[np.ndarray]  # neuron indices per group, from the real data


class _TrialCorrelations(NamedTuple):
    auto: np.ndarray  # (trials, neurons, lags 1..L) per-trial auto-correlation
    cross: np.ndarray | None  # (trials, groups, lags -max_lag..max_lag) per-trial group cross-correlation
    valid: np.ndarray  # (trials,) trials with at least one valid bin


class _Pooled(NamedTuple):
    auto: np.ndarray  # (neurons, lags 1..L)
    cross: np.ndarray | None  # (groups, 2 * max_lag + 1)


class Autocorrelation(PooledMetric):
    """RMSE of auto-correlations per neuron and per neuron group (and of group cross-correlations)."""

    config_class = AutocorrelationConfig

    @property
    def _lags(self) -> int:
        return max(self.config.max_lag, self.config.rmse_max_lag)

    def prepare(self, data: SpikeData) -> _Context:
        return _Context(metrics.neuron_groups(data.counts, data.lengths, self.config.n_groups))

    def trial_statistics(self, spikes: SpikeData, context: _Context) -> _TrialCorrelations:
        lags, max_lag, n_neurons = self._lags, self.config.max_lag, spikes.n_neurons
        auto = np.empty((spikes.n_trials, n_neurons, lags))
        cross = np.empty((spikes.n_trials, len(context.groups), 2 * max_lag + 1)) if self.config.cross else None
        for trials, length in trial_blocks(spikes):
            series = as_series(spikes.counts, trials, length)  # (1, L, B * N): one series per (trial, neuron)
            per_series = metrics.auto_correlations(series, None, lags)  # (B * N, 2 * lags + 1)
            auto[trials] = per_series[:, lags + 1:].reshape(trials.size, n_neurons, lags)  # lags 1..L
            if cross is not None:
                groups = [b * n_neurons + group for b in range(trials.size) for group in context.groups]
                per_group = metrics.group_cross_correlations(series, groups, None, max_lag)  # (B * G, lags)
                cross[trials] = per_group.reshape(trials.size, len(context.groups), -1)
        return _TrialCorrelations(auto, cross, spikes.lengths > 0)

    def pool(self, per_trial: _TrialCorrelations, weights: np.ndarray, context: _Context) -> _Pooled:
        weights = check_weights(weights, per_trial.valid.size)
        auto = weighted_trial_mean(per_trial.auto, weights, per_trial.valid)
        cross = None if per_trial.cross is None else weighted_trial_mean(per_trial.cross, weights, per_trial.valid)
        return _Pooled(auto, cross)

    def compare_statistics(self, model: _Pooled, data: _Pooled, context: _Context) -> dict[str, float]:
        k, max_lag = self.config.rmse_max_lag, self.config.max_lag
        values = {f"autocorr_rmse_lag1_{k}": _rmse(model.auto[:, :k], data.auto[:, :k])}
        for g, group in enumerate(context.groups, start=1):
            values[f"autocorr_group{g}_rmse"] = _rmse(model.auto[group, :max_lag].mean(axis=0),
                                                      data.auto[group, :max_lag].mean(axis=0))
        if model.cross is not None and data.cross is not None:
            for g in range(len(context.groups)):
                values[f"crosscorr_group{g + 1}_rmse"] = _rmse(model.cross[g], data.cross[g])
        return values

    def describe(self, context: _Context) -> dict[str, dict[str, str]]:
        names = [f"autocorr_rmse_lag1_{self.config.rmse_max_lag}"]
        names += [f"autocorr_group{g}_rmse" for g in range(1, len(context.groups) + 1)]
        if self.config.cross:
            names += [f"crosscorr_group{g}_rmse" for g in range(1, len(context.groups) + 1)]
        return lower_better(tuple(names), "counts^2")


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    """RMSE over all entries; NaN when there is none or any is undefined."""
    return float(np.sqrt(np.mean((a - b) ** 2))) if np.size(a) else float("nan")
