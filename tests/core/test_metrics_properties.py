"""Properties of the metrics: trial order, symmetry, KL >= 0, padding, and edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ldns_framework import metrics as M

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Keys that are finite for any input with at least one valid bin on each side and >= 2 neurons;
# the others may be NaN for the documented reasons (constant values for a Pearson r, no
# neuron with enough ISIs on both sides).
ALWAYS_FINITE = ("mean_rate_rmse", "population_count_kl", "correlation_rmse", "correlation_rmse_all_entries",
                 "autocorr_rmse_lag1_10", "isi_neurons_excluded")
NOT_SYMMETRIC = ("population_count_kl",)


@st.composite
def spike_sets(draw, neurons=None, min_length=1):
    """(counts, lengths) with small shapes, lengths in [min_length, time]."""
    trials = draw(st.integers(1, 4))
    time = draw(st.integers(1, 8))
    neurons = neurons if neurons is not None else draw(st.integers(2, 4))
    counts = draw(hnp.arrays(np.int64, (trials, time, neurons), elements=st.integers(0, 3)))
    lengths = draw(hnp.arrays(np.int64, (trials,), elements=st.integers(min_length, time)))
    return counts, lengths


@st.composite
def model_and_data(draw):
    neurons = draw(st.integers(2, 4))
    return draw(spike_sets(neurons)), draw(spike_sets(neurons))


def assert_same(a: dict[str, float], b: dict[str, float], keys=None) -> None:
    for key in keys or a:
        if math.isnan(a[key]):
            assert math.isnan(b[key]), key
        else:
            assert b[key] == pytest.approx(a[key], rel=1e-9, abs=1e-12), key


@SETTINGS
@given(model_and_data(), st.randoms(use_true_random=False))
def test_compare_is_invariant_to_trial_order(sets, rnd):
    (model, lm), (data, ld) = sets
    p = list(range(len(model)))
    q = list(range(len(data)))
    rnd.shuffle(p)
    rnd.shuffle(q)
    assert_same(M.compare(model, data, lm, ld), M.compare(model[p], data[q], lm[p], ld[q]))


@SETTINGS
@given(model_and_data())
def test_rmses_and_correlations_are_symmetric(sets):
    (model, lm), (data, ld) = sets
    forward, backward = M.compare(model, data, lm, ld), M.compare(data, model, ld, lm)
    assert_same(forward, backward, [k for k in forward if k not in NOT_SYMMETRIC])
    assert M.mean_rate_rmse(model, data, lm, ld) == pytest.approx(M.mean_rate_rmse(data, model, ld, lm))


@SETTINGS
@given(model_and_data())
def test_kl_is_non_negative_and_zero_on_itself(sets):
    (model, lm), (data, ld) = sets
    assert M.population_count_kl(model, data, lm, ld) >= 0.0
    assert M.population_count_kl(data, data, ld, ld) == 0.0


@SETTINGS
@given(model_and_data(), st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_padding_is_ignored(sets, extra, seed):
    (model, lm), (data, ld) = sets
    rng = np.random.default_rng(seed)
    garbage_model = rng.integers(0, 50, size=(model.shape[0], extra, model.shape[2]))
    garbage_data = rng.integers(0, 50, size=(data.shape[0], extra, data.shape[2]))
    padded_model = np.concatenate([model, garbage_model], axis=1)
    padded_data = np.concatenate([data, garbage_data], axis=1)
    # garbage also inside the original time range, beyond each trial's length
    for i, n in enumerate(lm):
        padded_model[i, n:] = rng.integers(0, 50, size=padded_model[i, n:].shape)
    for i, n in enumerate(ld):
        padded_data[i, n:] = rng.integers(0, 50, size=padded_data[i, n:].shape)
    assert_same(M.compare(model, data, lm, ld), M.compare(padded_model, padded_data, lm, ld))
    conditions = np.arange(len(data)) % 2
    _, psth = M.condition_psth(data, conditions, ld)
    _, padded_psth = M.condition_psth(padded_data, conditions, ld)
    np.testing.assert_allclose(padded_psth[:, :data.shape[1]], psth)
    assert np.isnan(padded_psth[:, data.shape[1]:]).all()


@SETTINGS
@given(model_and_data())
def test_outputs_are_finite_or_documented_nan(sets):
    (model, lm), (data, ld) = sets
    out = M.compare(model, data, lm, ld)
    assert not any(math.isinf(v) for v in out.values())
    for key in ALWAYS_FINITE:
        assert math.isfinite(out[key]), key
    isi = M.isi_comparison(model, data, lm, ld)
    assert math.isnan(out["mean_isi_rmse"]) == (isi.n_neurons_compared == 0)
    pairs_model = M.lower_triangle(M.correlation_matrix(model, lm))
    pairs_data = M.lower_triangle(M.correlation_matrix(data, ld))
    def constant(x):  # equal up to rounding (pearson_r's rule)
        return np.ptp(x) <= 1e-12 * np.max(np.abs(x))

    assert math.isnan(out["correlation_r"]) == (constant(pairs_model) or constant(pairs_data))


@SETTINGS
@given(spike_sets())
def test_identical_data_gives_zero_errors(spikes):
    counts, lengths = spikes
    out = M.compare(counts, counts, lengths, lengths)
    for key in ("mean_rate_rmse", "population_count_kl", "correlation_rmse", "correlation_rmse_all_entries",
                "autocorr_rmse_lag1_10"):
        assert out[key] == 0.0, key
    assert out["mean_isi_rmse"] == 0.0 or math.isnan(out["mean_isi_rmse"])


@SETTINGS
@given(spike_sets(min_length=0))
def test_empty_trials_count_as_absent(spikes):
    counts, lengths = spikes
    other = np.ones((2, 3, counts.shape[2]), dtype=np.int64)
    keep = lengths > 0
    if not keep.any():
        return
    with_empty = M.compare(other, counts, None, lengths)
    without = M.compare(other, counts[keep], None, lengths[keep])
    assert_same(without, with_empty)


# --------------------------------------------------------------------------- named edge cases

def test_all_zero_model_and_data():
    zeros = np.zeros((3, 10, 4), dtype=int)
    out = M.compare(zeros, zeros)
    assert out["mean_rate_rmse"] == 0.0
    assert out["population_count_kl"] == 0.0  # both degenerate: identical fallback histograms
    assert out["correlation_rmse"] == 0.0 and out["correlation_rmse_all_entries"] == 0.0
    assert out["autocorr_rmse_lag1_10"] == 0.0
    assert out["isi_neurons_excluded"] == 4.0
    for key in ("population_density_r", "correlation_r", "mean_isi_rmse", "std_isi_rmse", "mean_isi_r",
                "std_isi_r"):
        assert math.isnan(out[key]), key  # undefined: constant values, or no ISI at all


def test_all_zero_model_against_real_data():
    data = np.random.default_rng(0).poisson(0.5, size=(5, 20, 4))
    out = M.compare(np.zeros_like(data), data)
    assert out["mean_rate_rmse"] == pytest.approx(np.sqrt(np.mean(data.mean(axis=(0, 1)) ** 2)))
    assert math.isfinite(out["population_count_kl"]) and out["population_count_kl"] > 0
    assert out["correlation_rmse"] == pytest.approx(np.sqrt(np.mean(
        M.lower_triangle(M.correlation_matrix(data)) ** 2)))
    assert out["isi_neurons_excluded"] == 4.0 and math.isnan(out["mean_isi_rmse"])


def test_single_spikes_and_one_trial():
    data = np.zeros((1, 6, 3), dtype=int)
    data[0, 2, 0] = 1
    data[0, 4, 1] = 2
    out = M.compare(data, data)
    assert out["correlation_rmse"] == 0.0
    stats = M.isi_statistics(data)
    assert np.isnan(stats.mean[0])  # one spike: no ISI
    assert np.isnan(stats.mean[1])  # one ISI (two spikes in one bin) < min_isis=2
    assert M.isi_statistics(data, min_isis=1).mean[1] == pytest.approx(1 / 3)
    assert out["isi_neurons_excluded"] == 3.0


def test_single_neuron_has_no_pairs():
    data = np.random.default_rng(1).poisson(1.0, size=(4, 9, 1))
    out = M.compare(data, data)
    assert math.isnan(out["correlation_rmse"])  # no pair
    assert out["correlation_rmse_all_entries"] == 0.0
    assert math.isnan(out["correlation_r"])
    assert out["mean_rate_rmse"] == 0.0


def test_no_valid_bin_at_all_is_nan_not_an_error():
    counts = np.ones((2, 4, 3), dtype=int)
    empty = np.array([0, 0])
    assert np.isnan(M.mean_rates(counts, empty)).all()
    assert math.isnan(M.population_count_kl(counts, counts, None, empty))
    assert np.isnan(M.auto_correlations(counts, empty)).all()
    np.testing.assert_array_equal(M.correlation_matrix(counts, empty), 0.0)


def test_metrics_are_deterministic():
    rng = np.random.default_rng(2)
    model, data = rng.poisson(0.8, size=(6, 12, 5)), rng.poisson(1.0, size=(7, 12, 5))
    assert M.compare(model, data) == M.compare(model, data)
