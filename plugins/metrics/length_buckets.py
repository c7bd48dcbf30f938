"""``length-buckets``: per-neuron mean rates and pairwise correlations per bucket of trial lengths.

For variable-length data (speech-style trials): the real trials' lengths are cut into
``buckets`` quantile buckets (:func:`ldns_framework.metrics.length_bucket_edges`, fixed by the
real split), and samples are compared with the real trials of the same bucket. Values: RMSE over
(bucket, neuron) of mean rates, and RMSE over (bucket, neuron pair) of zero-lag correlations,
each over the buckets both sides have trials in. Data of one trial length is not variable-length:
the metric does not apply (no values; ``mean-rate`` and ``pairwise-correlation`` cover it).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import attrs
import numpy as np

from ldns_framework import PooledMetric, SpikeData, metrics, option
from ldns_plugins.metrics.base import TimeUnit, check_weights, lower_better, time_unit_option


@attrs.frozen
class LengthBucketsConfig:
    """Options of the ``length-buckets`` metric."""

    buckets: int = option(4, ge=1, doc="Number of length buckets (quantiles of the real trials' lengths).")
    time_unit: str = time_unit_option("Rates in Hz ('seconds') or spikes per bin ('bins')")


class _Context(NamedTuple):
    unit: str
    edges: np.ndarray | None  # (buckets,) lower bounds; None for fixed-length data


class LengthBuckets(TimeUnit, PooledMetric):
    """RMSE of mean rates and of pairwise correlations per bucket of trial lengths."""

    config_class = LengthBucketsConfig

    def prepare(self, data: SpikeData) -> _Context:
        variable = data.n_trials and data.lengths.min() != data.lengths.max()
        edges = metrics.length_bucket_edges(data.lengths, self.config.buckets) if variable else None
        return _Context(super().prepare(data), edges)

    def trial_statistics(self, spikes: SpikeData, context: _Context) -> SpikeData | None:
        return None if context.edges is None else spikes

    def pool(self, per_trial: SpikeData | None, weights: np.ndarray, context: _Context) -> Any:
        if per_trial is None:
            return None
        statistics = metrics.bucket_statistics(per_trial.counts, per_trial.lengths, context.edges,
                                               check_weights(weights, per_trial.n_trials))
        scale = per_trial.bin_width_s if context.unit == "seconds" else 1.0
        return statistics._replace(rates=statistics.rates / scale)

    def compare_statistics(self, model: Any, data: Any, context: _Context) -> dict[str, float]:
        if model is None or data is None:
            return {}
        both = (model.trials > 0) & (data.trials > 0)
        return {"bucket_rate_rmse": metrics.rmse(model.rates[both], data.rates[both], finite_only=True),
                "bucket_correlation_rmse": metrics.rmse(model.correlations[both], data.correlations[both],
                                                        finite_only=True)}

    def describe(self, context: _Context | None = None) -> dict[str, dict[str, str]]:
        unit = self.unit("rate", context.unit if context is not None else None)
        return {**lower_better(("bucket_rate_rmse",), unit), **lower_better(("bucket_correlation_rmse",), "")}
