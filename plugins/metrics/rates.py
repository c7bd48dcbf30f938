"""``mean-rate``: per-neuron mean firing rate, model vs data (METHOD.md section 7).

The rate of neuron ``n`` is its spike count summed over every valid bin of every trial divided
by the number of valid bins; per trial the statistic is (spike count per neuron, valid bins)
(:func:`ldns_framework.metrics.trial_sums`), pooled exactly over a fold's weighted trials by
:func:`ldns_framework.metrics.pooled_mean_rates` (which also computes ``metrics.mean_rates``).

Values: ``mean_rate_rmse`` = sqrt(mean_n (rate_model[n] - rate_data[n])^2), in Hz (spikes/bin
when time is read in bins, e.g. Lorenz); ``mean_rate_r``, Pearson r across neurons.

Usage::

    MeanRate().compute(model=samples, data=test)   # {"mean_rate_rmse": ..., "mean_rate_r": ...}
"""

from __future__ import annotations

from typing import NamedTuple

import attrs
import numpy as np

from ldns_framework import PooledMetric, SpikeData, metrics
from ldns_plugins.metrics.base import TimeUnit, check_weights, higher_better, lower_better, time_unit_option


@attrs.frozen
class MeanRateConfig:
    """Options of the ``mean-rate`` metric."""

    time_unit: str = time_unit_option("Rates in Hz ('seconds') or spikes per bin ('bins')")


class _TrialRates(NamedTuple):
    sums: np.ndarray  # (trials, neurons) spike counts over valid bins
    lengths: np.ndarray  # (trials,) valid bins
    bin_width_s: float


class MeanRate(TimeUnit, PooledMetric):
    """RMSE and Pearson r across neurons of the mean firing rate."""

    config_class = MeanRateConfig

    def trial_statistics(self, spikes: SpikeData, context: str) -> _TrialRates:
        return _TrialRates(metrics.trial_sums(spikes.counts, spikes.lengths), spikes.lengths, spikes.bin_width_s)

    def pool(self, per_trial: _TrialRates, weights: np.ndarray, context: str) -> np.ndarray:
        """Mean rate per neuron (neurons,) of the weighted trials, in the context's unit."""
        weights = check_weights(weights, per_trial.lengths.size)
        width = per_trial.bin_width_s if context == "seconds" else None
        return metrics.pooled_mean_rates(per_trial.sums, per_trial.lengths, weights, width)

    def compare_statistics(self, model: np.ndarray, data: np.ndarray, context: str) -> dict[str, float]:
        return {"mean_rate_rmse": metrics.rmse(model, data), "mean_rate_r": metrics.pearson_r(model, data)}

    def describe(self, context: str | None = None) -> dict[str, dict[str, str]]:
        unit = self.unit("rate", context)
        return {**lower_better(("mean_rate_rmse",), unit), **higher_better(("mean_rate_r",))}
