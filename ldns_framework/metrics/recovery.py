"""How well inferred latents and rates recover the truth, where the truth is known (synthetic data).

METHOD.md section 7 (Lorenz latent recovery). Both take (trials, time, channels) arrays with
optional right-padding ``lengths`` (trials,); padded bins never count.
"""

from __future__ import annotations

import numpy as np

from ldns_framework.errors import DataError
from ldns_framework.metrics._arrays import valid_bins
from ldns_framework.metrics.paired import pearson_r


def _rows(array: np.ndarray, lengths: np.ndarray | None, field: str) -> np.ndarray:
    """(trials, time, channels) -> (valid bins, channels) float64, checked to be 3-d."""
    array = np.asarray(array)
    if array.ndim != 3:
        raise DataError(field, f"expected a 3-d array (trials, time, channels), got shape {array.shape}")
    return valid_bins(array, lengths, np.float64)


def latent_recovery_r2(train_latents: np.ndarray, train_true: np.ndarray, test_latents: np.ndarray,
                       test_true: np.ndarray, train_lengths: np.ndarray | None = None,
                       test_lengths: np.ndarray | None = None) -> float:
    """R^2 of a linear map from inferred latents to the true state, fitted on train, scored on test.

    Least squares with an intercept on the valid training bins; on the valid test bins
    ``R^2_k = 1 - SS_res,k / SS_tot,k`` per true dimension ``k`` (``SS_tot`` around the test
    mean), averaged uniformly over dimensions. 1 for an exact affine relation; unchanged by an
    invertible affine transform of the inferred latents; can be negative on held-out bins.
    """
    x_train = _rows(train_latents, train_lengths, "train_latents")
    y_train = _rows(train_true, train_lengths, "train_true")
    x_test = _rows(test_latents, test_lengths, "test_latents")
    y_test = _rows(test_true, test_lengths, "test_true")
    design = np.column_stack([x_train, np.ones(len(x_train))])  # (bins, D + 1)
    weights, *_ = np.linalg.lstsq(design, y_train, rcond=None)  # (D + 1, true dims)
    predicted = np.column_stack([x_test, np.ones(len(x_test))]) @ weights  # (bins, true dims)
    residual = ((y_test - predicted) ** 2).sum(axis=0)
    total = ((y_test - y_test.mean(axis=0)) ** 2).sum(axis=0)
    return float(np.mean(1.0 - residual / total))


def rate_correlation(rates: np.ndarray, true_rates: np.ndarray, lengths: np.ndarray | None = None) -> float:
    """Pearson r between inferred and true rates over every valid (trial, bin, neuron).

    NaN when either side is constant (:func:`~ldns_framework.metrics.pearson_r`).
    """
    return pearson_r(_rows(rates, lengths, "rates"), _rows(true_rates, lengths, "true_rates"))
