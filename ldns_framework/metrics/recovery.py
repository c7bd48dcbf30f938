"""How well inferred latents and rates recover the truth, where the truth is known (synthetic data)."""

from __future__ import annotations

import numpy as np


def _valid_rows(array: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """(trials, time, dim) -> (valid bins, dim): padding dropped."""
    trials, time = array.shape[:2]
    if lengths is None:
        return array.reshape(trials * time, -1)
    mask = np.arange(time)[None, :] < np.asarray(lengths)[:, None]  # (trials, time)
    return array[mask]


def latent_recovery_r2(train_latents: np.ndarray, train_true: np.ndarray, test_latents: np.ndarray,
                       test_true: np.ndarray, train_lengths: np.ndarray | None = None,
                       test_lengths: np.ndarray | None = None) -> float:
    """R^2 of a linear map from inferred latents to the true state, fitted on train, scored on test.

    METHOD.md section 7 (Lorenz latent recovery): least squares with an intercept, R^2 per true
    dimension averaged uniformly over dimensions.
    """
    x_train = _valid_rows(train_latents, train_lengths)
    y_train = _valid_rows(train_true, train_lengths)
    x_test = _valid_rows(test_latents, test_lengths)
    y_test = _valid_rows(test_true, test_lengths)
    design = np.column_stack([x_train, np.ones(len(x_train))])
    weights, *_ = np.linalg.lstsq(design, y_train, rcond=None)
    predicted = np.column_stack([x_test, np.ones(len(x_test))]) @ weights
    residual = ((y_test - predicted) ** 2).sum(axis=0)
    total = ((y_test - y_test.mean(axis=0)) ** 2).sum(axis=0)
    return float(np.mean(1.0 - residual / total))


def rate_correlation(rates: np.ndarray, true_rates: np.ndarray, lengths: np.ndarray | None = None) -> float:
    """Pearson correlation between inferred and true rates over every valid (trial, bin, neuron)."""
    a = _valid_rows(rates, lengths).ravel()
    b = _valid_rows(true_rates, lengths).ravel()
    return float(np.corrcoef(a, b)[0, 1])
