"""``isi``: inter-spike-interval statistics per neuron, model vs data (METHOD.md section 7).

Counts become spike times (``c`` spikes evenly inside their bin), ISIs are taken within each
(trial, neuron) and pooled over trials per neuron; per neuron the mean and the std (ddof 0)
of its ISIs (:func:`ldns_framework.metrics.isi_statistics`). Neurons with fewer than
``min_isis`` pooled ISIs on either side are left out of all four numbers and counted.

Values: ``mean_isi_rmse`` and ``std_isi_rmse`` (seconds, or bins when time is read in bins,
e.g. Lorenz), ``mean_isi_r`` and ``std_isi_r`` (Pearson r across neurons, the Lorenz
statistics), ``isi_neurons_excluded``.

Per trial the statistic is (ISI count, mean, std) per neuron; pooled moments over a weighted
set of trials are exact (ISIs never cross trials), so folds recompute no ISI. They are computed
a block of trials at a time, each (trial, neuron) spike train as one train of a pseudo-trial
(:func:`~ldns_plugins.metrics.base.as_series`).
"""

from __future__ import annotations

from typing import NamedTuple

import attrs
import numpy as np

from ldns_framework import SpikeData, metrics, option
from ldns_plugins.metrics.base import (TIME_UNITS, PooledMetric, as_series, check_weights, higher_better,
                                       lower_better, resolve_time_unit, trial_blocks, unit_label)


@attrs.frozen
class IsiConfig:
    """Options of the ``isi`` metric."""

    min_isis: int = option(2, doc="Neurons with fewer pooled ISIs than this (on either side) are left out "
                                  "(with one ISI the std is trivially 0; the reference uses 1).", ge=1)
    time_unit: str = option("auto", doc="ISIs in 'seconds', in 'bins', or 'auto': bins when the data's "
                                        "metadata says isi_unit: bins (Lorenz), else seconds.", choices=TIME_UNITS)


class _TrialIsi(NamedTuple):
    n: np.ndarray  # (trials, neurons) ISI count
    mean: np.ndarray  # (trials, neurons) mean ISI in bins, 0 where n == 0
    second: np.ndarray  # (trials, neurons) mean squared ISI in bins^2, 0 where n == 0
    bin_width_s: float


class Isi(PooledMetric):
    """RMSE and Pearson r across neurons of the mean and std ISI."""

    config_class = IsiConfig

    def prepare(self, data: SpikeData) -> str:
        return resolve_time_unit(self.config.time_unit, data)

    def trial_statistics(self, spikes: SpikeData, context: str) -> _TrialIsi:
        shape = (spikes.n_trials, spikes.n_neurons)
        n, mean, second = np.zeros(shape), np.zeros(shape), np.zeros(shape)
        for trials, length in trial_blocks(spikes):
            series = as_series(spikes.counts, trials, length)  # (1, L, B * N): one series per (trial, neuron)
            stats = metrics.isi_statistics(series, None, min_isis=1)  # per (trial, neuron)
            some = stats.n_isis > 0
            n[trials] = stats.n_isis.reshape(trials.size, -1)
            mean[trials] = np.where(some, stats.mean, 0.0).reshape(trials.size, -1)
            second[trials] = np.where(some, stats.std ** 2 + stats.mean ** 2, 0.0).reshape(trials.size, -1)
        return _TrialIsi(n, mean, second, spikes.bin_width_s)

    def pool(self, per_trial: _TrialIsi, weights: np.ndarray, context: str) -> metrics.IsiStatistics:
        """Per-neuron ISI statistics of the weighted trials, in the context's unit."""
        w = check_weights(weights, per_trial.n.shape[0]).astype(np.float64)
        total = w @ per_trial.n  # (neurons,)
        safe = np.maximum(total, 1.0)
        mean = (w @ (per_trial.n * per_trial.mean)) / safe
        variance = np.clip((w @ (per_trial.n * per_trial.second)) / safe - mean ** 2, 0.0, None)
        enough = total >= self.config.min_isis
        scale = per_trial.bin_width_s if context == "seconds" else 1.0
        return metrics.IsiStatistics(mean=np.where(enough, mean * scale, np.nan),
                                     std=np.where(enough, np.sqrt(variance) * scale, np.nan),
                                     n_isis=np.rint(total).astype(np.int64))

    def compare_statistics(self, model: metrics.IsiStatistics, data: metrics.IsiStatistics,
                           context: str) -> dict[str, float]:
        result = metrics.compare_isi_statistics(model, data)
        return {"mean_isi_rmse": result.mean_isi_rmse, "std_isi_rmse": result.std_isi_rmse,
                "mean_isi_r": result.mean_isi_r, "std_isi_r": result.std_isi_r,
                "isi_neurons_excluded": float(result.n_neurons_excluded)}

    def describe(self, context: str) -> dict[str, dict[str, str]]:
        return {**lower_better(("mean_isi_rmse", "std_isi_rmse"), unit_label("time", context)),
                **higher_better(("mean_isi_r", "std_isi_r")),
                **lower_better(("isi_neurons_excluded",), "neurons")}
