"""The Lorenz source's history_filter option: spikes with known per-neuron history dependence."""

from __future__ import annotations

import numpy as np
import pytest

from ldns_framework.errors import SpecErrors
from ldns_framework.metrics.temporal import auto_correlations
from ldns_framework.structure import structure_config
from ldns_plugins.lorenz.source import LorenzConfig, LorenzSource
from ldns_plugins.lorenz.system import HISTORY_BINS, MAX_HISTORY_DRIVE, history_filters, history_spikes

TINY = dict(n_trials=30, n_neurons=12, length=120, burn_in=20)


def load(**overrides):
    return LorenzSource(LorenzConfig(**{**TINY, **overrides})).load()


def test_default_and_zero_strength_leave_the_reference_data_untouched():
    reference = load()
    for overrides in ({"history_filter": "none"}, {"history_filter": "refractory", "history_strength": 0.0}):
        other = load(**overrides)
        np.testing.assert_array_equal(other.counts, reference.counts)
        np.testing.assert_array_equal(other.covariates["rates_true"], reference.covariates["rates_true"])
        assert "history_filters" not in other.metadata
    assert reference.metadata["generator"] == "Lorenz attractor -> softplus readout -> Poisson"


@pytest.mark.parametrize("kind", ["refractory", "bursting", "mixed"])
def test_history_changes_the_counts_not_the_latents_rates_or_splits(kind):
    reference, data = load(), load(history_filter=kind)
    np.testing.assert_array_equal(data.covariates["latents_true"], reference.covariates["latents_true"])
    np.testing.assert_array_equal(data.covariates["rates_true"], reference.covariates["rates_true"])
    assert all(np.array_equal(data.splits[k], reference.splits[k]) for k in reference.splits)
    assert not np.array_equal(data.counts, reference.counts)
    assert data.counts.dtype == np.int32 and data.counts.min() >= 0
    filters = np.asarray(data.metadata["history_filters"])
    assert filters.shape == (12, HISTORY_BINS)
    np.testing.assert_array_equal(filters, LorenzSource(LorenzConfig(**TINY, history_filter=kind)).history_filters())


def test_same_config_same_counts_and_filters():
    a, b = load(history_filter="mixed", seed=5), load(history_filter="mixed", seed=5)
    np.testing.assert_array_equal(a.counts, b.counts)
    assert a.metadata["history_filters"] == b.metadata["history_filters"]
    assert not np.array_equal(a.counts, load(history_filter="mixed", seed=6).counts)


def test_filter_shapes():
    rng = np.random.default_rng(0)
    refractory = history_filters("refractory", 50, 1.0, rng)
    bursting = history_filters("bursting", 50, 1.0, rng)
    mixed = history_filters("mixed", 50, 2.0, rng)
    assert (refractory < 0).all() and (np.diff(refractory, axis=1) > 0).all()  # suppression decaying to 0
    assert (bursting[:, 0] > 0).all() and (bursting.sum(axis=1) < 0).all()  # excite, then suppress: stable
    assert (mixed[:, 0] > 0).any() and (mixed[:, 0] < 0).any()
    assert np.abs(mixed).max() > np.abs(refractory).max()  # strength scales
    np.testing.assert_array_equal(history_filters("none", 4, 1.0, rng), np.zeros((4, HISTORY_BINS)))
    with pytest.raises(ValueError, match="refractory"):
        history_filters("chaotic", 4, 1.0, rng)


def test_history_spikes_follow_the_filter():
    """Against the definition on a tiny example, drawing with the same generator."""
    rates = np.full((3, 6, 2), 0.8)
    filters = np.array([[-1.0, -0.5], [0.5, 0.0]])
    counts = history_spikes(rates, filters, np.random.default_rng(1))
    rng = np.random.default_rng(1)
    expected = np.zeros_like(counts)
    for t in range(6):
        drive = sum(filters[:, k - 1] * expected[:, t - k] for k in (1, 2) if t - k >= 0)
        expected[:, t] = rng.poisson(rates[:, t] * np.exp(np.minimum(drive, MAX_HISTORY_DRIVE)))
    np.testing.assert_array_equal(counts, expected)


def lag1_autocorrelation(counts: np.ndarray) -> float:
    auto = auto_correlations(counts, None, 1)  # (neurons, lags -1..1)
    return float(auto[:, 2].mean() / auto[:, 1].mean())


def test_refractory_lowers_and_bursting_raises_the_short_lag_autocorrelation():
    poisson = lag1_autocorrelation(load(n_trials=60).counts)
    assert lag1_autocorrelation(load(n_trials=60, history_filter="refractory").counts) < poisson - 0.1
    assert lag1_autocorrelation(load(n_trials=60, history_filter="bursting").counts) > poisson + 0.1


def test_bursting_stays_bounded():
    data = load(n_trials=100, n_neurons=32, length=256, history_filter="bursting")
    reference = data.covariates["rates_true"].mean()
    assert 0.5 * reference < data.counts.mean() < 2.0 * reference


def test_options_are_validated_with_their_path():
    with pytest.raises(SpecErrors, match=r"data\.history_filter.*did you mean 'bursting'"):
        structure_config(LorenzConfig, {"history_filter": "burstin"}, "data")
    with pytest.raises(SpecErrors, match=r"data\.history_strength"):
        structure_config(LorenzConfig, {"history_strength": -1.0}, "data")
