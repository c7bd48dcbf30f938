"""Metric values against independent computations written here, and their invariants.

The recovery metrics (latent R^2, rate correlation) and the PSTH (the numeric function and the
``psth`` plugin) are recomputed with plain loops over trials and numpy's own solvers; the pooled
forms of the numeric layer (per-trial statistics re-weighted by trial multiplicities) are checked
against the plain statistic of the resampled trials.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ldns_framework import SpikeData
from ldns_framework import metrics as M
from ldns_plugins.metrics.psth import Psth, PsthConfig

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
seeds = st.integers(0, 2**32 - 1)


def concatenate_valid(array: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """(trials, time, channels) -> (valid bins, channels) by a loop over trials."""
    lengths = np.full(array.shape[0], array.shape[1]) if lengths is None else lengths
    return np.concatenate([array[i, :lengths[i]] for i in range(array.shape[0])], axis=0)


def r2_by_normal_equations(x_train, y_train, x_test, y_test) -> float:
    """Affine least squares by the normal equations, R^2 per output dimension, averaged."""
    design = np.hstack([x_train, np.ones((x_train.shape[0], 1))])
    weights = np.linalg.solve(design.T @ design, design.T @ y_train)
    predicted = np.hstack([x_test, np.ones((x_test.shape[0], 1))]) @ weights
    scores = []
    for k in range(y_test.shape[1]):
        residual = np.sum((y_test[:, k] - predicted[:, k]) ** 2)
        total = np.sum((y_test[:, k] - np.mean(y_test[:, k])) ** 2)
        scores.append(1.0 - residual / total)
    return float(np.mean(scores))


def padded(rng: np.random.Generator, trials: int, time: int, channels: int, lengths: np.ndarray) -> np.ndarray:
    """Gaussian values, with large garbage in the padded bins (which must never count)."""
    array = rng.normal(size=(trials, time, channels))
    array[np.arange(time)[None, :] >= lengths[:, None]] = 1e6
    return array


# -- latent R^2 ----------------------------------------------------------------------------------------
def latents_and_truth(seed: int, *, noise: float = 0.5, with_padding: bool = True):
    """Inferred latents (D=3) and a true state (3 dims) nonlinearly related, train and test, padded."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(3, 3))  # one map for train and test
    sets = []
    for trials in (6, 5):
        lengths = rng.integers(4, 13, size=trials) if with_padding else np.full(trials, 12)
        latents = padded(rng, trials, 12, 3, lengths)
        truth = np.tanh(latents @ mixing) + noise * rng.normal(size=(trials, 12, 3))
        truth[np.arange(12)[None, :] >= lengths[:, None]] = -1e6
        sets.append((latents, truth, lengths))
    return sets


@pytest.mark.parametrize("with_padding", [False, True])
def test_latent_r2_equals_normal_equations_on_the_valid_bins(with_padding):
    (x_tr, y_tr, l_tr), (x_te, y_te, l_te) = latents_and_truth(3, with_padding=with_padding)
    expected = r2_by_normal_equations(concatenate_valid(x_tr, l_tr), concatenate_valid(y_tr, l_tr),
                                      concatenate_valid(x_te, l_te), concatenate_valid(y_te, l_te))
    got = M.latent_recovery_r2(x_tr, y_tr, x_te, y_te, l_tr, l_te)
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert 0.0 < got < 1.0  # a real, imperfect readout


def test_latent_r2_by_hand_in_one_dimension():
    # train: y = 2x + 1 exactly; test truth deviates by +-1 around a line: SS_res = 2, SS_tot = 2 + 8.
    x_train = np.array([0.0, 1.0, 2.0]).reshape(1, 3, 1)
    x_test = np.array([0.0, 1.0, 2.0]).reshape(1, 3, 1)
    y_test = np.array([2.0, 3.0, 4.0]).reshape(1, 3, 1)  # predicted 1, 3, 5: residuals 1, 0, -1
    got = M.latent_recovery_r2(x_train, 2 * x_train + 1, x_test, y_test)
    assert got == pytest.approx(1.0 - 2.0 / 2.0)


@SETTINGS
@given(seeds, st.floats(-3, 3), st.integers(1, 3))
def test_latent_r2_is_one_for_an_exact_affine_map(seed, offset, true_dims):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, 9, size=4)
    latents = padded(rng, 4, 8, 2, lengths)
    truth = latents @ rng.normal(size=(2, true_dims)) + offset
    half = 2
    r2 = M.latent_recovery_r2(latents[:half], truth[:half], latents[half:], truth[half:], lengths[:half],
                              lengths[half:])
    assert r2 == pytest.approx(1.0, abs=1e-8)


@SETTINGS
@given(seeds)
def test_latent_r2_is_invariant_to_an_invertible_affine_transform_of_the_latents(seed):
    (x_tr, y_tr, l_tr), (x_te, y_te, l_te) = latents_and_truth(seed)
    rng = np.random.default_rng(seed + 1)
    transform = rng.normal(size=(3, 3)) + 3 * np.eye(3)  # well conditioned, invertible
    shift = rng.normal(size=3)
    base = M.latent_recovery_r2(x_tr, y_tr, x_te, y_te, l_tr, l_te)
    moved = M.latent_recovery_r2(x_tr @ transform + shift, y_tr, x_te @ transform + shift, y_te, l_tr, l_te)
    assert moved == pytest.approx(base, rel=1e-7, abs=1e-9)
    assert base <= 1.0


def test_latent_r2_rejects_arrays_without_a_channel_axis():
    with pytest.raises(Exception, match="train_latents"):
        M.latent_recovery_r2(np.zeros((2, 3)), np.zeros((2, 3, 1)), np.zeros((2, 3, 1)), np.zeros((2, 3, 1)))


# -- rate correlation ----------------------------------------------------------------------------------
@pytest.mark.parametrize("with_padding", [False, True])
def test_rate_correlation_equals_corrcoef_over_valid_entries(with_padding):
    rng = np.random.default_rng(5)
    lengths = rng.integers(3, 11, size=5) if with_padding else None
    true_rates = np.exp(rng.normal(size=(5, 10, 4)))
    rates = true_rates + rng.normal(0, 0.8, size=true_rates.shape)
    if lengths is not None:
        rates[np.arange(10)[None, :] >= lengths[:, None]] = 1e3  # garbage in the padding
    expected = np.corrcoef(concatenate_valid(rates, lengths).ravel(), concatenate_valid(true_rates, lengths).ravel())
    got = M.rate_correlation(rates, true_rates, lengths)
    assert got == pytest.approx(expected[0, 1], rel=1e-12)
    assert 0.2 < got < 0.99


@SETTINGS
@given(seeds, st.floats(0.1, 10), st.floats(-5, 5))
def test_rate_correlation_is_one_for_identical_or_positively_rescaled_rates(seed, scale, shift):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 7, size=3)
    rates = np.exp(np.clip(padded(rng, 3, 6, 3, lengths), None, 5.0))
    assert M.rate_correlation(rates, rates, lengths) == pytest.approx(1.0)
    assert M.rate_correlation(scale * rates + shift, rates, lengths) == pytest.approx(1.0)
    assert M.rate_correlation(-scale * rates, rates, lengths) == pytest.approx(-1.0)


@SETTINGS
@given(seeds)
def test_rate_correlation_is_symmetric(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.random((3, 5, 2)), rng.random((3, 5, 2))
    assert M.rate_correlation(a, b) == pytest.approx(M.rate_correlation(b, a), rel=1e-12)


def test_rate_correlation_of_constant_rates_is_undefined():
    assert math.isnan(M.rate_correlation(np.ones((2, 3, 2)), np.random.default_rng(0).random((2, 3, 2))))


# -- PSTH ----------------------------------------------------------------------------------------------
def psth_by_loops(counts: np.ndarray, labels: np.ndarray, lengths: np.ndarray) -> dict[int, np.ndarray]:
    """Per condition, per bin: the mean count over that condition's trials still running at the bin."""
    out = {}
    for label in np.unique(labels):
        table = np.full(counts.shape[1:], np.nan)
        for t in range(counts.shape[1]):
            running = [i for i in range(counts.shape[0]) if labels[i] == label and t < lengths[i]]
            if running:
                table[t] = np.mean([counts[i, t] for i in running], axis=0)
        out[int(label)] = table
    return out


def labelled(seed: int, trials: int, time: int, labels: tuple[int, ...], metadata: dict | None = None) -> SpikeData:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, time + 1, size=trials)
    condition = rng.choice(labels, size=trials)
    rates = 0.2 + 0.4 * condition[:, None, None] / max(labels)  # condition-dependent rates
    counts = rng.poisson(np.broadcast_to(rates, (trials, time, 3)))
    counts[np.arange(time)[None, :] >= lengths[:, None]] = 0
    return SpikeData(counts, lengths=lengths, covariates={"condition": condition[:, None]}, bin_width_s=0.02,
                     metadata=metadata or {})


def test_psth_function_equals_the_per_condition_trial_average():
    data = labelled(1, 14, 7, (2, 5, 9))
    labels = data.covariates["condition"][:, 0]
    found, psth = M.condition_psth(data.counts, labels, data.lengths)
    expected = psth_by_loops(data.counts, labels, data.lengths)
    assert list(found) == sorted(expected)
    for k, label in enumerate(found):
        np.testing.assert_allclose(psth[k], expected[int(label)], rtol=1e-12, equal_nan=True)
    _, hz = M.condition_psth(data.counts, labels, data.lengths, bin_width_s=0.02)
    np.testing.assert_allclose(hz, psth / 0.02, equal_nan=True)


@pytest.mark.parametrize("time_unit", ["bins", "seconds"])
def test_psth_plugin_equals_rmse_and_r_of_the_direct_psths(time_unit):
    # the model lacks condition 9 and the data lacks 7: only 2 and 5 are compared, over the 6 shared bins.
    model, data = labelled(2, 16, 6, (2, 5, 7)), labelled(3, 18, 8, (2, 5, 9))
    scale = 1 / 0.02 if time_unit == "seconds" else 1.0
    by_model = psth_by_loops(model.counts, model.covariates["condition"][:, 0], model.lengths)
    by_data = psth_by_loops(data.counts, data.covariates["condition"][:, 0], data.lengths)
    a = np.stack([by_model[c] for c in (2, 5)]) * scale  # (conditions, 6, neurons)
    b = np.stack([by_data[c][:6] for c in (2, 5)]) * scale
    keep = np.isfinite(a) & np.isfinite(b)
    expected_rmse = math.sqrt(np.mean((a[keep] - b[keep]) ** 2))
    expected_r = np.corrcoef(a[keep], b[keep])[0, 1]
    values = Psth(PsthConfig(time_unit=time_unit)).compute(model, data)
    assert values["psth_rmse"] == pytest.approx(expected_rmse, rel=1e-12)
    assert values["psth_r"] == pytest.approx(expected_r, rel=1e-12)


def test_psth_plugin_reads_the_unit_from_the_data_by_default():
    lorenz = {"isi_unit": "bins"}
    model, data = labelled(4, 10, 5, (0, 1), lorenz), labelled(5, 10, 5, (0, 1), lorenz)
    assert Psth().compute(model, data) == Psth(PsthConfig(time_unit="bins")).compute(model, data)
    assert Psth().describe(Psth().prepare(data))["psth_rmse"]["unit"] == "spikes/bin"


def test_psth_plugin_is_perfect_on_identical_sets_and_nan_without_common_conditions():
    data = labelled(6, 12, 6, (1, 2, 3))
    same = Psth().compute(data, data)
    assert same["psth_rmse"] == 0.0 and same["psth_r"] == pytest.approx(1.0)
    other = labelled(7, 12, 6, (4, 5))
    assert all(math.isnan(v) for v in Psth().compute(other, data).values())


@SETTINGS
@given(seeds, st.integers(1, 4))
def test_psth_is_linear_in_the_counts_and_invariant_to_trial_order(seed, factor):
    data = labelled(seed, 9, 5, (0, 1, 2))
    labels = data.covariates["condition"][:, 0]
    found, psth = M.condition_psth(data.counts, labels, data.lengths)
    order = np.random.default_rng(seed).permutation(9)
    found_shuffled, shuffled = M.condition_psth(data.counts[order], labels[order], data.lengths[order])
    np.testing.assert_array_equal(found_shuffled, found)
    np.testing.assert_allclose(shuffled, psth, rtol=1e-12, equal_nan=True)
    _, scaled = M.condition_psth(factor * data.counts, labels, data.lengths)
    np.testing.assert_allclose(scaled, factor * psth, rtol=1e-12, equal_nan=True)


# -- pooled forms: per-trial statistics re-weighted equal the statistic of the resampled trials --------
@SETTINGS
@given(seeds)
def test_pooled_forms_equal_the_statistics_of_the_resampled_trials(seed):
    rng = np.random.default_rng(seed)
    counts = rng.poisson(0.8, size=(6, 9, 4))
    lengths = rng.integers(0, 10, size=6)
    weights = rng.integers(0, 3, size=6)
    index = np.repeat(np.arange(6), weights)
    resampled, resampled_lengths = counts[index], lengths[index]

    rates = M.pooled_mean_rates(M.trial_sums(counts, lengths), lengths, weights, 0.01)
    np.testing.assert_allclose(rates, M.mean_rates(resampled, resampled_lengths, 0.01), rtol=1e-12, equal_nan=True)

    pooled = M.pool_isi_moments(M.trial_isi_moments(counts, lengths), weights, None, 2)
    direct = M.isi_statistics(resampled, resampled_lengths, None, 2)
    np.testing.assert_allclose(pooled.mean, direct.mean, rtol=1e-10, equal_nan=True)
    np.testing.assert_allclose(pooled.std, direct.std, rtol=1e-8, atol=1e-12, equal_nan=True)
    np.testing.assert_array_equal(pooled.n_isis, direct.n_isis)

    auto = M.trial_mean(M.trial_auto_correlations(counts, lengths, 3), weights, lengths > 0)
    np.testing.assert_allclose(auto, M.auto_correlations(resampled, resampled_lengths, 3), rtol=1e-9, atol=1e-12,
                               equal_nan=True)
    labels = rng.integers(0, 3, size=6)
    found, pooled_psth = M.condition_psth(counts, labels, lengths, 0.01, weights)
    found_direct, direct_psth = M.condition_psth(resampled, labels[index], resampled_lengths, 0.01)
    np.testing.assert_array_equal(found, found_direct)
    np.testing.assert_allclose(pooled_psth, direct_psth, rtol=1e-12, equal_nan=True)

    groups = [np.array([0, 2]), np.array([1, 3, 0]), np.array([2])]
    cross = M.trial_mean(M.trial_group_cross_correlations(counts, groups, lengths, 3), weights, lengths > 0)
    np.testing.assert_allclose(cross, M.group_cross_correlations(resampled, groups, resampled_lengths, 3),
                               rtol=1e-9, atol=1e-12, equal_nan=True)


def test_group_means_and_rmse_by_hand():
    per_neuron = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 9.0]])
    np.testing.assert_allclose(M.group_means(per_neuron, [np.array([0, 2]), np.array([1])]), [[3.0, 5.5], [3.0, 4.0]])
    assert M.rmse(np.array([1.0, 2.0, np.nan]), np.array([2.0, 4.0, 0.0]), finite_only=True) == pytest.approx(
        math.sqrt((1 + 4) / 2))
    assert math.isnan(M.rmse(np.array([1.0, np.nan]), np.array([1.0, 0.0])))
    assert math.isnan(M.rmse(np.zeros(0), np.zeros(0)))
