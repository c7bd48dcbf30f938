"""Statistics per bucket of trial lengths, for variable-length data (speech-style trials).

Samples of variable length should match the data at every length, not only on average: a model
may get long trials right and short ones wrong. Trials are grouped by length into buckets whose
edges are quantiles of the real trials' lengths (so each real bucket holds about as many trials),
and each bucket gets its per-neuron mean rates and pairwise correlations, over valid bins only.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ldns_framework.errors import DataError
from ldns_framework.metrics._arrays import check_counts, check_lengths, trial_sums
from ldns_framework.metrics.correlation import correlation_matrix, lower_triangle
from ldns_framework.metrics.rates import pooled_mean_rates


def length_bucket_edges(lengths: np.ndarray, n_buckets: int) -> np.ndarray:
    """Lower bounds (buckets,) of length buckets: distinct quantiles of ``lengths``, the first the
    shortest length; at most ``n_buckets`` (fewer when lengths repeat)."""
    lengths = np.asarray(lengths)
    if int(n_buckets) < 1 or not lengths.size:
        raise DataError("lengths", f"expected trials and at least one bucket, got {lengths.size} trials, "
                                   f"{n_buckets} buckets")
    quantiles = np.quantile(lengths, np.arange(int(n_buckets)) / int(n_buckets), method="lower")
    return np.unique(quantiles.astype(np.int64))


def bucket_index(lengths: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bucket of each trial (trials,): the last edge at or below its length; -1 below the first edge."""
    return np.searchsorted(edges, np.asarray(lengths), side="right") - 1


class BucketStatistics(NamedTuple):
    """Per bucket: trials (buckets,), mean rates (buckets, neurons) in spikes per bin, pairwise
    correlations (buckets, pairs); NaN rows for buckets without trials."""

    trials: np.ndarray
    rates: np.ndarray
    correlations: np.ndarray


def bucket_statistics(counts: np.ndarray, lengths: np.ndarray | None, edges: np.ndarray,
                      weights: np.ndarray | None = None) -> BucketStatistics:
    """Statistics of each length bucket of the trials taken ``weights`` times (None: once each)."""
    counts = check_counts(counts)
    lengths = check_lengths(lengths, counts)
    weights = np.ones(counts.shape[0], np.int64) if weights is None else np.asarray(weights, np.int64)
    buckets = bucket_index(lengths, edges)
    n_neurons = counts.shape[2]
    trials = np.zeros(len(edges))
    rates = np.full((len(edges), n_neurons), np.nan)
    correlations = np.full((len(edges), n_neurons * (n_neurons - 1) // 2), np.nan)
    for b in range(len(edges)):
        members = np.flatnonzero((buckets == b) & (weights > 0))
        if not members.size:
            continue
        w = weights[members]
        trials[b] = w.sum()
        rates[b] = pooled_mean_rates(trial_sums(counts[members], lengths[members]), lengths[members], w)
        repeated = np.repeat(members, w)
        correlations[b] = lower_triangle(correlation_matrix(counts[repeated], lengths[repeated]))
    return BucketStatistics(trials, rates, correlations)
