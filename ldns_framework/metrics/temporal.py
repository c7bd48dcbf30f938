"""Temporal auto- and cross-correlations of spike counts, per neuron and per neuron group.

Reference: LDNS_NOTES.md section 3.5 (``eval_utils.get_temp_corr_summary``,
``group_neurons_temp_corr``), METHOD.md section 7.

* Each (trial, neuron) series is mean-subtracted over its valid bins; padding is set to 0
  after that, so it adds nothing.
* The correlation at lag ``k`` of series ``x_i`` with ``x_j`` is the reference's
  ``np.correlate(x_i, x_j, "full")`` entry for lag ``k``, ``sum_n x_i[n + k] x_j[n]``,
  divided by the trial's valid length ``T`` ("biased" normalisation). These are
  covariances (units: counts squared per bin pair), not normalised by the variance.
  Lags run ``-max_lag .. max_lag`` (default 30); lags beyond the trial length are 0.
* Computed with zero-padded real FFTs over time (length >= T + max_lag, so no wrap-around),
  vectorised over trials and neurons and chunked over trials.
* Per trial (:func:`trial_auto_correlations`, :func:`trial_group_cross_correlations`) or
  averaged over trials (:func:`auto_correlations`, :func:`group_cross_correlations`): the
  average weighs every trial with at least one valid bin equally (as the reference); empty
  trials (length 0) are skipped. With no valid trial the result is NaN.
* Groups (:func:`neuron_groups`): neurons sorted by ``sum_j corr_ij**2`` (zero-lag
  correlation matrix of :mod:`.correlation`, diagonal 0; stable sort, descending) and cut
  into ``n_groups`` groups of ``N // n_groups``, the last absorbing the remainder. Computed
  on the data and reused for the model. This is the reference's grouping whenever the
  reference yields ``n_groups`` groups (remainder ``N % n_groups <= N // n_groups``, e.g.
  182 neurons -> 45, 45, 45, 47); for small N the reference's slicing makes more groups
  (11 neurons -> 2, 2, 2, 2, 3), here it stays 2, 2, 2, 5. With fewer neurons than
  groups, every neuron is its own group (the reference fails there).
* Group summaries: the auto-correlation averaged over the group's neurons and trials, with
  lag 0 set to 0 (as the reference); the cross-correlation averaged over the group's pairs
  ``i < j`` (in group order) and trials; NaN for a group with no pair.
"""

from __future__ import annotations

from typing import Iterator, NamedTuple, Sequence

import numpy as np
from scipy import fft as sp_fft

from ldns_framework.metrics._arrays import check_counts, check_lengths, check_same_neurons, trial_chunks, valid_mask
from ldns_framework.metrics.correlation import correlation_matrix
from ldns_framework.metrics.paired import rmse

DEFAULT_MAX_LAG = 30


class TemporalSummary(NamedTuple):
    """Group-averaged temporal correlations, one row per group."""

    lags: np.ndarray  # (2 * max_lag + 1,): -max_lag .. max_lag
    auto: np.ndarray  # (groups, lags): mean auto-correlation of the group's neurons, lag 0 set to 0
    cross: np.ndarray  # (groups, lags): mean cross-correlation over the group's pairs i < j


class TemporalComparison(NamedTuple):
    """Temporal summaries of model and data with the groups computed on the data."""

    groups: list[np.ndarray]
    model: TemporalSummary
    data: TemporalSummary


def lag_axis(max_lag: int = DEFAULT_MAX_LAG) -> np.ndarray:
    """The lags ``-max_lag .. max_lag`` in bins."""
    return np.arange(-max_lag, max_lag + 1)


def _centred_spectra(chunk: np.ndarray, chunk_lengths: np.ndarray, n_fft: int) -> np.ndarray:
    """rfft over time of the per-trial mean-subtracted, padding-zeroed series: (trials, freqs, neurons)."""
    n_trials, n_time, n_neurons = chunk.shape
    series = np.zeros((n_trials, n_fft, n_neurons))  # zero-padded to n_fft: no wrap-around
    valid = series[:, :n_time]
    valid[...] = chunk
    if np.any(chunk_lengths < n_time):
        mask = valid_mask(chunk_lengths, n_time)[:, :, None]  # (trials, time, 1)
        valid *= mask
        valid -= valid.sum(axis=1, keepdims=True) / np.maximum(chunk_lengths, 1)[:, None, None]
        valid *= mask
    else:
        valid -= valid.mean(axis=1, keepdims=True)
    return sp_fft.rfft(series, axis=1, overwrite_x=True)


def _take_lags(circular: np.ndarray, max_lag: int) -> np.ndarray:
    """Lags -max_lag..max_lag from circular correlations of length n_fft along the last axis."""
    n_fft = circular.shape[-1]
    order = np.concatenate([np.arange(n_fft - max_lag, n_fft), np.arange(0, max_lag + 1)])
    return circular[..., order]


def _fft_length(n_time: int, max_lag: int) -> int:
    return sp_fft.next_fast_len(n_time + max_lag, real=True)


def _check_max_lag(max_lag: int) -> int:
    if int(max_lag) != max_lag or max_lag < 0:
        raise ValueError(f"max_lag must be a non-negative integer, got {max_lag}")
    return int(max_lag)


def _chunk_autos(spectra: np.ndarray, chunk_lengths: np.ndarray, max_lag: int, n_fft: int) -> np.ndarray:
    """Per-trial biased auto-correlations (trials, neurons, lags) from spectra (trials, freqs, neurons)."""
    power = (spectra.real ** 2 + spectra.imag ** 2).transpose(0, 2, 1)  # (trials, neurons, freqs)
    circular = sp_fft.irfft(power, n=n_fft, axis=2)  # (trials, neurons, n_fft)
    return _take_lags(circular, max_lag) / np.maximum(chunk_lengths, 1)[:, None, None]


def _chunk_cross(spectra: np.ndarray, chunk_lengths: np.ndarray, max_lag: int, n_fft: int,
                 groups: Sequence[np.ndarray]) -> np.ndarray:
    """Per-trial cross-correlations averaged over each group's pairs i < j: (trials, groups, lags)."""
    out = np.full((spectra.shape[0], len(groups), 2 * max_lag + 1), np.nan)
    for g, group in enumerate(groups):
        if group.size < 2:
            continue
        member = spectra[:, :, group]  # (trials, freqs, group)
        earlier = np.cumsum(member, axis=2) - member  # sum over i < j
        pair_sum = np.sum(np.conj(member) * earlier, axis=2)  # (trials, freqs)
        circular = sp_fft.irfft(pair_sum, n=n_fft, axis=1)  # (trials, n_fft)
        n_pairs = group.size * (group.size - 1) // 2
        out[:, g] = _take_lags(circular, max_lag) / (n_pairs * np.maximum(chunk_lengths, 1)[:, None])
    return out


def _per_trial(counts: np.ndarray, lengths: np.ndarray | None, max_lag: int,
               groups: Sequence[np.ndarray] | None) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
    """Per chunk of trials: (slice, valid (trials,), auto (trials, neurons, lags) or cross
    (trials, groups, lags) when ``groups`` is given); biased normalisation per trial."""
    counts = check_counts(counts)
    lengths = check_lengths(lengths, counts)
    max_lag = _check_max_lag(max_lag)
    n_fft = _fft_length(counts.shape[1], max_lag)
    for part in trial_chunks(counts):
        spectra = _centred_spectra(counts[part], lengths[part], n_fft)  # (trials, freqs, neurons)
        values = (_chunk_autos(spectra, lengths[part], max_lag, n_fft) if groups is None else
                  _chunk_cross(spectra, lengths[part], max_lag, n_fft, groups))
        yield part, lengths[part] > 0, values


def _stacked(counts: np.ndarray, lengths: np.ndarray | None, max_lag: int,
             groups: Sequence[np.ndarray] | None, channels: int) -> np.ndarray:
    out = np.zeros((np.shape(counts)[0], channels, 2 * _check_max_lag(max_lag) + 1))
    for part, _, values in _per_trial(counts, lengths, max_lag, groups):
        out[part] = values
    return out


def _trial_average(counts: np.ndarray, lengths: np.ndarray | None, max_lag: int,
                   groups: Sequence[np.ndarray] | None, channels: int) -> np.ndarray:
    """The mean over trials with a valid bin of the per-trial values, summed chunk by chunk (the
    per-trial array is never held whole); NaN when no trial has a valid bin."""
    total = np.zeros((channels, 2 * _check_max_lag(max_lag) + 1))
    n_valid = 0
    for _, valid, values in _per_trial(counts, lengths, max_lag, groups):
        total += values[valid].sum(axis=0)
        n_valid += int(valid.sum())
    return total / n_valid if n_valid else np.full_like(total, np.nan)


def _groups(groups: Sequence[np.ndarray]) -> list[np.ndarray]:
    return [np.asarray(group, dtype=np.int64) for group in groups]


def trial_auto_correlations(counts: np.ndarray, lengths: np.ndarray | None = None,
                            max_lag: int = DEFAULT_MAX_LAG) -> np.ndarray:
    """Per-trial, per-neuron auto-correlation: (trials, neurons, 2 * max_lag + 1).

    A trial's values are a sum over its bins divided by its length, so any multiset of trials
    averages them exactly (:func:`~ldns_framework.metrics.trial_mean`). Empty trials give 0.
    """
    return _stacked(counts, lengths, max_lag, None, np.shape(counts)[2])


def auto_correlations(counts: np.ndarray, lengths: np.ndarray | None = None,
                      max_lag: int = DEFAULT_MAX_LAG) -> np.ndarray:
    """Per-neuron auto-correlation averaged over trials: (neurons, 2 * max_lag + 1).

    Lag 0 is kept (it is the biased variance); the group summary zeroes it as the reference
    does. Symmetric in the lag. NaN when no trial has a valid bin.
    """
    return _trial_average(counts, lengths, max_lag, None, np.shape(counts)[2])


def trial_group_cross_correlations(counts: np.ndarray, groups: Sequence[np.ndarray],
                                   lengths: np.ndarray | None = None,
                                   max_lag: int = DEFAULT_MAX_LAG) -> np.ndarray:
    """Per-trial cross-correlation averaged over each group's pairs: (trials, groups, 2 * max_lag + 1).

    NaN for a group with fewer than two neurons; empty trials give 0 (see :func:`group_cross_correlations`).
    """
    groups = _groups(groups)
    return _stacked(counts, lengths, max_lag, groups, len(groups))


def group_cross_correlations(counts: np.ndarray, groups: Sequence[np.ndarray], lengths: np.ndarray | None = None,
                             max_lag: int = DEFAULT_MAX_LAG) -> np.ndarray:
    """Cross-correlation averaged over the pairs ``i < j`` of each group and over trials.

    Shape (groups, 2 * max_lag + 1); ``i < j`` is the order of the neurons inside the group,
    as in the reference. Via the Fourier identity
    ``sum_{i<j} X_i conj(X_j) = sum_j conj(X_j) * (X_1 + ... + X_{j-1})``. NaN for a group
    with fewer than two neurons or when no trial has a valid bin.
    """
    groups = _groups(groups)
    return _trial_average(counts, lengths, max_lag, groups, len(groups))


def group_means(per_neuron: np.ndarray, groups: Sequence[np.ndarray]) -> np.ndarray:
    """Mean of ``per_neuron`` (neurons, ...) over each group's neurons: (groups, ...); NaN for an empty group."""
    return np.stack([per_neuron[group].mean(axis=0) if group.size else np.full(per_neuron.shape[1:], np.nan)
                     for group in _groups(groups)]) if len(groups) else np.zeros((0, *per_neuron.shape[1:]))


def neuron_groups(counts: np.ndarray, lengths: np.ndarray | None = None, n_groups: int = 4) -> list[np.ndarray]:
    """Neuron indices in ``n_groups`` groups by summed squared correlation, most correlated first.

    The reference's ``group_neurons_temp_corr`` (module docstring); call it on the data.
    """
    corr = correlation_matrix(counts, lengths)
    np.fill_diagonal(corr, 0.0)
    order = np.argsort(-np.sum(corr ** 2, axis=0), kind="stable")
    size = order.size // n_groups
    if size == 0:  # fewer neurons than groups: one group per neuron
        return [order[k:k + 1] for k in range(order.size)]
    return [order[k * size:(k + 1) * size] for k in range(n_groups - 1)] + [order[(n_groups - 1) * size:]]


def temporal_correlation_summary(counts: np.ndarray, groups: Sequence[np.ndarray],
                                 lengths: np.ndarray | None = None,
                                 max_lag: int = DEFAULT_MAX_LAG) -> TemporalSummary:
    """Mean auto-correlation (lag 0 set to 0) and mean pairwise cross-correlation per group."""
    autos = auto_correlations(counts, lengths, max_lag)  # (neurons, lags)
    autos[:, max_lag] = 0.0
    auto = group_means(autos, groups)  # (groups, lags)
    cross = group_cross_correlations(counts, groups, lengths, max_lag)
    return TemporalSummary(lags=lag_axis(max_lag), auto=auto, cross=cross)


def compare_temporal_correlations(model_counts: np.ndarray, data_counts: np.ndarray,
                                  lengths_model: np.ndarray | None = None, lengths_data: np.ndarray | None = None,
                                  max_lag: int = DEFAULT_MAX_LAG, n_groups: int = 4) -> TemporalComparison:
    """Group summaries of model and data, with the groups computed on the data only."""
    check_same_neurons(check_counts(model_counts, "model_counts"), check_counts(data_counts, "data_counts"))
    groups = neuron_groups(data_counts, lengths_data, n_groups)
    return TemporalComparison(groups=groups,
                              model=temporal_correlation_summary(model_counts, groups, lengths_model, max_lag),
                              data=temporal_correlation_summary(data_counts, groups, lengths_data, max_lag))


def autocorr_rmse(model_counts: np.ndarray, data_counts: np.ndarray, lengths_model: np.ndarray | None = None,
                  lengths_data: np.ndarray | None = None, max_lag: int = 10) -> float:
    """RMSE of the per-neuron auto-correlation at lags 1..max_lag (default 10), model vs data.

    ``sqrt(mean over neurons and lags 1..max_lag of (auto_model - auto_data)**2)``, units of the
    auto-correlation (counts squared). Lag 0 (the variance) is not included. Symmetric in
    its arguments. NaN when either side has no valid trial.
    """
    check_same_neurons(check_counts(model_counts, "model_counts"), check_counts(data_counts, "data_counts"))
    max_lag = _check_max_lag(max_lag)
    if max_lag == 0:
        return float("nan")
    model = auto_correlations(model_counts, lengths_model, max_lag)[:, max_lag + 1:]
    data = auto_correlations(data_counts, lengths_data, max_lag)[:, max_lag + 1:]
    return rmse(model, data)
