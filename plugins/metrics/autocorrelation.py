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
  cross-correlation averaged over the group's pairs i < j; only for groups of two or more
  neurons (with fewer neurons than ``2 * n_groups`` some groups have one).

Per trial the statistics are the trial's auto-correlations (and group cross-correlations)
(:func:`ldns_framework.metrics.trial_auto_correlations`,
:func:`~ldns_framework.metrics.trial_group_cross_correlations`); the average over a fold's
weighted trials is an exact weighted mean (:func:`ldns_framework.metrics.trial_mean`).
"""

from __future__ import annotations

from typing import NamedTuple

import attrs
import numpy as np

from ldns_framework import PooledMetric, SpikeData, metrics, option
from ldns_plugins.metrics.base import check_weights, lower_better


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
        lags = self._lags
        auto = metrics.trial_auto_correlations(spikes.counts, spikes.lengths, lags)[:, :, lags + 1:]  # lags 1..L
        cross = (metrics.trial_group_cross_correlations(spikes.counts, context.groups, spikes.lengths,
                                                        self.config.max_lag) if self.config.cross else None)
        return _TrialCorrelations(auto, cross, spikes.lengths > 0)

    def pool(self, per_trial: _TrialCorrelations, weights: np.ndarray, context: _Context) -> _Pooled:
        weights = check_weights(weights, per_trial.valid.size)
        auto = metrics.trial_mean(per_trial.auto, weights, per_trial.valid)
        cross = None if per_trial.cross is None else metrics.trial_mean(per_trial.cross, weights, per_trial.valid)
        return _Pooled(auto, cross)

    def compare_statistics(self, model: _Pooled, data: _Pooled, context: _Context) -> dict[str, float]:
        k, max_lag = self.config.rmse_max_lag, self.config.max_lag
        values = {f"autocorr_rmse_lag1_{k}": metrics.rmse(model.auto[:, :k], data.auto[:, :k])}
        group_model = metrics.group_means(model.auto[:, :max_lag], context.groups)  # (groups, lags 1..max_lag)
        group_data = metrics.group_means(data.auto[:, :max_lag], context.groups)
        for g in range(len(context.groups)):
            values[f"autocorr_group{g + 1}_rmse"] = metrics.rmse(group_model[g], group_data[g])
        if model.cross is not None and data.cross is not None:
            for g in _paired_groups(context):
                values[f"crosscorr_group{g}_rmse"] = metrics.rmse(model.cross[g - 1], data.cross[g - 1])
        return values

    def describe(self, context: _Context | None = None) -> dict[str, dict[str, str]]:
        """The group values are named for the groups in ``context``; without one, for ``n_groups``
        groups (the data may give fewer, and groups of one neuron have no cross-correlation)."""
        groups = range(1, self.config.n_groups + 1) if context is None else range(1, len(context.groups) + 1)
        names = [f"autocorr_rmse_lag1_{self.config.rmse_max_lag}"] + [f"autocorr_group{g}_rmse" for g in groups]
        if self.config.cross:
            names += [f"crosscorr_group{g}_rmse" for g in (groups if context is None else _paired_groups(context))]
        return lower_better(tuple(names), "counts^2")


def _paired_groups(context: _Context) -> list[int]:
    """Numbers (from 1) of the groups with a pair of neurons: only those have a cross-correlation."""
    return [g for g, group in enumerate(context.groups, start=1) if len(group) >= 2]
