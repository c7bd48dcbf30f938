"""Per-neuron mean firing rate and the mean-rate RMSE between two data sets.

Reference: LDNS ``eval_utils.average_rates(mode="neur")`` (mean over trials and time per
neuron, times fps for Hz); METHOD.md section 7 "Per-neuron mean firing rate RMSE". Only
valid bins count: padding (bins at or after ``lengths[i]``) is ignored.

The rate is a ratio of sums over trials (spikes over valid bins), so it is computed from
per-trial sums (:func:`~ldns_framework.metrics._arrays.trial_sums`) pooled with trial
weights: :func:`pooled_mean_rates` serves both the plain rate and a bootstrap fold's.
"""

from __future__ import annotations

import numpy as np

from ldns_framework.metrics._arrays import check_counts, check_lengths, check_same_neurons, trial_sums
from ldns_framework.metrics.paired import rmse


def pooled_mean_rates(spike_counts: np.ndarray, lengths: np.ndarray, weights: np.ndarray | None = None,
                      bin_width_s: float | None = None) -> np.ndarray:
    """Mean rate per neuron (neurons,) of trials taken ``weights[i]`` times (None: once each).

    ``spike_counts`` (trials, neurons) are the per-trial sums over valid bins and ``lengths``
    (trials,) the valid bins. Units: spikes per bin, or Hz given ``bin_width_s``. NaN with no
    valid bin.
    """
    w = np.ones(len(lengths)) if weights is None else np.asarray(weights, dtype=np.float64)
    bins = float(w @ np.asarray(lengths, dtype=np.float64))
    if bins <= 0:
        return np.full(spike_counts.shape[1], np.nan)
    rates = (w @ spike_counts) / bins  # spikes per bin, (neurons,)
    return rates / bin_width_s if bin_width_s is not None else rates


def mean_rates(counts: np.ndarray, lengths: np.ndarray | None = None,
               bin_width_s: float | None = None) -> np.ndarray:
    """Mean count per neuron over all valid bins, shape (neurons,).

    Units: spikes per bin, or Hz (spikes per second) when ``bin_width_s`` is given. With no
    valid bin at all the rates are NaN (undefined).
    """
    counts = check_counts(counts)
    lengths = check_lengths(lengths, counts)
    return pooled_mean_rates(trial_sums(counts, lengths), lengths, None, bin_width_s)


def mean_rate_rmse(model_counts: np.ndarray, data_counts: np.ndarray,
                   lengths_model: np.ndarray | None = None, lengths_data: np.ndarray | None = None,
                   bin_width_s: float | None = None) -> float:
    """RMSE across neurons between the per-neuron mean rates of two data sets.

    ``sqrt(mean_n (rate_model[n] - rate_data[n])**2)`` in spikes per bin (Hz with
    ``bin_width_s``). Symmetric in its two arguments. The trial counts may differ; the
    neuron counts must agree.
    """
    check_same_neurons(check_counts(model_counts, "model_counts"), check_counts(data_counts, "data_counts"))
    return rmse(mean_rates(model_counts, lengths_model, bin_width_s), mean_rates(data_counts, lengths_data, bin_width_s))
