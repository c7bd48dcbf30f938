"""``pairwise-correlation``: zero-lag correlations between neurons, model vs data (METHOD.md section 7).

The correlation matrix is ``np.corrcoef`` over neurons on every valid bin of every trial
concatenated (:func:`ldns_framework.metrics.correlation_matrix`; silent neurons correlate 0).

Values: ``correlation_rmse``, RMSE over the N(N-1)/2 unique pairs (what METHOD.md asks for);
``correlation_rmse_all_entries``, the reference's number (divided by all N^2 entries, i.e. the
unique-pair RMSE / sqrt(2N/(N-1)), comparable with the paper's Table 1); ``correlation_r``,
Pearson r of the unique-pair entries (the Lorenz statistic).

The matrix is not a sum of per-trial matrices that fits in memory (N^2 per trial), so a fold
recomputes it on its resampled trials.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ldns_framework import PooledMetric, SpikeData, metrics
from ldns_plugins.metrics.base import check_weights, higher_better, lower_better, resample_index


class PairwiseCorrelation(PooledMetric):
    """RMSE and Pearson r of the pairwise correlation matrices."""

    def trial_statistics(self, spikes: SpikeData, context: Any) -> SpikeData:
        return spikes  # the matrix is computed per fold, in pool()

    def pool(self, per_trial: SpikeData, weights: np.ndarray, context: Any) -> np.ndarray:
        """Correlation matrix (neurons, neurons) of the weighted trials."""
        weights = check_weights(weights, per_trial.n_trials)
        if np.all(weights == 1):
            return metrics.correlation_matrix(per_trial.counts, per_trial.lengths)
        index = resample_index(weights)
        return metrics.correlation_matrix(per_trial.counts[index], per_trial.lengths[index])

    def compare_statistics(self, model: np.ndarray, data: np.ndarray, context: Any) -> dict[str, float]:
        return {"correlation_rmse": metrics.correlation_rmse(model, data),
                "correlation_rmse_all_entries": metrics.correlation_rmse_all_entries(model, data),
                "correlation_r": metrics.correlation_r(model, data)}

    def describe(self, context: Any = None) -> dict[str, dict[str, str]]:
        return {**lower_better(("correlation_rmse", "correlation_rmse_all_entries"), ""),
                **higher_better(("correlation_r",))}
