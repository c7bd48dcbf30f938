"""Each metric against a hand-computed answer and against a loop transcription of the reference.

The ``reference_*`` helpers below restate LDNS ``ldns/utils/eval_utils.py`` (as summarised in
LDNS_NOTES.md section 3) with plain Python loops, on arrays small enough for loops.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import gaussian_kde

from ldns_framework import DataError
from ldns_framework import metrics as M
from ldns_framework.metrics import _arrays


# --------------------------------------------------------------------------- reference loops

def reference_spike_stats(counts: np.ndarray, fps: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """counts_to_spike_trains + compute_spike_stats_per_neuron (NaN for neurons without ISIs)."""
    n_trials, n_time, n_neurons = counts.shape
    dt = 1.0 / fps
    isis: dict[int, list[float]] = {n: [] for n in range(n_neurons)}
    for trial in range(n_trials):
        for neuron in range(n_neurons):
            times: list[float] = []
            for i in range(n_time):
                c = int(counts[trial, i, neuron])
                if c > 0:
                    times.extend(np.linspace(i * dt, i * dt + dt, c + 2)[1:-1])
            if len(times) > 1:
                isis[neuron].extend(np.diff(times))
    mean = np.array([np.mean(isis[n]) if isis[n] else np.nan for n in range(n_neurons)])
    std = np.array([np.std(isis[n]) if isis[n] else np.nan for n in range(n_neurons)])
    return mean, std


def reference_temp_corr(x1: np.ndarray, x2: np.ndarray, nlags: int) -> np.ndarray:
    """get_temp_corr(mode='biased')."""
    T = x1.shape[0]
    full = np.correlate(x1, x2, "full")
    zero = T - 1
    padded = np.concatenate([np.zeros(nlags), full, np.zeros(nlags)])  # lags beyond T are 0
    return padded[zero:zero + 2 * nlags + 1] / T


def reference_temp_corr_summary(counts: np.ndarray, groups, nlags: int):
    """get_temp_corr_summary(batch_first=True): per group mean cross (i < j) and auto (lag 0 = 0)."""
    x = counts.astype(float) - counts.mean(axis=1, keepdims=True)
    cross_out, auto_out = [], []
    for group in groups:
        cross, auto = [], []
        for trial in range(x.shape[0]):
            for a, ii in enumerate(group):
                for jj in group[a:]:
                    xc = reference_temp_corr(x[trial, :, ii], x[trial, :, jj], nlags)
                    if ii == jj:
                        xc[nlags] = 0
                        auto.append(xc)
                    else:
                        cross.append(xc)
        cross_out.append(np.mean(cross, axis=0) if cross else np.full(2 * nlags + 1, np.nan))
        auto_out.append(np.mean(auto, axis=0))
    return np.array(cross_out), np.array(auto_out)


def reference_groups(counts: np.ndarray, num_groups: int = 4):
    """group_neurons_temp_corr (with a stable sort, and silent neurons' NaN correlations as 0)."""
    corr = np.nan_to_num(np.corrcoef(counts.reshape(-1, counts.shape[-1]).T))
    np.fill_diagonal(corr, 0)
    order = np.argsort(-np.sum(corr ** 2, axis=0), kind="stable")
    size = counts.shape[-1] // num_groups
    groups = [order[i:i + size] for i in range(0, len(order), size)]
    if len(groups) > num_groups:
        groups[-2] = np.concatenate((groups[-2], groups[-1]))
        del groups[-1]
    return groups


def poisson(shape, rate, seed=0):
    return np.random.default_rng(seed).poisson(rate, size=shape)


# --------------------------------------------------------------------------- rates

def test_mean_rates_by_hand_with_padding():
    counts = np.zeros((2, 3, 2), dtype=int)
    counts[0, :, 0] = [1, 2, 9]  # bin 2 of trial 0 is padding
    counts[1, :, 0] = [0, 1, 1]
    counts[:, :, 1] = 1
    lengths = np.array([2, 3])
    # neuron 0: (1 + 2 + 0 + 1 + 1) / 5 bins = 1.0; neuron 1: 5 / 5 = 1.0
    np.testing.assert_allclose(M.mean_rates(counts, lengths), [1.0, 1.0])
    np.testing.assert_allclose(M.mean_rates(counts, lengths, bin_width_s=0.005), [200.0, 200.0])
    np.testing.assert_allclose(M.mean_rates(counts), [14 / 6, 1.0])


def test_mean_rate_rmse_by_hand():
    a = np.zeros((1, 2, 2))
    b = np.zeros((1, 2, 2))
    b[0, :, 0] = 2  # rate 2 vs 0 on neuron 0; neuron 1 equal
    assert M.mean_rate_rmse(a, b) == pytest.approx(math.sqrt(4 / 2))


# --------------------------------------------------------------------------- population

def test_population_counts_pool_valid_bins():
    counts = np.arange(2 * 3 * 2).reshape(2, 3, 2)
    np.testing.assert_array_equal(M.population_counts(counts, np.array([1, 3])), [1, 13, 17, 21])


def test_kde_matches_scipy_gaussian_kde():
    population = poisson(500, 6.0, seed=3)
    grid = np.arange(population.max() + 5, dtype=float)
    expected = gaussian_kde(population)(grid)
    np.testing.assert_allclose(M.population_density(population, grid), expected / expected.sum(), rtol=1e-10)


def test_kl_matches_reference_formula():
    model = poisson((40, 10, 5), 0.9, seed=1)
    data = poisson((50, 10, 5), 1.0, seed=2)
    pm, pd = M.population_counts(model), M.population_counts(data)
    grid = np.arange(max(pm.max(), pd.max()) + 1)
    p = gaussian_kde(pm)(grid)
    q = gaussian_kde(pd)(grid)
    p, q = p / p.sum(), q / q.sum()
    expected = np.nansum(p * np.log(p / q))
    assert M.population_count_kl(model, data) == pytest.approx(expected, rel=1e-9)
    g, p_model, p_data = M.population_count_densities(model, data)
    np.testing.assert_allclose(p_model, p, rtol=1e-9)
    np.testing.assert_allclose(p_data, q, rtol=1e-9)
    np.testing.assert_array_equal(g, grid)


def test_kl_of_identical_data_is_zero():
    data = poisson((20, 10, 4), 1.0)
    assert M.population_count_kl(data, data) == 0.0
    assert M.population_count_kl(data[::-1], data) == pytest.approx(0.0, abs=1e-15)


def test_kl_degenerate_samples_fall_back_to_histogram():
    zeros, ones = np.zeros((2, 3, 1), dtype=int), np.ones((2, 3, 1), dtype=int)
    eps = M.HISTOGRAM_EPSILON
    # grid 0..1; model: all mass at 0, data: all mass at 1 (each plus eps, renormalised)
    p = np.array([1 + eps, eps]) / (1 + 2 * eps)
    q = np.array([eps, 1 + eps]) / (1 + 2 * eps)
    assert M.population_count_kl(zeros, ones) == pytest.approx(np.sum(p * np.log(p / q)), rel=1e-12)
    assert M.population_count_kl(zeros, zeros) == 0.0
    assert np.isfinite(M.population_count_kl(zeros, poisson((5, 4, 3), 1.0)[:, :, :1]))


def test_kl_stays_finite_where_float_kde_underflows():
    # data near 0, model far out: scipy's KDE of the data is exactly 0 at the model's counts
    data = poisson((50, 20, 1), 0.2, seed=4)
    model = data + 60
    grid = np.arange(model.max() + 1)
    assert np.any(gaussian_kde(data.ravel())(grid)[model.min():] == 0)
    kl = M.population_count_kl(model, data)
    assert np.isfinite(kl) and kl > 100


def test_max_count_fixes_grid_and_clips():
    model, data = poisson((10, 10, 30), 1.0, seed=5), poisson((10, 10, 30), 1.0, seed=6)
    grid, p_model, _ = M.population_count_densities(model, data, max_count=20)
    np.testing.assert_array_equal(grid, np.arange(21))
    assert p_model.sum() == pytest.approx(1.0)


# --------------------------------------------------------------------------- correlation

def test_two_neuron_correlation_by_hand():
    counts = np.array([[0, 0], [1, 1], [0, 1], [1, 1]])[None]  # one trial, 4 bins, 2 neurons
    corr = M.correlation_matrix(counts)
    np.testing.assert_allclose(corr, [[1, 1 / math.sqrt(3)], [1 / math.sqrt(3), 1]])


def test_correlation_matrix_matches_corrcoef_over_concatenated_valid_bins():
    counts = poisson((6, 7, 5), 1.0, seed=7)
    lengths = np.array([7, 3, 5, 7, 1, 6])
    rows = np.concatenate([counts[i, :lengths[i]] for i in range(6)])
    np.testing.assert_allclose(M.correlation_matrix(counts, lengths), np.corrcoef(rows.T), atol=1e-12)


def test_silent_neuron_gets_zero_correlation():
    counts = poisson((4, 6, 3), 1.0, seed=8)
    counts[:, :, 1] = 0
    corr = M.correlation_matrix(counts)
    assert not np.isnan(corr).any()
    np.testing.assert_array_equal(corr[1], 0.0)
    np.testing.assert_array_equal(corr[:, 1], 0.0)
    assert corr[0, 0] == 1.0


def test_correlation_rmse_variants_by_hand():
    a = np.array([[1.0, 0.5, 0.1], [0.5, 1.0, 0.2], [0.1, 0.2, 1.0]])
    b = np.array([[1.0, 0.3, 0.1], [0.3, 1.0, 0.5], [0.1, 0.5, 1.0]])
    diffs = np.array([0.2, 0.0, -0.3])  # pairs (1,0), (2,0), (2,1)
    assert M.correlation_rmse(a, b) == pytest.approx(math.sqrt(np.mean(diffs ** 2)))
    assert M.correlation_rmse_all_entries(a, b) == pytest.approx(math.sqrt(np.sum(diffs ** 2) / 9))
    # reference formula: tril(k=-1) with zeros, nanmean over all N^2 entries
    ref = math.sqrt(np.nanmean((np.tril(a, -1) - np.tril(b, -1)) ** 2))
    assert M.correlation_rmse_all_entries(a, b) == pytest.approx(ref)
    n = 3
    assert M.correlation_rmse(a, b) / M.correlation_rmse_all_entries(a, b) == pytest.approx(math.sqrt(2 * n / (n - 1)))


def test_correlation_r_uses_unique_pairs():
    a = np.array([[1.0, 0.5, 0.1], [0.5, 1.0, 0.2], [0.1, 0.2, 1.0]])
    b = np.array([[1.0, 0.3, 0.1], [0.3, 1.0, 0.5], [0.1, 0.5, 1.0]])
    assert M.correlation_r(a, b) == pytest.approx(np.corrcoef([0.5, 0.1, 0.2], [0.3, 0.1, 0.5])[0, 1])


def test_pearson_r_is_nan_safe():
    assert M.pearson_r([1, 2, np.nan, 4], [2, 4, 5, 8]) == pytest.approx(1.0)
    assert math.isnan(M.pearson_r([1, 1, 1], [1, 2, 3]))
    assert math.isnan(M.pearson_r([1], [2]))
    assert math.isnan(M.pearson_r([np.nan, 1], [1, np.nan]))


# --------------------------------------------------------------------------- ISI

def test_spike_placement_follows_reference_linspace():
    counts = np.zeros((1, 4, 1), dtype=int)
    counts[0, :, 0] = [0, 2, 0, 1]
    trial, neuron, times = M.spike_times(counts)
    np.testing.assert_allclose(times, [1 + 1 / 3, 1 + 2 / 3, 3.5])
    np.testing.assert_array_equal(trial, 0)
    np.testing.assert_array_equal(neuron, 0)
    _, _, seconds = M.spike_times(counts, bin_width_s=0.005)
    np.testing.assert_allclose(seconds, np.array([1 + 1 / 3, 1 + 2 / 3, 3.5]) * 0.005)


def test_isi_by_hand_with_a_double_spike_bin():
    counts = np.zeros((1, 4, 1), dtype=int)
    counts[0, :, 0] = [0, 2, 0, 1]  # ISIs: 1/3 (inside bin 1) and 3.5 - (1 + 2/3) = 11/6
    stats = M.isi_statistics(counts)
    assert stats.n_isis[0] == 2
    assert stats.mean[0] == pytest.approx(13 / 12)
    assert stats.std[0] == pytest.approx(0.75)
    seconds = M.isi_statistics(counts, bin_width_s=0.005)
    assert seconds.mean[0] == pytest.approx(13 / 12 * 0.005)
    assert seconds.std[0] == pytest.approx(0.75 * 0.005)


def test_isis_never_cross_trials_or_neurons():
    counts = np.zeros((2, 4, 2), dtype=int)
    counts[0, 3, 0] = 1  # last bin of trial 0 ...
    counts[1, 0, 0] = 1  # ... first bin of trial 1: no ISI between them
    counts[0, 0, 1] = 1  # neuron 1 alone has a spike after neuron 0's
    stats = M.isi_statistics(counts, min_isis=1)
    np.testing.assert_array_equal(stats.n_isis, [0, 0])
    assert np.isnan(stats.mean).all()


def test_isi_matches_reference_loops_and_min_isis():
    counts = poisson((5, 12, 6), 0.7, seed=9)
    counts[:, :, 5] = 0
    counts[0, 3, 5] = 1
    counts[0, 7, 5] = 3  # neuron 5: exactly 3 ISIs
    counts[:, :, 4] = 0
    counts[2, 2, 4] = 1
    counts[3, 5, 4] = 1  # neuron 4: no ISI (single spikes in different trials)
    mean_ref, std_ref = reference_spike_stats(counts, fps=200.0)
    stats = M.isi_statistics(counts, bin_width_s=1 / 200, min_isis=1)
    np.testing.assert_allclose(stats.mean, mean_ref, rtol=1e-10)
    np.testing.assert_allclose(stats.std, std_ref, rtol=1e-9, atol=1e-15)
    assert stats.n_isis[5] == 3 and stats.n_isis[4] == 0
    strict = M.isi_statistics(counts, min_isis=4)
    assert np.isnan(strict.mean[5]) and np.isnan(strict.std[5])


def test_isi_statistics_agree_with_spike_times():
    counts = poisson((7, 15, 4), 1.3, seed=10)
    lengths = np.array([15, 3, 9, 15, 0, 11, 1])
    trial, neuron, times = M.spike_times(counts, lengths)
    boundary = (trial[1:] == trial[:-1]) & (neuron[1:] == neuron[:-1])
    isis, owner = np.diff(times)[boundary], neuron[1:][boundary]
    stats = M.isi_statistics(counts, lengths)
    for n in range(4):
        np.testing.assert_allclose(stats.mean[n], isis[owner == n].mean())
        np.testing.assert_allclose(stats.std[n], isis[owner == n].std())


def test_isi_comparison_reports_excluded_neurons():
    data = poisson((10, 20, 4), 0.5, seed=11)
    model = data.copy()
    model[:, :, 2] = 0  # no ISIs in the model for neuron 2
    result = M.isi_comparison(model, data, bin_width_s=0.005)
    assert result.n_neurons_excluded == 1 and result.n_neurons_compared == 3
    assert result.mean_isi_rmse == 0.0 and result.std_isi_rmse == 0.0
    everything_silent = M.isi_comparison(np.zeros_like(data), data)
    assert everything_silent.n_neurons_excluded == 4
    assert math.isnan(everything_silent.mean_isi_rmse)


# --------------------------------------------------------------------------- temporal

def test_autocorrelation_by_hand():
    counts = np.array([1, 0, 2, 0])[None, :, None]  # centred: [.25, -.75, 1.25, -.75]
    auto = M.auto_correlations(counts, max_lag=2)[0]
    lag1 = (-0.75 * 0.25 + 1.25 * -0.75 + -0.75 * 1.25) / 4
    lag2 = (1.25 * 0.25 + -0.75 * -0.75) / 4
    np.testing.assert_allclose(auto, [lag2, lag1, np.var([1, 0, 2, 0]), lag1, lag2])


@pytest.mark.parametrize("max_lag", [0, 3, 30])
def test_temporal_summary_matches_reference_loops(max_lag):
    counts = poisson((4, 9, 9), 1.0, seed=12)  # 9 neurons: the reference's slicing gives 2, 2, 2, 3
    groups = reference_groups(counts)
    computed = M.neuron_groups(counts)
    assert [list(g) for g in computed] == [list(g) for g in groups]
    cross_ref, auto_ref = reference_temp_corr_summary(counts, groups, max_lag)
    summary = M.temporal_correlation_summary(counts, groups, max_lag=max_lag)
    np.testing.assert_array_equal(summary.lags, np.arange(-max_lag, max_lag + 1))
    np.testing.assert_allclose(summary.auto, auto_ref, atol=1e-12)
    np.testing.assert_allclose(summary.cross, cross_ref, atol=1e-12)


def test_temporal_with_padding_equals_truncated_trials():
    counts = poisson((3, 10, 4), 1.0, seed=13)
    lengths = np.array([10, 6, 6])
    groups = [np.array([0, 1]), np.array([2, 3])]
    padded = M.temporal_correlation_summary(counts, groups, lengths, max_lag=4)
    first = M.temporal_correlation_summary(counts[:1], groups, max_lag=4)
    rest = M.temporal_correlation_summary(counts[1:, :6], groups, max_lag=4)
    # equal-weight trial average: 1 trial of length 10 and 2 of length 6
    np.testing.assert_allclose(padded.auto, (first.auto + 2 * rest.auto) / 3, atol=1e-12)
    np.testing.assert_allclose(padded.cross, (first.cross + 2 * rest.cross) / 3, atol=1e-12)


def test_groups_of_fewer_neurons_than_groups_and_remainder():
    assert [g.size for g in M.neuron_groups(poisson((3, 5, 2), 1.0))] == [1, 1]
    many = poisson((20, 30, 182), 0.3)
    assert [g.size for g in M.neuron_groups(many)] == [45, 45, 45, 47]
    # same members as the reference (the order inside a group may differ by rounding near-ties)
    assert [sorted(g) for g in M.neuron_groups(many)] == [sorted(g) for g in reference_groups(many)]
    assert [g.size for g in M.neuron_groups(poisson((3, 5, 11), 1.0))] == [2, 2, 2, 5]
    assert sorted(np.concatenate(M.neuron_groups(poisson((3, 5, 11), 1.0)))) == list(range(11))


def test_groups_are_computed_on_data_and_applied_to_model():
    data = poisson((5, 8, 8), 1.0, seed=14)
    model = poisson((5, 8, 8), 1.0, seed=15)
    result = M.compare_temporal_correlations(model, data, max_lag=3)
    assert [list(g) for g in result.groups] == [list(g) for g in M.neuron_groups(data)]
    expected = M.temporal_correlation_summary(model, result.groups, max_lag=3)
    np.testing.assert_allclose(result.model.auto, expected.auto)


def test_autocorr_rmse_lags_1_to_10():
    data = poisson((6, 30, 3), 1.0, seed=16)
    model = poisson((6, 30, 3), 1.0, seed=17)
    a = M.auto_correlations(model, max_lag=10)[:, 11:]
    b = M.auto_correlations(data, max_lag=10)[:, 11:]
    assert M.autocorr_rmse(model, data) == pytest.approx(math.sqrt(np.mean((a - b) ** 2)))
    assert M.autocorr_rmse(data, data) == 0.0


# --------------------------------------------------------------------------- PSTH

def test_psth_by_hand_with_padding():
    counts = np.zeros((3, 2, 1))
    counts[:, :, 0] = [[1, 2], [3, 9], [5, 4]]
    labels, psth = M.condition_psth(counts, np.array([7, 3, 7]), lengths=np.array([2, 1, 1]))
    np.testing.assert_array_equal(labels, [3, 7])
    np.testing.assert_allclose(psth[0, :, 0], [3, np.nan])  # condition 3: bin 1 is padding only
    np.testing.assert_allclose(psth[1, :, 0], [3, 2])  # condition 7: bin 1 from trial 0 only
    _, hz = M.condition_psth(counts, np.array([7, 3, 7]), np.array([2, 1, 1]), bin_width_s=0.5)
    np.testing.assert_allclose(hz[1, :, 0], [6, 4])


# --------------------------------------------------------------------------- plumbing

def test_chunking_does_not_change_results(monkeypatch):
    data = poisson((9, 11, 5), 1.0, seed=18)
    lengths = np.array([11, 4, 7, 11, 1, 9, 11, 2, 5])
    model = poisson((9, 11, 5), 1.2, seed=19)
    whole = M.compare(model, data, lengths, lengths)
    monkeypatch.setattr(_arrays, "CHUNK_ELEMENTS", 1)  # one trial per chunk
    chunked = M.compare(model, data, lengths, lengths)
    for key in whole:
        np.testing.assert_allclose(chunked[key], whole[key], rtol=1e-9, atol=1e-12, err_msg=key)


def test_bad_inputs_name_the_field():
    with pytest.raises(DataError, match="counts"):
        M.mean_rates(np.zeros((2, 3)))
    with pytest.raises(DataError, match="lengths"):
        M.mean_rates(np.zeros((2, 3, 1)), lengths=np.array([1, 4]))
    with pytest.raises(DataError, match="data_counts"):
        M.compare(np.zeros((2, 3, 1)), np.zeros((2, 3, 2)))
    with pytest.raises(DataError, match="conditions"):
        M.condition_psth(np.zeros((2, 3, 1)), np.array([0.5, 1.0]))


def test_compare_returns_every_headline_metric_as_float():
    out = M.compare(poisson((5, 10, 4), 1.0, seed=20), poisson((6, 10, 4), 1.0, seed=21), bin_width_s=0.005)
    assert tuple(out) == M.HEADLINE_METRICS
    assert all(type(v) is float for v in out.values())
