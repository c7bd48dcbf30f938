"""Inter-spike-interval (ISI) statistics per neuron and their comparison, model vs data.

Reference: LDNS_NOTES.md section 3.3 (``eval_utils.counts_to_spike_trains`` and
``compute_spike_stats_per_neuron``), METHOD.md section 7.

* Counts -> spike times: a bin with count ``c`` at index ``i`` gets ``c`` spikes at
  ``linspace(i, i + 1, c + 2)[1:-1]``, i.e. ``i + (j + 1) / (c + 1)`` for ``j = 0 .. c-1``
  (evenly inside the bin, never on its edges), in units of bins; times ``bin_width_s`` for
  seconds (the reference's ``dt = 1 / fps``; Lorenz uses bins). Counts are expected to be
  integer-valued; other values are rounded to the nearest integer.
* ISIs are the differences of consecutive spike times within one (trial, neuron), never
  across trials, pooled over trials per neuron. Two spikes in one bin are 1/3 bin apart.
* Per neuron: the mean and the ``np.std`` (ddof 0) of its pooled ISIs.
* A neuron with fewer than ``min_isis`` ISIs (default 2) gets NaN for both: with one ISI
  the std is trivially 0. The reference only NaNs neurons with no ISI (``min_isis=1``).
* RMSE across neurons skips every neuron that is NaN on either side (the reference's
  ``nanmean``); :class:`IsiComparison` reports how many were skipped. With no neuron left
  the RMSE is NaN.

Vectorised: the non-empty bins come from ``np.flatnonzero`` of the (trial, neuron, time)
layout, so they are sorted by spike train; ISIs between consecutive bins of one train are a
masked ``np.diff``, ISIs inside a multi-spike bin enter with their multiplicity as
``np.bincount`` weights (no per-spike array); moments are computed per
(trial, neuron) train (:func:`trial_isi_moments`) and pooled over trials exactly
(:func:`pool_isi_moments`), which a bootstrap fold re-weights without recomputing an ISI.
:func:`spike_times` (``np.repeat`` over the bins) gives the same ISIs spike by spike.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ldns_framework.metrics._arrays import check_counts, check_lengths, check_same_neurons, trial_chunks, valid_mask
from ldns_framework.metrics.paired import pearson_r, rmse


class IsiStatistics(NamedTuple):
    """Per-neuron ISI statistics: arrays of shape (neurons,)."""

    mean: np.ndarray  # mean ISI (bins, or seconds); NaN where n_isis < min_isis
    std: np.ndarray  # std ISI, ddof 0 (bins, or seconds); NaN where n_isis < min_isis
    n_isis: np.ndarray  # number of ISIs pooled per neuron (int64)


class IsiComparison(NamedTuple):
    """Model vs data ISI statistics compared across neurons."""

    mean_isi_rmse: float
    std_isi_rmse: float
    mean_isi_r: float  # Pearson r of per-neuron mean ISI (Lorenz reference statistic)
    std_isi_r: float
    n_neurons_compared: int
    n_neurons_excluded: int  # NaN on either side (fewer than min_isis ISIs)


def spike_times(counts: np.ndarray, lengths: np.ndarray | None = None,
                bin_width_s: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All spike times as flat arrays (trial, neuron, time), sorted by trial, neuron, time.

    Times in bins from the trial start, or seconds given ``bin_width_s``. Placement follows
    the reference: ``c`` spikes at ``linspace(i, i + 1, c + 2)[1:-1]`` in bin ``i``.
    """
    counts = check_counts(counts)
    lengths = check_lengths(lengths, counts)
    trials, neurons, times = [], [], []
    for part in trial_chunks(counts):
        train, neuron, time, spikes = _chunk_nonzero_bins(counts[part], lengths[part])
        per_bin = spikes.astype(np.int64)
        owner = np.repeat(np.arange(per_bin.size), per_bin)  # the bin of every spike
        first = np.cumsum(per_bin) - per_bin  # index of each bin's first spike
        within = np.arange(owner.size) - first[owner]  # j = 0 .. c-1 inside the bin
        trials.append(train[owner] // counts.shape[2] + part.start)
        neurons.append(neuron[owner])
        times.append(time[owner] + (within + 1.0) / (spikes[owner] + 1.0))
    if not trials:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    time = np.concatenate(times)
    return np.concatenate(trials), np.concatenate(neurons), time * bin_width_s if bin_width_s else time


def _chunk_nonzero_bins(counts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, ...]:
    """Non-empty valid bins of one chunk of trials, sorted by (trial, neuron, time).

    Returns (spike-train id ``trial * neurons + neuron``, neuron, bin index, count as float).
    """
    _, n_time, n_neurons = counts.shape
    occupied = np.ascontiguousarray((counts != 0).transpose(0, 2, 1))  # (trials, neurons, time)
    if np.any(lengths < n_time):
        occupied &= valid_mask(lengths, n_time)[:, None, :]  # padding never counts
    flat = np.flatnonzero(occupied)
    train, time = np.divmod(flat, n_time)
    trial, neuron = np.divmod(train, n_neurons)
    spikes = np.rint(counts.reshape(-1)[(trial * n_time + time) * n_neurons + neuron]).astype(np.float64)
    keep = spikes > 0
    return train[keep], neuron[keep], time[keep], spikes[keep]


class IsiMoments(NamedTuple):
    """ISI moments of every (trial, neuron) spike train, in bins: arrays of shape (trials, neurons)."""

    n: np.ndarray  # number of ISIs
    mean: np.ndarray  # mean ISI, 0 where n == 0
    scatter: np.ndarray  # sum of squared deviations from the train's mean ISI


def _chunk_isi_moments(counts: np.ndarray, lengths: np.ndarray) -> IsiMoments:
    """:class:`IsiMoments` of one chunk of trials.

    Works on non-empty bins instead of single spikes. A bin with ``c`` spikes holds ``c - 1``
    ISIs of ``1 / (c + 1)``; consecutive non-empty bins ``i < j`` of one train add the ISI
    from the last spike of ``i`` to the first of ``j``: ``j - i + 1 / (c_j + 1) - c_i / (c_i + 1)``.
    """
    n_trains = counts.shape[0] * counts.shape[2]
    train, _, time, spikes = _chunk_nonzero_bins(counts, lengths)
    same_train = train[1:] == train[:-1]
    gaps = (time[1:] - time[:-1] + 1.0 / (spikes[1:] + 1.0) - spikes[:-1] / (spikes[:-1] + 1.0))[same_train]
    gap_train = train[1:][same_train]
    inner = 1.0 / (spikes + 1.0)  # ISI inside a bin, repeated spikes - 1 times
    repeats = spikes - 1.0
    count = (np.bincount(gap_train, minlength=n_trains) + np.bincount(train, weights=repeats, minlength=n_trains))
    total = (np.bincount(gap_train, weights=gaps, minlength=n_trains)
             + np.bincount(train, weights=repeats * inner, minlength=n_trains))
    mean = total / np.maximum(count, 1.0)
    scatter = (np.bincount(gap_train, weights=(gaps - mean[gap_train]) ** 2, minlength=n_trains)
               + np.bincount(train, weights=repeats * (inner - mean[train]) ** 2, minlength=n_trains))
    shape = (counts.shape[0], counts.shape[2])
    return IsiMoments(count.reshape(shape), mean.reshape(shape), scatter.reshape(shape))


def trial_isi_moments(counts: np.ndarray, lengths: np.ndarray | None = None) -> IsiMoments:
    """ISI count, mean and scatter of every (trial, neuron) train, in bins (module docstring).

    ISIs never cross trials, so these pool exactly over any multiset of trials
    (:func:`pool_isi_moments`).
    """
    counts = check_counts(counts)
    lengths = check_lengths(lengths, counts)
    parts = [_chunk_isi_moments(counts[part], lengths[part]) for part in trial_chunks(counts)]
    if not parts:
        empty = np.zeros((0, counts.shape[2]))
        return IsiMoments(empty, empty, empty)
    return IsiMoments(*(np.concatenate(field) for field in zip(*parts)))


def pool_isi_moments(moments: IsiMoments, weights: np.ndarray | None = None, bin_width_s: float | None = None,
                     min_isis: int = 2) -> IsiStatistics:
    """Per-neuron ISI mean and std (ddof 0) of trials taken ``weights[i]`` times (None: once each).

    Exact: pooled mean ``sum w n m / sum w n``, pooled scatter ``sum w (S + n (m - mean)**2)``.
    Neurons with fewer than ``min_isis`` pooled ISIs get NaN. Units: bins, or seconds given
    ``bin_width_s``.
    """
    w = np.ones(moments.n.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    total = w @ moments.n  # (neurons,)
    safe = np.maximum(total, 1.0)
    mean = (w @ (moments.n * moments.mean)) / safe
    scatter = w @ (moments.scatter + moments.n * (moments.mean - mean) ** 2)
    enough = total >= max(min_isis, 1)
    scale = bin_width_s if bin_width_s is not None else 1.0
    return IsiStatistics(mean=np.where(enough, mean * scale, np.nan),
                         std=np.where(enough, np.sqrt(np.clip(scatter, 0.0, None) / safe) * scale, np.nan),
                         n_isis=np.rint(total).astype(np.int64))


def isi_statistics(counts: np.ndarray, lengths: np.ndarray | None = None, bin_width_s: float | None = None,
                   min_isis: int = 2) -> IsiStatistics:
    """Per-neuron mean and std (ddof 0) of the ISIs pooled over trials (module docstring)."""
    return pool_isi_moments(trial_isi_moments(counts, lengths), None, bin_width_s, min_isis)


def isi_comparison(model_counts: np.ndarray, data_counts: np.ndarray,
                   lengths_model: np.ndarray | None = None, lengths_data: np.ndarray | None = None,
                   bin_width_s: float | None = None, min_isis: int = 2) -> IsiComparison:
    """RMSE and Pearson r across neurons of mean ISI and std ISI, model vs data.

    Units of the RMSEs: bins, or seconds given ``bin_width_s``. Neurons NaN on either side are
    excluded from all four numbers and counted in ``n_neurons_excluded``.
    """
    check_same_neurons(check_counts(model_counts, "model_counts"), check_counts(data_counts, "data_counts"))
    model = isi_statistics(model_counts, lengths_model, bin_width_s, min_isis)
    data = isi_statistics(data_counts, lengths_data, bin_width_s, min_isis)
    return compare_isi_statistics(model, data)


def compare_isi_statistics(model: IsiStatistics, data: IsiStatistics) -> IsiComparison:
    """:class:`IsiComparison` from precomputed statistics (e.g. data statistics computed once)."""
    compared = int(np.sum(np.isfinite(model.mean) & np.isfinite(data.mean)))
    return IsiComparison(
        mean_isi_rmse=rmse(model.mean, data.mean, finite_only=True),
        std_isi_rmse=rmse(model.std, data.std, finite_only=True),
        mean_isi_r=pearson_r(model.mean, data.mean),
        std_isi_r=pearson_r(model.std, data.std),
        n_neurons_compared=compared,
        n_neurons_excluded=int(model.mean.size - compared),
    )
