"""Per-neuron mean firing rate and the mean-rate RMSE between two data sets.

Reference: LDNS ``eval_utils.average_rates(mode="neur")`` (mean over trials and time per
neuron, times fps for Hz); METHOD.md section 7 "Per-neuron mean firing rate RMSE". Only
valid bins count: padding (bins at or after ``lengths[i]``) is ignored.
"""

from __future__ import annotations

import numpy as np

from ldns_framework.metrics._arrays import check_counts, check_lengths, check_same_neurons, sum_valid


def mean_rates(counts: np.ndarray, lengths: np.ndarray | None = None,
               bin_width_s: float | None = None) -> np.ndarray:
    """Mean count per neuron over all valid bins, shape (neurons,).

    Units: spikes per bin, or Hz (spikes per second) when ``bin_width_s`` is given. With no
    valid bin at all the rates are NaN (undefined).
    """
    counts = check_counts(counts)
    lengths = check_lengths(lengths, counts)
    n_bins = int(lengths.sum())
    if n_bins == 0:
        return np.full(counts.shape[2], np.nan)
    rates = sum_valid(counts, lengths) / n_bins
    return rates / bin_width_s if bin_width_s is not None else rates


def mean_rate_rmse(model_counts: np.ndarray, data_counts: np.ndarray,
                   lengths_model: np.ndarray | None = None, lengths_data: np.ndarray | None = None,
                   bin_width_s: float | None = None) -> float:
    """RMSE across neurons between the per-neuron mean rates of two data sets.

    ``sqrt(mean_n (rate_model[n] - rate_data[n])**2)`` in spikes per bin (Hz with
    ``bin_width_s``). Symmetric in its two arguments. The trial counts may differ; the
    neuron counts must agree.
    """
    check_same_neurons(check_counts(model_counts, "model_counts"), check_counts(data_counts, "data_counts"))
    a = mean_rates(model_counts, lengths_model, bin_width_s)
    b = mean_rates(data_counts, lengths_data, bin_width_s)
    return float(np.sqrt(np.mean((a - b) ** 2))) if a.size else float("nan")
