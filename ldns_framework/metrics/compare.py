"""The headline comparison of generated spike counts with real ones, in one call.

METHOD.md section 7 and LDNS_NOTES.md section 3: every number compares ``model_counts``
(samples) with ``data_counts`` (real trials); both are (trials, time, neurons) with
optional right-padding ``lengths``, and the trial counts may differ. Report each against
the training split, the held-out split and a data-vs-data floor (two disjoint halves of the
real data) so every number has a scale.

Units: rates in spikes per bin and ISIs in bins, or Hz and seconds when ``bin_width_s`` is
given; correlations are unitless; the auto-correlation RMSE is in counts squared.
"""

from __future__ import annotations

import numpy as np

from ldns_framework.metrics._arrays import check_counts, check_same_neurons
from ldns_framework.metrics.correlation import (correlation_matrix, correlation_r, correlation_rmse,
                                                correlation_rmse_all_entries)
from ldns_framework.metrics.isi import isi_comparison
from ldns_framework.metrics.population import compare_populations, population_counts
from ldns_framework.metrics.rates import mean_rate_rmse
from ldns_framework.metrics.temporal import autocorr_rmse

__all__ = ["HEADLINE_METRICS", "compare"]

# The keys of compare(), in report order.
HEADLINE_METRICS = (
    "mean_rate_rmse",  # RMSE across neurons of the mean rate (spikes/bin, or Hz)
    "population_count_kl",  # KL(model || data) of the population-count KDE (nats)
    "population_density_r",  # Pearson r of the two population-count densities (Lorenz reference)
    "correlation_rmse",  # RMSE over unique neuron pairs of the correlation matrices
    "correlation_rmse_all_entries",  # the reference's variant: divided by all N^2 entries
    "correlation_r",  # Pearson r of the unique-pair correlation entries
    "mean_isi_rmse",  # RMSE across neurons of the mean ISI (bins, or s)
    "std_isi_rmse",  # RMSE across neurons of the std ISI (bins, or s)
    "mean_isi_r",  # Pearson r across neurons of the mean ISI
    "std_isi_r",  # Pearson r across neurons of the std ISI
    "isi_neurons_excluded",  # neurons with < min_isis ISIs on either side, left out of the four above
    "autocorr_rmse_lag1_10",  # RMSE of per-neuron auto-correlations at lags 1..10 (counts^2)
)


def compare(model_counts: np.ndarray, data_counts: np.ndarray, lengths_model: np.ndarray | None = None,
            lengths_data: np.ndarray | None = None, bin_width_s: float | None = None, *,
            min_isis: int = 2, max_count: int | None = None) -> dict[str, float]:
    """Every headline metric of model samples against data, as ``{name: float}``.

    Keys and units: :data:`HEADLINE_METRICS`. NaN marks a number that is undefined for the
    input (no neuron pair, no neuron with enough ISIs, a constant set of values for a Pearson
    r, no valid bin); each function's docstring says when. ``min_isis`` and ``max_count``
    are passed to :func:`.isi.isi_statistics` and :func:`.population.population_count_kl`.
    Deterministic, and invariant to the order of the trials of either set.
    """
    model_counts = check_counts(model_counts, "model_counts")
    data_counts = check_counts(data_counts, "data_counts")
    check_same_neurons(model_counts, data_counts)

    population = compare_populations(population_counts(model_counts, lengths_model),
                                     population_counts(data_counts, lengths_data), max_count)

    corr_model = correlation_matrix(model_counts, lengths_model)
    corr_data = correlation_matrix(data_counts, lengths_data)
    isi = isi_comparison(model_counts, data_counts, lengths_model, lengths_data, bin_width_s, min_isis)

    return {
        "mean_rate_rmse": mean_rate_rmse(model_counts, data_counts, lengths_model, lengths_data, bin_width_s),
        "population_count_kl": population.kl,
        "population_density_r": population.density_r,
        "correlation_rmse": correlation_rmse(corr_model, corr_data),
        "correlation_rmse_all_entries": correlation_rmse_all_entries(corr_model, corr_data),
        "correlation_r": correlation_r(corr_model, corr_data),
        "mean_isi_rmse": isi.mean_isi_rmse,
        "std_isi_rmse": isi.std_isi_rmse,
        "mean_isi_r": isi.mean_isi_r,
        "std_isi_r": isi.std_isi_r,
        "isi_neurons_excluded": float(isi.n_neurons_excluded),
        "autocorr_rmse_lag1_10": autocorr_rmse(model_counts, data_counts, lengths_model, lengths_data, max_lag=10),
    }
