"""Statistics of spike counts, generated vs real (METHOD.md section 7, LDNS_NOTES.md section 3).

Every function takes numpy arrays (trials, time, neurons) and optional ``lengths`` (trials,)
for right-padded variable-length data; padding never counts as data. One module per job:

* :mod:`.rates`: per-neuron mean rate (also pooled from per-trial sums), mean-rate RMSE.
* :mod:`.population`: population spike count, its KDE density, KL(model || data).
* :mod:`.correlation`: pairwise correlation matrix, its RMSEs and Pearson r.
* :mod:`.isi`: spike times, per-train ISI moments, their exact pooling, ISI comparison.
* :mod:`.temporal`: auto- and cross-correlations over lags (per trial or trial-averaged),
  neuron groups, summaries.
* :mod:`.psth`: PSTH per condition.
* :mod:`.buckets`: mean rates and correlations per bucket of trial lengths.
* :mod:`.smoothing`: Gaussian smoothing along time over valid bins only.
* :mod:`.decoding`: ridge decoding of velocity, pooled R^2, reach angles and directions.
* :mod:`.paired`: NaN-safe Pearson r and RMSE of paired values.
* :mod:`.units`: seconds or bins, from the data's metadata.
* :mod:`.compare`: every headline number in one call.
* :mod:`.recovery`: latent and rate recovery against a known truth (synthetic data).

Statistics that are sums over trials come in a per-trial form and a pooled form taking trial
weights (multiplicities): :func:`trial_sums` / :func:`pooled_mean_rates`,
:func:`trial_isi_moments` / :func:`pool_isi_moments`, :func:`trial_auto_correlations` /
:func:`trial_mean`. The metric plugins (:class:`~ldns_framework.PooledMetric`) wrap these, so a
bootstrap fold re-weights per-trial statistics instead of recomputing them, and every number
has one implementation here.
"""

from __future__ import annotations

from ldns_framework.metrics._arrays import trial_mean, trial_sums, valid_bins
from ldns_framework.metrics.buckets import BucketStatistics, bucket_index, bucket_statistics, length_bucket_edges
from ldns_framework.metrics.compare import HEADLINE_METRICS, compare
from ldns_framework.metrics.decoding import (DEFAULT_ALPHAS, Behaviour, R2Sums, angle_at, angular_error_deg, decode,
                                             direction_labels, fit_ridge_decoder, pooled_r2, r2_sums, ridge_cv_scores,
                                             target_angles)
from ldns_framework.metrics.correlation import (correlation_matrix, correlation_r, correlation_rmse,
                                                correlation_rmse_all_entries, lower_triangle)
from ldns_framework.metrics.isi import (IsiComparison, IsiMoments, IsiStatistics, compare_isi_statistics,
                                        isi_comparison, isi_statistics, pool_isi_moments, spike_times,
                                        trial_isi_moments)
from ldns_framework.metrics.paired import pearson_r, rmse
from ldns_framework.metrics.population import (HISTOGRAM_EPSILON, PopulationComparison, compare_populations,
                                               count_grid, kl_divergence, log_population_density,
                                               population_count_densities, population_count_kl,
                                               population_counts, population_density)
from ldns_framework.metrics.psth import condition_psth, smoothed_condition_psth
from ldns_framework.metrics.rates import mean_rate_rmse, mean_rates, pooled_mean_rates
from ldns_framework.metrics.recovery import latent_recovery_r2, rate_correlation
from ldns_framework.metrics.temporal import (DEFAULT_MAX_LAG, TemporalComparison, TemporalSummary,
                                             auto_correlations, autocorr_rmse, compare_temporal_correlations,
                                             group_cross_correlations, group_means, lag_axis, neuron_groups,
                                             temporal_correlation_summary, trial_auto_correlations,
                                             trial_group_cross_correlations)
from ldns_framework.metrics.smoothing import gaussian_kernel, sigma_in_bins, smooth_time
from ldns_framework.metrics.units import TIME_UNITS, resolve_time_unit, unit_label

__all__ = [
    "Behaviour",
    "BucketStatistics",
    "DEFAULT_ALPHAS",
    "DEFAULT_MAX_LAG",
    "HEADLINE_METRICS",
    "HISTOGRAM_EPSILON",
    "IsiComparison",
    "IsiMoments",
    "IsiStatistics",
    "PopulationComparison",
    "R2Sums",
    "TIME_UNITS",
    "TemporalComparison",
    "TemporalSummary",
    "angle_at",
    "angular_error_deg",
    "auto_correlations",
    "bucket_index",
    "bucket_statistics",
    "autocorr_rmse",
    "compare",
    "compare_isi_statistics",
    "compare_populations",
    "compare_temporal_correlations",
    "condition_psth",
    "correlation_matrix",
    "correlation_r",
    "correlation_rmse",
    "correlation_rmse_all_entries",
    "count_grid",
    "decode",
    "direction_labels",
    "fit_ridge_decoder",
    "gaussian_kernel",
    "group_cross_correlations",
    "group_means",
    "isi_comparison",
    "isi_statistics",
    "kl_divergence",
    "lag_axis",
    "length_bucket_edges",
    "latent_recovery_r2",
    "log_population_density",
    "lower_triangle",
    "mean_rate_rmse",
    "mean_rates",
    "neuron_groups",
    "pearson_r",
    "pool_isi_moments",
    "pooled_mean_rates",
    "pooled_r2",
    "population_count_densities",
    "population_count_kl",
    "population_counts",
    "population_density",
    "r2_sums",
    "rate_correlation",
    "resolve_time_unit",
    "ridge_cv_scores",
    "rmse",
    "smoothed_condition_psth",
    "sigma_in_bins",
    "smooth_time",
    "spike_times",
    "target_angles",
    "temporal_correlation_summary",
    "trial_auto_correlations",
    "trial_group_cross_correlations",
    "trial_isi_moments",
    "trial_mean",
    "trial_sums",
    "unit_label",
    "valid_bins",
]
