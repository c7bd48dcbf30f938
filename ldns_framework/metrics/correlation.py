"""Pairwise (zero-lag) correlations between neurons and their comparison, model vs data.

Reference: LDNS_NOTES.md section 3.2, METHOD.md section 7. The correlation matrix is
``np.corrcoef`` over neurons on all valid bins of all trials concatenated (trials x time
rows). Differences from ``np.corrcoef``:

* A neuron with zero variance (silent, or constant) has correlation 0 with every neuron,
  itself included (its diagonal entry is 0, not NaN). The reference gets NaN there and drops
  those entries with ``nanmean``; here they count as 0 on both sides, so a neuron silent in
  the model but not in the data is penalised rather than ignored.
* It is accumulated in float64 over chunks of trials, with the means removed first, so no
  float copy of the whole data set is made.

Two RMSEs are provided. :func:`correlation_rmse` is over the N(N-1)/2 unique pairs (strict
lower triangle), the one METHOD.md asks to report. :func:`correlation_rmse_all_entries` is
the reference's number: lower triangles with the diagonal and upper triangle zeroed, then
``sqrt(mean over all N**2 entries)``, which equals the unique-pair RMSE divided by
``sqrt(2N / (N - 1))``.
"""

from __future__ import annotations

import numpy as np

from ldns_framework.metrics._arrays import check_counts, check_lengths, trial_chunks, trial_sums, valid_bins
from ldns_framework.metrics.paired import pearson_r, rmse


def correlation_matrix(counts: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
    """Pearson correlation (neurons, neurons) over all valid bins concatenated.

    Zero-variance neurons get 0 in their row and column (diagonal included); with fewer than
    two valid bins every neuron has zero variance and the matrix is all zeros.
    """
    counts = check_counts(counts)
    lengths = check_lengths(lengths, counts)
    n_neurons = counts.shape[2]
    n_bins = int(lengths.sum())
    if n_bins == 0:
        return np.zeros((n_neurons, n_neurons))
    mean = trial_sums(counts, lengths).sum(axis=0) / n_bins  # (neurons,)
    scatter = np.zeros((n_neurons, n_neurons))
    for part in trial_chunks(counts):
        rows = valid_bins(counts[part], lengths[part], np.float64) - mean  # (valid bins in chunk, neurons)
        scatter += rows.T @ rows
    std = np.sqrt(np.clip(np.diag(scatter), 0.0, None))
    # A neuron is constant iff its scatter is 0 up to rounding relative to its scale.
    active = std > 1e-12 * np.sqrt(n_bins) * np.maximum(1.0, np.abs(mean))
    inverse = np.where(active, 1.0 / np.where(active, std, 1.0), 0.0)
    corr = scatter * inverse[:, None] * inverse[None, :]
    np.clip(corr, -1.0, 1.0, out=corr)
    corr[np.diag_indices(n_neurons)] = active.astype(np.float64)
    return corr


def lower_triangle(matrix: np.ndarray) -> np.ndarray:
    """The strict lower triangle (k = -1) of a square matrix as a flat array of unique pairs."""
    rows, cols = np.tril_indices(matrix.shape[0], k=-1)
    return matrix[rows, cols]


def _check_pair(corr_a: np.ndarray, corr_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    corr_a, corr_b = np.asarray(corr_a, dtype=np.float64), np.asarray(corr_b, dtype=np.float64)
    if corr_a.ndim != 2 or corr_a.shape[0] != corr_a.shape[1] or corr_a.shape != corr_b.shape:
        raise ValueError(f"expected two square matrices of one shape, got {corr_a.shape} and {corr_b.shape}")
    return corr_a, corr_b


def correlation_rmse(corr_model: np.ndarray, corr_data: np.ndarray) -> float:
    """RMSE over unique pairs (strict lower triangle) between two correlation matrices.

    NaN when there is no pair (a single neuron). Symmetric in its arguments.
    """
    corr_model, corr_data = _check_pair(corr_model, corr_data)
    return rmse(lower_triangle(corr_model), lower_triangle(corr_data))


def correlation_rmse_all_entries(corr_model: np.ndarray, corr_data: np.ndarray) -> float:
    """The reference's RMSE: strict lower triangles, every other entry 0, mean over all N**2.

    ``sqrt(nanmean((tril(C_model, -1) - tril(C_data, -1)) ** 2))`` with the N**2 entries in
    the denominator (LDNS_NOTES.md section 3.2). 0 for a single neuron.
    """
    corr_model, corr_data = _check_pair(corr_model, corr_data)
    diff = lower_triangle(corr_model) - lower_triangle(corr_data)
    n_entries = corr_model.shape[0] ** 2
    return float(np.sqrt(np.sum(diff ** 2) / n_entries)) if n_entries else float("nan")


def correlation_r(corr_model: np.ndarray, corr_data: np.ndarray) -> float:
    """Pearson r between the off-diagonal (unique-pair) entries of two correlation matrices.

    The Lorenz reference statistic (LDNS_NOTES.md section 4.3). NaN with fewer than two
    pairs or when either set of entries is constant.
    """
    corr_model, corr_data = _check_pair(corr_model, corr_data)
    return pearson_r(lower_triangle(corr_model), lower_triangle(corr_data))
