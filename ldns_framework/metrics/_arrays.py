"""Shared input handling for the metrics: validation, valid-bin masks and trial chunks.

Every metric takes counts shaped (trials, time, neurons) and optional ``lengths`` (trials,):
trial ``i`` holds data in bins ``0 .. lengths[i] - 1`` and padding after that, which never
counts as data (DESIGN.md section 2). A length of 0 (an empty trial) is accepted and
contributes nothing.

Large arrays are processed in chunks of whole trials (:func:`trial_chunks`) so that no
float64 copy of a 2000 x 140 x 182 array is ever materialised at once.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from ldns_framework.errors import DataError

# Elements (trials x time x neurons) processed per chunk: 1M float64 values = 8 MB (cache-friendly).
CHUNK_ELEMENTS = 1_000_000


def check_counts(counts: np.ndarray, field: str = "counts") -> np.ndarray:
    """Return ``counts`` as a numpy array after checking it is 3-d (trials, time, neurons)."""
    counts = np.asarray(counts)
    if counts.ndim != 3:
        raise DataError(field, f"expected a 3-d array (trials, time, neurons), got shape {counts.shape}")
    if counts.dtype == bool or not np.issubdtype(counts.dtype, np.number):
        raise DataError(field, f"expected numeric spike counts, got dtype {counts.dtype}")
    return counts


def check_lengths(lengths: np.ndarray | None, counts: np.ndarray, field: str = "lengths") -> np.ndarray:
    """Valid length per trial as int64 (trials,); ``None`` means every bin is valid."""
    n_trials, n_time = counts.shape[:2]
    if lengths is None:
        return np.full(n_trials, n_time, dtype=np.int64)
    lengths = np.asarray(lengths)
    if lengths.shape != (n_trials,):
        raise DataError(field, f"expected shape ({n_trials},), got {lengths.shape}")
    if lengths.size and not np.issubdtype(lengths.dtype, np.integer):
        if not np.array_equal(lengths, np.round(lengths)):
            raise DataError(field, "expected integer lengths")
    lengths = lengths.astype(np.int64)
    if lengths.size and (lengths.min() < 0 or lengths.max() > n_time):
        raise DataError(field, f"expected lengths in [0, {n_time}], got [{lengths.min()}, {lengths.max()}]")
    return lengths


def valid_mask(lengths: np.ndarray, n_time: int) -> np.ndarray:
    """Boolean mask (trials, time): True where the bin is data, False where it is padding."""
    return np.arange(n_time)[None, :] < lengths[:, None]


def trial_chunks(counts: np.ndarray, elements: int | None = None) -> Iterator[slice]:
    """Slices of whole trials, each covering about ``elements`` array entries (at least one trial).

    ``elements`` defaults to :data:`CHUNK_ELEMENTS`, read at call time.
    """
    elements = CHUNK_ELEMENTS if elements is None else elements
    n_trials = counts.shape[0]
    per_trial = max(1, counts.shape[1] * counts.shape[2])
    step = max(1, elements // per_trial)
    for start in range(0, n_trials, step):
        yield slice(start, min(start + step, n_trials))


def valid_bins(array: np.ndarray, lengths: np.ndarray | None = None, dtype: type | None = None) -> np.ndarray:
    """(trials, time, channels) -> (valid bins, channels), trial-major; padding dropped.

    ``lengths`` None means every bin is valid; ``dtype`` converts (without a copy when it can).
    """
    array = np.asarray(array)
    if lengths is None or np.all(np.asarray(lengths) == array.shape[1]):
        rows = array.reshape(-1, array.shape[2])
    else:
        rows = array[valid_mask(np.asarray(lengths), array.shape[1])]
    return rows if dtype is None else rows.astype(dtype, copy=False)


def trial_sums(counts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Per trial and channel, the sum over the valid bins: (trials, channels) float64.

    Integer counts are summed exactly in int64 before the conversion; chunked over trials.
    """
    accumulate = np.int64 if np.issubdtype(counts.dtype, np.integer) else np.float64
    if np.all(lengths == counts.shape[1]):
        return counts.sum(axis=1, dtype=accumulate).astype(np.float64)
    out = np.empty((counts.shape[0], counts.shape[2]))
    for part in trial_chunks(counts):
        mask = valid_mask(lengths[part], counts.shape[1])  # (trials, time)
        out[part] = np.einsum("it,itn->in", mask.astype(accumulate), counts[part].astype(accumulate, copy=False))
    return out


def trial_mean(per_trial: np.ndarray, weights: np.ndarray | None, valid: np.ndarray) -> np.ndarray:
    """Weighted mean over the trial axis of ``per_trial`` (trials, ...), counting only ``valid`` trials.

    ``weights`` (trials,) are trial multiplicities (None: each trial once). NaN when no valid
    trial has a positive weight.
    """
    w = np.ones(valid.shape) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w * valid  # (trials,)
    total = w.sum()
    if total <= 0:
        return np.full(per_trial.shape[1:], np.nan)
    return np.tensordot(w, per_trial, axes=(0, 0)) / total


def check_same_neurons(model_counts: np.ndarray, data_counts: np.ndarray) -> None:
    """Raise :class:`DataError` unless both arrays have the same number of neurons."""
    if model_counts.shape[2] != data_counts.shape[2]:
        raise DataError("data_counts", f"expected {model_counts.shape[2]} neurons like model_counts, "
                                       f"got {data_counts.shape[2]}")
