"""``mean-rate``: per-neuron mean firing rate, model vs data (METHOD.md section 7).

The rate of neuron ``n`` is its spike count summed over every valid bin of every trial divided
by the number of valid bins (:func:`ldns_framework.metrics.mean_rates`); per trial the
statistic is (spike count per neuron, valid bins), which pool exactly over trials.

Values: ``mean_rate_rmse`` = sqrt(mean_n (rate_model[n] - rate_data[n])^2), in Hz (spikes/bin
when time is read in bins, e.g. Lorenz); ``mean_rate_r``, Pearson r across neurons.

Usage::

    MeanRate().compute(model=samples, data=test)   # {"mean_rate_rmse": ..., "mean_rate_r": ...}
"""

from __future__ import annotations

from typing import Any, NamedTuple

import attrs
import numpy as np

from ldns_framework import SpikeData, metrics, option
from ldns_plugins.metrics.base import (TIME_UNITS, PooledMetric, check_weights, higher_better, lower_better,
                                       per_trial_sums, resolve_time_unit, unit_label)


@attrs.frozen
class MeanRateConfig:
    """Options of the ``mean-rate`` metric."""

    time_unit: str = option("auto", doc="Rates in Hz ('seconds'), spikes per bin ('bins'), or 'auto': "
                                        "bins when the data's metadata says isi_unit: bins (Lorenz), else Hz.",
                            choices=TIME_UNITS)


class _TrialRates(NamedTuple):
    sums: np.ndarray  # (trials, neurons) spike counts over valid bins
    bins: np.ndarray  # (trials,) valid bins
    bin_width_s: float


class MeanRate(PooledMetric):
    """RMSE and Pearson r across neurons of the mean firing rate."""

    config_class = MeanRateConfig

    def prepare(self, data: SpikeData) -> str:
        return resolve_time_unit(self.config.time_unit, data)

    def trial_statistics(self, spikes: SpikeData, context: Any) -> _TrialRates:
        return _TrialRates(per_trial_sums(spikes.counts, spikes.lengths), spikes.lengths.astype(np.float64),
                           spikes.bin_width_s)

    def pool(self, per_trial: _TrialRates, weights: np.ndarray, context: str) -> np.ndarray:
        """Mean rate per neuron (neurons,) of the weighted trials, in the context's unit."""
        w = check_weights(weights, per_trial.bins.size).astype(np.float64)
        bins = w @ per_trial.bins
        if bins <= 0:
            return np.full(per_trial.sums.shape[1], np.nan)
        rates = (w @ per_trial.sums) / bins  # spikes per bin
        return rates / per_trial.bin_width_s if context == "seconds" else rates

    def compare_statistics(self, model: np.ndarray, data: np.ndarray, context: str) -> dict[str, float]:
        rmse = float(np.sqrt(np.mean((model - data) ** 2))) if model.size else float("nan")
        return {"mean_rate_rmse": rmse, "mean_rate_r": metrics.pearson_r(model, data)}

    def describe(self, context: str) -> dict[str, dict[str, str]]:
        return {**lower_better(("mean_rate_rmse",), unit_label("rate", context)), **higher_better(("mean_rate_r",))}
