"""The built-in metric components: registration, the core's pooled protocol, declared values,
agreement with ldns_framework.metrics, exact pooling."""

from __future__ import annotations

import inspect

import attrs
import numpy as np
import pytest

import ldns_plugins.metrics as metrics_plugin
import ldns_plugins.metrics.base as plugin_base
from ldns_framework import DataError, Metric, PooledMetric, SpikeData
from ldns_framework import metrics as M
from ldns_plugins.metrics.autocorrelation import Autocorrelation, AutocorrelationConfig
from ldns_plugins.metrics.condition_psth import ConditionPsth, ConditionPsthConfig
from ldns_plugins.metrics.correlation import PairwiseCorrelation
from ldns_plugins.metrics.decoding import (ReachAngleError, ReachAngleErrorConfig, VelocityDecoding,
                                           VelocityDecodingConfig)
from ldns_plugins.metrics.isi import Isi, IsiConfig
from ldns_plugins.metrics.length_buckets import LengthBuckets
from ldns_plugins.metrics.population import PopulationCount, PopulationCountConfig
from ldns_plugins.metrics.psth import Psth
from ldns_plugins.metrics.rates import MeanRate, MeanRateConfig
from ldns_registry import Registry

ALL = (MeanRate, PopulationCount, PairwiseCorrelation, Isi, Autocorrelation, Psth)
NAMES = ("mean-rate", "population-count", "pairwise-correlation", "isi", "autocorrelation", "psth", "condition-psth",
         "velocity-decoding", "reach-angle-error", "length-buckets")
#: Metrics that apply only to conditional or variable-length runs, built for tiny data (angle bin 5).
CONDITIONAL = (lambda: VelocityDecoding(VelocityDecodingConfig(sigma_ms=20.0)),
               lambda: ReachAngleError(ReachAngleErrorConfig(sigma_ms=20.0, angle_bin=5, angle_bins=3)),
               lambda: ConditionPsth(ConditionPsthConfig(angle_bin=5, angle_bins=3, directions=4)),
               LengthBuckets)
CONDITIONAL_IDS = ("velocity-decoding", "reach-angle-error", "condition-psth", "length-buckets")


def spikes(n_trials: int, seed: int, *, n_time: int = 24, n_neurons: int = 12, padded: bool = False,
           conditions: bool = True, metadata: dict | None = None) -> SpikeData:
    """Poisson counts with a shared slow latent (correlated neurons), optional padding and labels."""
    rng = np.random.default_rng(seed)
    latent = np.cumsum(rng.normal(0, 0.4, size=(n_trials, n_time, 1)), axis=1)
    loading = np.linspace(-1, 1, n_neurons)[None, None, :]
    counts = rng.poisson(0.4 * np.exp(np.clip(latent * loading, -2, 2)))
    lengths = rng.integers(n_time // 2, n_time + 1, size=n_trials) if padded else None
    covariates = {"condition": rng.integers(0, 3, size=(n_trials, 1))} if conditions else {}
    return SpikeData(counts, lengths=lengths, covariates=covariates, bin_width_s=0.01, metadata=metadata or {})


def with_behaviour(spikes_: SpikeData, seed: int) -> SpikeData:
    """``spikes_`` with a ``hand_vel`` (trials, time, 2) read out linearly from their counts, plus noise."""
    rng = np.random.default_rng(seed)
    velocity = spikes_.counts @ np.random.default_rng(0).normal(size=(spikes_.n_neurons, 2))
    velocity = (velocity + rng.normal(size=velocity.shape)) * spikes_.mask()[..., None]
    return SpikeData(spikes_.counts, lengths=spikes_.lengths, covariates={"hand_vel": velocity}, bin_width_s=0.01)


def finite_values(values: dict[str, float]) -> bool:
    return all(np.isfinite(v) for v in values.values())


# -- registration ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def registry():
    registry = Registry()
    registry.register(metrics_plugin, "metrics")
    return registry


def test_the_plugin_registers_one_metric_per_name_by_import_string(registry):
    assert sorted(registry.catalogue.names("metric")) == sorted(NAMES)
    for name in NAMES:
        cls = registry.component_class("metric", name)
        assert issubclass(cls, Metric) and attrs.has(cls.config_class)
        assert registry.entry("metric", name).summary


def test_metrics_build_from_spec_sections_with_checked_options(registry):
    isi = registry.build("metric", {"type": "isi", "min_isis": 3, "time_unit": "bins"})
    assert isi.config == IsiConfig(min_isis=3, time_unit="bins")
    with pytest.raises(Exception, match="min_isis"):
        registry.build("metric", {"type": "isi", "min_isis": 0})
    with pytest.raises(Exception, match="time_unit"):
        registry.build("metric", {"type": "mean-rate", "time_unit": "minutes"})


# -- values --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_each_metric_is_finite_on_tiny_data_and_zero_for_identical_sets(cls):
    model, data = spikes(9, 1, padded=True), spikes(11, 2)
    values = cls().compute(model, data)
    assert values and finite_values(values), values
    same = cls().compute(data, data)
    for name, value in same.items():
        if name.endswith("_r"):
            assert value == pytest.approx(1.0)
        else:
            assert value == pytest.approx(0.0, abs=1e-12), name


# -- the core's protocol and declared values ----------------------------------------------------------
@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_each_metric_follows_the_cores_pooled_protocol(cls):
    assert issubclass(cls, PooledMetric)
    assert inspect.signature(cls.describe).parameters["context"].default is None


def test_the_protocol_is_declared_only_in_the_core():
    assert not any(isinstance(value, type) and issubclass(value, Metric) for value in vars(plugin_base).values())


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_every_value_has_a_declared_unit_and_direction_with_or_without_a_context(cls):
    model, data = spikes(9, 1, padded=True), spikes(11, 2)
    values = cls().compute(model, data)
    for described in (cls().describe(cls().prepare(data)), cls().describe()):
        assert set(described) == set(values)
        for name, entry in described.items():
            assert entry["better"] == ("higher" if name.endswith("_r") else "lower"), name
            assert isinstance(entry["unit"], str), name


def test_units_follow_the_context_and_say_both_before_the_data_is_seen():
    lorenz = spikes(4, 3, metadata={"isi_unit": "bins"})
    assert MeanRate().describe(MeanRate().prepare(lorenz))["mean_rate_rmse"]["unit"] == "spikes/bin"
    assert MeanRate().describe(MeanRate().prepare(spikes(4, 3)))["mean_rate_rmse"]["unit"] == "Hz"
    assert MeanRate().describe()["mean_rate_rmse"]["unit"] == "Hz or spikes/bin"
    assert Isi(IsiConfig(time_unit="seconds")).describe()["mean_isi_rmse"]["unit"] == "s"


def test_values_agree_with_the_headline_comparison_including_padding():
    model, data = spikes(9, 3, padded=True), spikes(13, 4, padded=True)
    reference = M.compare(model.counts, data.counts, model.lengths, data.lengths, bin_width_s=0.01)
    got = {}
    for metric in (MeanRate(), PopulationCount(), PairwiseCorrelation(), Isi(), Autocorrelation()):
        got.update(metric.compute(model, data))
    for name, expected in reference.items():
        assert got[name] == pytest.approx(expected, rel=1e-9, abs=1e-12), name


def test_time_unit_follows_the_data_and_can_be_forced():
    lorenz = {"isi_unit": "bins"}
    model, data = spikes(8, 5, metadata=lorenz), spikes(8, 6, metadata=lorenz)
    in_bins = M.isi_comparison(model.counts, data.counts)
    assert Isi().compute(model, data)["mean_isi_rmse"] == pytest.approx(in_bins.mean_isi_rmse)
    seconds = Isi(IsiConfig(time_unit="seconds")).compute(model, data)["mean_isi_rmse"]
    assert seconds == pytest.approx(in_bins.mean_isi_rmse * 0.01)
    rate_hz = MeanRate(MeanRateConfig(time_unit="seconds")).compute(model, data)["mean_rate_rmse"]
    assert rate_hz == pytest.approx(M.mean_rate_rmse(model.counts, data.counts, bin_width_s=0.01))


def test_autocorrelation_group_values_match_the_temporal_summary():
    model, data = spikes(10, 7), spikes(12, 8)
    values = Autocorrelation(AutocorrelationConfig(max_lag=6, rmse_max_lag=4, n_groups=3)).compute(model, data)
    comparison = M.compare_temporal_correlations(model.counts, data.counts, max_lag=6, n_groups=3)
    for g in range(3):
        auto_model, auto_data = comparison.model.auto[g, 7:], comparison.data.auto[g, 7:]  # lags 1..6
        assert values[f"autocorr_group{g + 1}_rmse"] == pytest.approx(np.sqrt(np.mean((auto_model - auto_data) ** 2)))
        cross_model, cross_data = comparison.model.cross[g], comparison.data.cross[g]
        assert values[f"crosscorr_group{g + 1}_rmse"] == pytest.approx(np.sqrt(np.mean((cross_model - cross_data) ** 2)))
    assert values["autocorr_rmse_lag1_4"] == pytest.approx(M.autocorr_rmse(model.counts, data.counts, max_lag=4))


def test_groups_of_one_neuron_have_no_cross_correlation_value():
    model, data = spikes(8, 20, n_neurons=5), spikes(8, 21, n_neurons=5)  # groups of 1, 1, 1 and 2 neurons
    metric = Autocorrelation()
    values = metric.compute(model, data)
    assert [name for name in values if name.startswith("crosscorr")] == ["crosscorr_group4_rmse"]
    assert finite_values(values) and set(metric.describe(metric.prepare(data))) == set(values)


def test_population_count_clips_at_max_count():
    model, data = spikes(6, 9), spikes(6, 10)
    clipped = PopulationCount(PopulationCountConfig(max_count=4)).compute(model, data)
    assert clipped["population_count_kl"] == pytest.approx(M.population_count_kl(model.counts, data.counts, max_count=4))


# -- pooling: a fold's weights equal computing on the resampled trials -------------------------------
@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_pooled_weights_equal_the_resampled_trials(cls):
    model, data = spikes(10, 11, padded=True), spikes(12, 12, padded=True)
    weights = np.random.default_rng(0).multinomial(10, np.full(10, 0.1))  # a bootstrap multiset
    metric = cls()
    context = metric.prepare(data)
    pooled = metric.compare_statistics(metric.pool(metric.trial_statistics(model, context), weights, context),
                                       metric.pool(metric.trial_statistics(data, context), np.ones(12, int), context),
                                       context)
    direct = metric.compute(model.subset(np.repeat(np.arange(10), weights)), data)
    assert pooled.keys() == direct.keys()
    for name in direct:
        assert pooled[name] == pytest.approx(direct[name], rel=1e-9, abs=1e-12), name


def test_weights_must_be_non_negative_integers():
    data = spikes(4, 13)
    metric = MeanRate()
    per_trial = metric.trial_statistics(data, metric.prepare(data))
    with pytest.raises(ValueError, match="integer"):
        metric.pool(per_trial, np.array([0.5, 1, 1, 1]), "seconds")
    with pytest.raises(ValueError, match="one weight per trial"):
        metric.pool(per_trial, np.ones(3, int), "seconds")


# -- psth ---------------------------------------------------------------------------------------------
def test_psth_needs_the_condition_covariate_on_both_sides():
    assert Psth().compute(spikes(6, 14, conditions=False), spikes(6, 15)) == {}
    values = Psth().compute(spikes(30, 16), spikes(30, 17))
    labels = spikes(30, 17).covariates["condition"][:, 0]
    assert set(values) == {"psth_rmse", "psth_r"} and np.isfinite(values["psth_rmse"])
    assert np.unique(labels).size == 3


def test_psth_rejects_fractional_labels():
    bad = SpikeData(np.zeros((3, 4, 2), int), covariates={"condition": np.array([[0.5], [1.0], [2.0]])})
    with pytest.raises(DataError, match="condition"):
        Psth().compute(bad, bad)


def test_neuron_count_mismatch_is_a_data_error():
    with pytest.raises(DataError, match="neurons"):
        MeanRate().compute(spikes(3, 18, n_neurons=5), spikes(3, 19, n_neurons=6))


# -- conditional and variable-length metrics -------------------------------------------------------
@pytest.mark.parametrize("make", CONDITIONAL, ids=CONDITIONAL_IDS)
def test_conditional_metrics_follow_the_pooled_protocol_exactly(make):
    model, data = with_behaviour(spikes(10, 11, padded=True), 1), with_behaviour(spikes(12, 12, padded=True), 2)
    weights = np.random.default_rng(0).multinomial(10, np.full(10, 0.1))
    metric = make()
    assert isinstance(metric, PooledMetric)
    context = metric.prepare(data)
    pooled = metric.compare_statistics(metric.pool(metric.trial_statistics(model, context), weights, context),
                                       metric.pool(metric.trial_statistics(data, context), np.ones(12, int), context),
                                       context)
    direct = metric.compute(model.subset(np.repeat(np.arange(10), weights)), data)
    assert pooled and pooled.keys() == direct.keys() == metric.describe(context).keys()
    for name in direct:
        assert pooled[name] == pytest.approx(direct[name], rel=1e-9, abs=1e-12), name


@pytest.mark.parametrize("make", CONDITIONAL, ids=CONDITIONAL_IDS)
def test_conditional_metrics_do_not_apply_to_unconditional_fixed_length_runs(make):
    assert make().compute(spikes(9, 1), spikes(11, 2)) == {}
