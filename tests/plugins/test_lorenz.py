"""The ``lorenz`` data source: the generator of METHOD.md section 6, deterministic for a seed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ldns_framework import DataError, SpikeData
from ldns_framework.errors import SpecErrors
from ldns_framework.structure import structure_config
from plugin_helpers import registered_classes
from ldns_plugins.lorenz.source import LorenzConfig, LorenzSource, split_indices
from ldns_plugins.lorenz.system import (
    LORENZ_INITIAL_STATE,
    initial_states,
    integrate_lorenz,
    lorenz_derivative,
    rates_from_latents,
    readout_matrix,
    softplus,
)

TINY = dict(n_trials=20, n_neurons=16, length=64, burn_in=20)


def load(**overrides) -> SpikeData:
    return LorenzSource(LorenzConfig(**{**TINY, **overrides})).load()


def arrays(data: SpikeData) -> list[np.ndarray]:
    return [data.counts, data.covariates["latents_true"], data.covariates["rates_true"], *data.splits.values()]


# --- determinism -------------------------------------------------------------------------------

def test_same_seed_gives_identical_arrays():
    for a, b in zip(arrays(load(seed=3)), arrays(load(seed=3))):
        np.testing.assert_array_equal(a, b)


def test_different_seeds_give_different_arrays():
    a, b = load(seed=3), load(seed=4)
    assert not np.array_equal(a.counts, b.counts)
    assert not np.allclose(a.covariates["latents_true"], b.covariates["latents_true"])
    assert not np.array_equal(a.splits["train"], b.splits["train"])


def test_more_trials_extend_the_data_set_without_redrawing_the_first_trials():
    small, large = load(n_trials=5), load(n_trials=12)
    np.testing.assert_array_equal(small.counts, large.counts[:5])
    np.testing.assert_array_equal(small.covariates["rates_true"], large.covariates["rates_true"][:5])


# --- shapes, splits, metadata ------------------------------------------------------------------

def test_shapes_and_dtypes():
    data = load()
    assert data.counts.shape == (20, 64, 16) and np.issubdtype(data.counts.dtype, np.integer)
    assert data.covariates["latents_true"].shape == (20, 64, 3)
    assert data.covariates["rates_true"].shape == (20, 64, 16)
    assert data.covariates["latents_true"].dtype == np.float32 == data.covariates["rates_true"].dtype
    np.testing.assert_array_equal(data.lengths, np.full(20, 64))
    assert data.bin_width_s == 0.01


def test_splits_are_disjoint_cover_all_trials_and_follow_the_fractions():
    data = load(n_trials=50, split=(0.6, 0.2, 0.2))
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 30, "val": 10, "test": 10}
    np.testing.assert_array_equal(np.sort(np.concatenate(list(data.splits.values()))), np.arange(50))


def test_reference_size_gives_the_reference_split():
    """5000 trials (short, few neurons: no timing here) split 3500 / 500 / 1000 as in LDNS_NOTES 2.1."""
    data = load(n_trials=5000, length=8, n_neurons=4, burn_in=0)
    assert data.counts.shape == (5000, 8, 4)
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 3500, "val": 500, "test": 1000}


@pytest.mark.parametrize("n_trials", [1, 2, 3, 7, 101])
def test_split_sizes_never_exceed_the_trials(n_trials):
    parts = split_indices(n_trials, (0.5, 0.5, 0.0), np.random.default_rng(0))
    assert sum(len(p) for p in parts.values()) == n_trials
    assert len(np.unique(np.concatenate(list(parts.values())))) == n_trials


def test_metadata_describes_the_generator_and_is_json_ready():
    data = load(seed=7)
    assert data.metadata["source"] == "lorenz"
    assert data.metadata["parameters"]["seed"] == 7
    assert data.metadata["parameters"]["split"] == [0.7, 0.1, 0.2]
    assert data.metadata["isi_unit"] == "bins"
    json.dumps(data.summary())


# --- latents, rates, counts --------------------------------------------------------------------

def test_true_latents_are_zscored_per_trial_and_dimension():
    latents = load().covariates["latents_true"].astype(np.float64)
    np.testing.assert_allclose(latents.mean(axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(latents.std(axis=1), 1.0, atol=1e-5)


def test_rates_are_positive_and_counts_match_them_within_sampling_error():
    data = load(n_trials=40, n_neurons=32)
    rates, counts = data.covariates["rates_true"].astype(np.float64), data.counts
    assert (rates > 0).all()
    # With the softplus link the realised mean is below mean_rate (~0.14 for 0.3, LDNS_NOTES 2.1).
    assert 0.08 < rates.mean() < 0.2
    # E[count] = mean rate; Var[count] = E[rate] + Var[rate] (Poisson given the rate).
    standard_error = np.sqrt(rates.mean() / rates.size)
    assert abs(counts.mean() - rates.mean()) < 5 * standard_error
    assert counts.var() == pytest.approx(rates.mean() + rates.var(), rel=0.05)
    per_neuron_se = np.sqrt(rates.mean(axis=(0, 1)) / (40 * 64))
    assert (np.abs(counts.mean(axis=(0, 1)) - rates.mean(axis=(0, 1))) < 5 * per_neuron_se).all()


def test_rates_follow_the_softplus_readout():
    latents = np.random.default_rng(0).standard_normal((2, 5, 3)).astype(np.float32)
    readout = readout_matrix(np.random.default_rng(1), 4)
    expected = np.log1p(np.exp(2.0 * (latents @ readout.T + np.log(0.3)))) / 2.0
    np.testing.assert_allclose(rates_from_latents(latents, readout, 0.3, 2.0), expected, rtol=1e-5)


def test_softplus_is_stable_and_has_the_beta_scaling():
    x = np.array([-1000.0, -1.0, 0.0, 1.0, 1000.0])
    out = softplus(x, 2.0)
    assert np.isfinite(out).all() and out[0] == 0.0 and out[-1] == 1000.0
    np.testing.assert_allclose(out[1:4], np.log1p(np.exp(2.0 * x[1:4])) / 2.0)
    assert softplus(x.astype(np.float32), 2.0).dtype == np.float32


def test_readout_rows_have_unit_norm_and_are_sorted_by_first_column():
    readout = readout_matrix(np.random.default_rng(0), 64)
    np.testing.assert_allclose(np.linalg.norm(readout, axis=1), 1.0)
    assert (np.diff(readout[:, 0]) >= 0).all()


# --- the Lorenz system itself ------------------------------------------------------------------

def test_equilibria_are_fixed_points_of_the_integrator():
    beta, rho = 8.0 / 3.0, 28.0
    c = np.sqrt(beta * (rho - 1))
    fixed = np.array([[0.0, 0.0, 0.0], [c, c, rho - 1], [-c, -c, rho - 1]])
    np.testing.assert_allclose(lorenz_derivative(fixed, 10.0, rho, beta), 0.0, atol=1e-12)
    np.testing.assert_allclose(integrate_lorenz(fixed, 10)[:, -1], fixed, atol=1e-9)


def test_rk4_converges_as_the_step_shrinks():
    start = initial_states(np.random.default_rng(0), 4, 2.0)
    coarse = integrate_lorenz(start, 50, dt=0.005, steps_per_bin=3)
    fine = integrate_lorenz(start, 50, dt=0.0025, steps_per_bin=6)
    np.testing.assert_allclose(coarse, fine, atol=1e-3)


def test_raw_trajectories_stay_on_the_attractor_and_switch_lobes():
    raw = integrate_lorenz(initial_states(np.random.default_rng(0), 16, 2.0), 600)[:, 100:]  # (16, 500, 3)
    assert np.abs(raw[..., 0]).max() < 30 and np.abs(raw[..., 1]).max() < 40
    assert 0 < raw[..., 2].min() and raw[..., 2].max() < 60
    lobe_switches = np.abs(np.diff(np.sign(raw[..., 0]), axis=1)).sum(axis=1) / 2
    assert (lobe_switches >= 2).all()  # neither a fixed point nor a single-lobe cycle


def test_nearby_trajectories_diverge():
    """Sensitive dependence on initial conditions: a 1e-6 nudge grows to attractor scale."""
    start = np.stack([LORENZ_INITIAL_STATE, LORENZ_INITIAL_STATE + 1e-6])
    raw = integrate_lorenz(start, 2000)
    separation = np.linalg.norm(raw[0] - raw[1], axis=-1)
    assert separation[:10].max() < 1e-4 and separation[1000:].max() > 5


def test_integration_blowup_is_reported_as_a_data_error_naming_dt():
    with pytest.raises(DataError, match="data.dt"):
        load(sigma=1000.0, dt=0.02)


# --- config ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("section", "field"), [
    ({"n_trials": -1}, "data.n_trials"),
    ({"n_trials": "many"}, "data.n_trials"),
    ({"length": 1}, "data.length"),
    ({"mean_rate": 0.0}, "data.mean_rate"),
    ({"dt": 0.5}, "data.dt"),
    ({"split": [0.5, 0.2, 0.2]}, "data.split"),
    ({"split": [1.2, -0.1, -0.1]}, "data.split"),
])
def test_bad_options_are_reported_with_their_path(section, field):
    with pytest.raises(SpecErrors, match=field.replace(".", r"\.")):
        structure_config(LorenzConfig, section, "data")


def test_spec_options_build_the_config():
    cfg = structure_config(LorenzConfig, {"n_trials": 10, "split": [0.8, 0.1, 0.1], "lorenz_beta": 3}, "data")
    assert cfg == LorenzConfig(n_trials=10, split=(0.8, 0.1, 0.1), lorenz_beta=3.0)


@pytest.mark.parametrize("kwargs", [{"n_trials": -1}, {"split": (0.5, 0.2, 0.2)}, {"init_noise": -1.0}])
def test_bad_options_in_python_raise_value_error(kwargs):
    with pytest.raises(ValueError, match="expected"):
        LorenzConfig(**kwargs)


# --- properties and registration ---------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(n_trials=st.integers(1, 6), n_neurons=st.integers(1, 8), length=st.integers(2, 24),
       burn_in=st.integers(0, 10), mean_rate=st.floats(0.01, 5.0), softplus_beta=st.floats(0.5, 4.0),
       init_noise=st.floats(0.0, 3.0), seed=st.integers(0, 2**32 - 1))
def test_any_small_config_gives_valid_spike_data(n_trials, n_neurons, length, burn_in, mean_rate,
                                                 softplus_beta, init_noise, seed):
    config = LorenzConfig(n_trials=n_trials, n_neurons=n_neurons, length=length, burn_in=burn_in,
                          mean_rate=mean_rate, softplus_beta=softplus_beta, init_noise=init_noise, seed=seed)
    data = LorenzSource(config).load()
    assert isinstance(data, SpikeData) and data.counts.shape == (n_trials, length, n_neurons)
    np.testing.assert_array_equal(data.lengths, np.full(n_trials, length))
    assert np.isfinite(data.covariates["rates_true"]).all() and (data.covariates["rates_true"] >= 0).all()
    assert sum(len(v) for v in data.splits.values()) == n_trials


def test_plugin_registers_the_lorenz_data_source():
    import ldns_plugins.lorenz as plugin

    [(kind, name, cls, summary)] = registered_classes(plugin)
    assert (kind, name, cls) == ("data", "lorenz", LorenzSource) and summary
