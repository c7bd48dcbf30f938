"""``isi``: inter-spike-interval statistics per neuron, model vs data (METHOD.md section 7).

Counts become spike times (``c`` spikes evenly inside their bin), ISIs are taken within each
(trial, neuron) and pooled over trials per neuron; per neuron the mean and the std (ddof 0)
of its ISIs (:func:`ldns_framework.metrics.isi_statistics`). Neurons with fewer than
``min_isis`` pooled ISIs on either side are left out of all four numbers and counted.

Values: ``mean_isi_rmse`` and ``std_isi_rmse`` (seconds, or bins when time is read in bins,
e.g. Lorenz), ``mean_isi_r`` and ``std_isi_r`` (Pearson r across neurons, the Lorenz
statistics), ``isi_neurons_excluded``.

Per trial the statistic is each (trial, neuron) train's ISI count, mean and scatter
(:func:`ldns_framework.metrics.trial_isi_moments`); ISIs never cross trials, so a fold's
weighted trials pool them exactly (:func:`ldns_framework.metrics.pool_isi_moments`, which also
computes ``metrics.isi_statistics``) and no ISI is recomputed.
"""

from __future__ import annotations

from typing import NamedTuple

import attrs
import numpy as np

from ldns_framework import PooledMetric, SpikeData, metrics, option
from ldns_plugins.metrics.base import TimeUnit, check_weights, higher_better, lower_better, time_unit_option


@attrs.frozen
class IsiConfig:
    """Options of the ``isi`` metric."""

    min_isis: int = option(2, doc="Neurons with fewer pooled ISIs than this (on either side) are left out "
                                  "(with one ISI the std is trivially 0; the reference uses 1).", ge=1)
    time_unit: str = time_unit_option("ISIs in 'seconds' or in 'bins'")


class _TrialIsi(NamedTuple):
    moments: metrics.IsiMoments  # (trials, neurons) each, in bins
    bin_width_s: float


class Isi(TimeUnit, PooledMetric):
    """RMSE and Pearson r across neurons of the mean and std ISI."""

    config_class = IsiConfig

    def trial_statistics(self, spikes: SpikeData, context: str) -> _TrialIsi:
        return _TrialIsi(metrics.trial_isi_moments(spikes.counts, spikes.lengths), spikes.bin_width_s)

    def pool(self, per_trial: _TrialIsi, weights: np.ndarray, context: str) -> metrics.IsiStatistics:
        """Per-neuron ISI statistics of the weighted trials, in the context's unit."""
        weights = check_weights(weights, per_trial.moments.n.shape[0])
        width = per_trial.bin_width_s if context == "seconds" else None
        return metrics.pool_isi_moments(per_trial.moments, weights, width, self.config.min_isis)

    def compare_statistics(self, model: metrics.IsiStatistics, data: metrics.IsiStatistics,
                           context: str) -> dict[str, float]:
        result = metrics.compare_isi_statistics(model, data)
        return {"mean_isi_rmse": result.mean_isi_rmse, "std_isi_rmse": result.std_isi_rmse,
                "mean_isi_r": result.mean_isi_r, "std_isi_r": result.std_isi_r,
                "isi_neurons_excluded": float(result.n_neurons_excluded)}

    def describe(self, context: str | None = None) -> dict[str, dict[str, str]]:
        unit = self.unit("time", context)
        return {**lower_better(("mean_isi_rmse", "std_isi_rmse"), unit),
                **higher_better(("mean_isi_r", "std_isi_r")),
                **lower_better(("isi_neurons_excluded",), "neurons")}
