"""The metrics on data from known distributions: what they must show, and by how much."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ldns_framework import metrics as M

TRIALS, TIME, NEURONS = 400, 50, 6


@pytest.fixture(scope="module")
def rates() -> np.ndarray:
    return np.linspace(0.2, 0.8, NEURONS)


def poisson(rates: np.ndarray, seed: int, shift: float = 0.0) -> np.ndarray:
    return np.random.default_rng(seed).poisson(rates + shift, size=(TRIALS, TIME, NEURONS))


def test_independent_poisson_neurons_are_uncorrelated(rates):
    data = poisson(rates, 0)
    pairs = M.lower_triangle(M.correlation_matrix(data))
    n_bins = TRIALS * TIME
    assert np.max(np.abs(pairs)) < 5 / math.sqrt(n_bins)
    # two independent samples: each pair differs by ~ N(0, 2 / n_bins)
    rmse = M.correlation_rmse(M.correlation_matrix(data), M.correlation_matrix(poisson(rates, 1)))
    assert rmse == pytest.approx(math.sqrt(2 / n_bins), rel=0.5)


def test_shared_input_shows_up_as_positive_correlation(rates):
    rng = np.random.default_rng(2)
    shared = rng.poisson(0.5, size=(TRIALS, TIME, 1))
    data = poisson(rates, 3) + shared  # cov = var(shared) = 0.5 between every pair
    pairs = M.lower_triangle(M.correlation_matrix(data))
    variances = rates + 0.5
    expected = M.lower_triangle(0.5 / np.sqrt(np.outer(variances, variances)))
    np.testing.assert_allclose(pairs, expected, atol=0.03)


def test_shifted_rate_shows_in_mean_rate_rmse(rates):
    data, model = poisson(rates, 4), poisson(rates, 5, shift=0.2)
    assert M.mean_rate_rmse(model, data) == pytest.approx(0.2, abs=0.02)
    assert M.mean_rate_rmse(model, data, bin_width_s=0.005) == pytest.approx(0.2 / 0.005, abs=4.0)
    same = M.mean_rate_rmse(poisson(rates, 6), data)
    assert same < 0.02


def test_population_kl_grows_with_the_shift(rates):
    data = poisson(rates, 7)
    same = M.population_count_kl(poisson(rates, 8), data)
    shifted = M.population_count_kl(poisson(rates, 9, shift=0.3), data)
    assert 0 <= same < 0.005 < shifted


def test_regular_spike_train_has_exact_isis():
    counts = np.zeros((3, 40, 2), dtype=int)
    counts[:, ::4, 0] = 1  # a spike every 4 bins: ISI 4, std 0
    counts[:, ::5, 1] = 2  # two spikes every 5 bins: ISIs 1/3 and 5 - 1/3 alternate
    stats = M.isi_statistics(counts, bin_width_s=0.01)
    assert stats.mean[0] == pytest.approx(0.04) and stats.std[0] == pytest.approx(0.0, abs=1e-15)
    n_inner, n_between = 3 * 8, 3 * 7
    isis = np.r_[np.full(n_inner, 1 / 3), np.full(n_between, 5 - 1 / 3)] * 0.01
    assert stats.mean[1] == pytest.approx(isis.mean()) and stats.std[1] == pytest.approx(isis.std())


def test_poisson_mean_isi_is_about_the_inverse_rate(rates):
    # one long trial: the ISIs tile the span from the first to the last spike, so mean ISI ~ 1 / r
    long_trial = np.random.default_rng(10).poisson(rates, size=(1, 20_000, NEURONS))
    stats = M.isi_statistics(long_trial)
    np.testing.assert_allclose(stats.mean, 1 / rates, rtol=0.03)
    # short trials cut the long intervals off: the pooled mean ISI is biased low
    assert np.all(M.isi_statistics(poisson(rates, 10)).mean < 1 / rates)


def test_autocorrelation_of_white_noise_is_near_zero_and_of_a_repeat_is_not(rates):
    data = poisson(rates, 11)
    auto = M.auto_correlations(data, max_lag=10)
    assert np.all(np.abs(auto[:, 11:]) < 0.05 * rates[:, None])
    np.testing.assert_allclose(auto[:, 10], rates * (1 - 1 / TIME), rtol=0.1)  # lag 0: biased variance
    repeated = data + np.roll(data, 1, axis=1)  # every spike echoed one bin later
    lag1 = M.auto_correlations(repeated, max_lag=1)[:, 2]
    np.testing.assert_allclose(lag1, rates, rtol=0.15)
    assert M.autocorr_rmse(repeated, data) > 5 * M.autocorr_rmse(poisson(rates, 12), data)


def test_psth_recovers_condition_dependent_rates():
    rng = np.random.default_rng(13)
    conditions = rng.integers(0, 3, size=600)
    profile = np.stack([np.full((20, 2), 0.2), np.full((20, 2), 0.5), np.full((20, 2), 1.0)])
    counts = rng.poisson(profile[conditions])
    labels, psth = M.condition_psth(counts, conditions)
    np.testing.assert_array_equal(labels, [0, 1, 2])
    np.testing.assert_allclose(psth.mean(axis=(1, 2)), [0.2, 0.5, 1.0], rtol=0.05)
