"""Statistics of spike counts, generated vs real (METHOD.md section 7, LDNS_NOTES.md section 3).

Every function takes numpy arrays (trials, time, neurons) and optional ``lengths`` (trials,)
for right-padded variable-length data; padding never counts as data. One module per job:

* :mod:`.rates`: per-neuron mean rate, mean-rate RMSE.
* :mod:`.population`: population spike count, its KDE density, KL(model || data).
* :mod:`.correlation`: pairwise correlation matrix, its RMSEs and Pearson r.
* :mod:`.isi`: spike times, per-neuron ISI mean and std, their RMSEs.
* :mod:`.temporal`: auto- and cross-correlations over lags, neuron groups, summaries.
* :mod:`.psth`: PSTH per condition.
* :mod:`.pearson`: NaN-safe Pearson r.
* :mod:`.compare`: every headline number in one call.
* :mod:`.recovery`: latent and rate recovery against a known truth (synthetic data).
"""

from __future__ import annotations

from ldns_framework.metrics.compare import HEADLINE_METRICS, compare
from ldns_framework.metrics.correlation import (correlation_matrix, correlation_r, correlation_rmse,
                                                correlation_rmse_all_entries, lower_triangle)
from ldns_framework.metrics.isi import (IsiComparison, IsiStatistics, compare_isi_statistics, isi_comparison,
                                        isi_rmse, isi_statistics, spike_times)
from ldns_framework.metrics.pearson import pearson_r
from ldns_framework.metrics.population import (HISTOGRAM_EPSILON, count_grid, kl_divergence,
                                               log_population_density, population_count_densities,
                                               population_count_kl, population_counts, population_density)
from ldns_framework.metrics.psth import psth
from ldns_framework.metrics.rates import mean_rate_rmse, mean_rates
from ldns_framework.metrics.recovery import latent_recovery_r2, rate_correlation
from ldns_framework.metrics.temporal import (DEFAULT_MAX_LAG, TemporalComparison, TemporalSummary,
                                             auto_correlations, autocorr_rmse, compare_temporal_correlations,
                                             group_cross_correlations, lag_axis, neuron_groups,
                                             temporal_correlation_summary)

__all__ = [
    "DEFAULT_MAX_LAG",
    "HEADLINE_METRICS",
    "HISTOGRAM_EPSILON",
    "IsiComparison",
    "IsiStatistics",
    "TemporalComparison",
    "TemporalSummary",
    "auto_correlations",
    "autocorr_rmse",
    "compare",
    "compare_isi_statistics",
    "compare_temporal_correlations",
    "correlation_matrix",
    "correlation_r",
    "correlation_rmse",
    "correlation_rmse_all_entries",
    "count_grid",
    "group_cross_correlations",
    "isi_comparison",
    "isi_rmse",
    "isi_statistics",
    "kl_divergence",
    "lag_axis",
    "latent_recovery_r2",
    "log_population_density",
    "lower_triangle",
    "mean_rate_rmse",
    "mean_rates",
    "neuron_groups",
    "pearson_r",
    "population_count_densities",
    "population_count_kl",
    "population_counts",
    "population_density",
    "psth",
    "rate_correlation",
    "spike_times",
    "temporal_correlation_summary",
]
