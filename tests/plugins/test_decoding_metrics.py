"""The behaviour-decoding metrics (``velocity-decoding``, ``reach-angle-error``) and the per-condition
PSTH correlation (``condition-psth``): known answers, padding, invariants, the metric kit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ldns_framework import SpikeData, metrics
from ldns_framework.evaluation import evaluate, format_table, not_applicable
from ldns_framework.testing import MetricContract
from ldns_framework.testing.reference import synthetic_spike_data
from ldns_plugins.metrics.condition_psth import ConditionPsth, ConditionPsthConfig
from ldns_plugins.metrics.decoding import (ReachAngleError, ReachAngleErrorConfig, VelocityDecoding,
                                           VelocityDecodingConfig)

WEIGHTS = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, -0.5], [-1.0, 0.3]])  # (neurons, 2): velocity = counts @ W


def linear_data(n_trials: int = 24, length: int = 16, seed: int = 0, noise: float = 0.0,
                lengths: np.ndarray | None = None) -> SpikeData:
    """Counts (trials, length, 4) whose ``hand_vel`` (trials, length, 2) is exactly linear in them (plus noise)."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(2.0, (n_trials, length, 4))
    velocity = counts @ WEIGHTS + noise * rng.normal(size=(n_trials, length, 2))
    if lengths is not None:
        valid = (np.arange(length)[None, :] < lengths[:, None])[..., None]
        counts, velocity = counts * valid, velocity * valid
    return SpikeData(counts, lengths=lengths, covariates={"hand_vel": velocity}, bin_width_s=0.01)


def with_covariates(spikes: SpikeData, **covariates: np.ndarray) -> SpikeData:
    return SpikeData(spikes.counts, lengths=spikes.lengths, covariates=covariates, bin_width_s=spikes.bin_width_s)


RAW = VelocityDecodingConfig(sigma_ms=0.0)  # the decoder sees raw counts: the map is exactly linear


# -- decoding ---------------------------------------------------------------------------------
def test_decoder_recovers_a_known_linear_map():
    data = linear_data()
    values = VelocityDecoding(RAW).compute(linear_data(seed=1), data)
    assert values["velocity_r2"] > 0.999 and values["velocity_r2_data"] > 0.999


def test_noise_lowers_r2_and_unrelated_velocity_scores_below_zero():
    data, metric = linear_data(), VelocityDecoding(RAW)
    noisy = metric.compute(linear_data(seed=1, noise=2.0), data)["velocity_r2"]
    assert 0.2 < noisy < 0.9
    unrelated = linear_data(seed=2)
    shuffled = with_covariates(unrelated, hand_vel=linear_data(seed=3).covariates["hand_vel"])
    # independent target and prediction of equal variance: R^2 = 1 - 2 = -1 in expectation
    assert metric.compute(shuffled, data)["velocity_r2"] < -0.5


def test_fit_uses_the_training_trials_for_every_split():
    train, test = linear_data(seed=0), linear_data(seed=1, noise=5.0)
    fitted = VelocityDecoding(RAW)
    fitted.fit(train)
    # fitted on noiseless training trials: the noisy split is scored by the exact map, not refitted to it
    decoder = fitted.prepare(test)
    np.testing.assert_allclose(decoder.coef_.T, WEIGHTS, atol=1e-3)
    assert VelocityDecoding(RAW).prepare(test) is not decoder


def test_unconditional_samples_are_not_applicable():
    data = linear_data()
    bare = SpikeData(data.counts, bin_width_s=data.bin_width_s)
    assert VelocityDecoding(RAW).compute(bare, data) == {}
    assert VelocityDecoding(RAW).compute(data, bare) == {}
    assert ReachAngleError(ReachAngleErrorConfig(sigma_ms=0.0, angle_bin=3, angle_bins=1)).compute(bare, data) == {}
    records = evaluate(bare, {"test": data}, {"velocity-decoding": VelocityDecoding(RAW)}, folds=2, progress=False,
                       train=data)
    assert records == [] and not_applicable(records, {"velocity-decoding": None}) == ["velocity-decoding"]


def test_a_target_of_the_wrong_shape_is_a_one_line_error():
    data = linear_data()
    wrong = with_covariates(data, hand_vel=np.zeros((data.n_trials, data.n_time, 3)))
    with pytest.raises(Exception, match=r"covariates\['hand_vel'\].*expected"):
        VelocityDecoding(RAW).compute(wrong, data)


# -- reach angles -----------------------------------------------------------------------------
def test_angular_error_wraps_around_180_degrees():
    deg = np.radians
    errors = metrics.angular_error_deg(deg(np.array([179.0, -170.0, 10.0, 0.0])),
                                       deg(np.array([-179.0, 170.0, -10.0, 180.0])))
    np.testing.assert_allclose(errors, [2.0, 20.0, 20.0, 180.0], atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-10, 10), min_size=1, max_size=8), st.lists(st.floats(-10, 10), min_size=1, max_size=8),
       st.floats(-20, 20))
def test_rotating_every_angle_keeps_the_errors(a, b, rotation):
    a, b = np.array(a), np.resize(np.array(b), len(a))
    np.testing.assert_allclose(metrics.angular_error_deg(a + rotation, b + rotation), metrics.angular_error_deg(a, b),
                               atol=1e-6)


def test_direction_labels_centre_sector_zero_on_zero_radians():
    angles = np.radians([0.0, 22.0, 23.0, 90.0, 180.0, -180.0, -23.0, np.nan])
    np.testing.assert_array_equal(metrics.direction_labels(angles, 8), [0, 0, 1, 2, 4, 4, 7, -1])


@pytest.mark.parametrize("offset_deg", [0.0, 30.0, 175.0, -175.0])
def test_reach_angle_error_is_the_requested_offset(offset_deg):
    data = linear_data()
    metric = ReachAngleError(ReachAngleErrorConfig(sigma_ms=0.0, angle_bin=5, angle_bins=3))
    true_angle = metrics.angle_at(data.covariates["hand_vel"], 5, data.lengths, 3)  # what the spikes encode
    samples = with_covariates(data, reach_angle=(true_angle + np.radians(offset_deg))[:, None])
    values = metric.compute(samples, data)
    assert values["reach_angle_error_deg"] == pytest.approx(abs(offset_deg), abs=0.5)
    assert values["reach_angle_error_deg_data"] == pytest.approx(0.0, abs=0.5)
    as_vector = with_covariates(data, reach_angle=np.stack([np.cos(true_angle), np.sin(true_angle)], axis=1))
    assert metric.compute(as_vector, data)["reach_angle_error_deg"] == pytest.approx(0.0, abs=0.5)


# -- per-condition PSTH ---------------------------------------------------------------------------
def angle_data(n_trials: int = 40, length: int = 20, seed: int = 0, lengths: np.ndarray | None = None) -> SpikeData:
    """The kit's angle-driven spikes with their angle as ``reach_angle`` (trials, 1) radians."""
    kit = synthetic_spike_data(n_trials=n_trials, length=length, seed=seed)
    vector = kit.covariates["vector"]
    counts = kit.counts if lengths is None else kit.counts * (np.arange(length)[None, :] < lengths[:, None])[..., None]
    return SpikeData(counts, lengths=lengths, bin_width_s=kit.bin_width_s,
                     covariates={"reach_angle": np.arctan2(vector[:, 1], vector[:, 0])[:, None],
                                 "condition": kit.covariates["condition"]})


PSTH = ConditionPsthConfig(angle_bin=5, angle_bins=1, directions=4, sigma_ms=20.0)


def test_psth_correlation_is_one_on_identical_inputs():
    data = angle_data()
    assert ConditionPsth(PSTH).compute(data, data)["condition_psth_r"] == pytest.approx(1.0)
    labelled = ConditionPsth(ConditionPsthConfig(group_by="label", sigma_ms=20.0))
    assert labelled.compute(data, data)["condition_psth_r"] == pytest.approx(1.0)


def test_psth_floor_is_below_one_and_a_matched_model_reaches_it():
    both = angle_data(n_trials=160)  # one neuron population: its trials split into data and model
    data, model = both.subset(np.arange(0, 160, 2)), both.subset(np.arange(1, 160, 2))
    records = {r["metric"]: r for r in evaluate(model, {"test": data}, {"condition-psth": ConditionPsth(PSTH)},
                                                  folds=3, protocol="matched", progress=False, baseline=False)}
    record = records["condition_psth_r"]
    assert 0.3 < record["floor"] < 0.99
    assert record["value"] == pytest.approx(record["floor"], abs=0.15)
    unrelated = SpikeData(model.counts[::-1].copy(), covariates=model.covariates, bin_width_s=model.bin_width_s)
    assert ConditionPsth(PSTH).compute(unrelated, data)["condition_psth_r"] < record["floor"]


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2 ** 31 - 1))
def test_permuting_trials_within_a_direction_keeps_the_psth_correlation(seed):
    data, model = angle_data(seed=0), angle_data(seed=1)
    metric = ConditionPsth(PSTH)
    labels = metric.labels(model)
    rng = np.random.default_rng(seed)
    order = np.arange(model.n_trials)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        order[members] = rng.permutation(members)
    # counts move between trials of one direction; each trial keeps its own angle
    permuted = SpikeData(model.counts[order], covariates=model.covariates, bin_width_s=model.bin_width_s)
    expected = metric.compute(model, data)["condition_psth_r"]
    assert metric.compute(permuted, data)["condition_psth_r"] == pytest.approx(expected)


# -- padding ----------------------------------------------------------------------------------
def garbage_padding(spikes: SpikeData, seed: int = 5) -> SpikeData:
    """``spikes`` with random counts and covariate values on every padded bin."""
    rng = np.random.default_rng(seed)
    pad = ~spikes.mask()
    counts = spikes.counts.copy()
    counts[pad] = rng.integers(0, 9, (int(pad.sum()), spikes.n_neurons))
    covariates = {}
    for name, value in spikes.covariates.items():
        value = np.array(value, dtype=np.float64)
        if value.ndim == 3:
            value[pad] = rng.normal(size=(int(pad.sum()), value.shape[2])) * 100
        covariates[name] = value
    return SpikeData(counts, lengths=spikes.lengths, covariates=covariates, bin_width_s=spikes.bin_width_s)


@pytest.mark.parametrize("make_metric", [
    lambda: VelocityDecoding(VelocityDecodingConfig(sigma_ms=30.0)),
    lambda: ReachAngleError(ReachAngleErrorConfig(sigma_ms=30.0, angle_bin=4, angle_bins=3)),
    lambda: ConditionPsth(ConditionPsthConfig(angle_bin=4, angle_bins=3, directions=4, sigma_ms=30.0)),
])
def test_padding_contents_never_change_the_values(make_metric):
    lengths = np.random.default_rng(3).integers(8, 17, 24)
    lengths[:2] = 16
    model, data = linear_data(seed=1, noise=0.5, lengths=lengths), linear_data(seed=0, noise=0.5, lengths=lengths[::-1])
    clean = make_metric().compute(model, data)
    assert clean and all(np.isfinite(v) for v in clean.values())
    dirty = make_metric().compute(garbage_padding(model), garbage_padding(data, seed=6))
    assert dirty == pytest.approx(clean)


def test_smoothing_reads_valid_bins_only():
    values = np.ones((1, 10, 1))
    valid = np.arange(10)[None, :] < 6
    values[0, 6:] = 1e6
    smoothed = metrics.smooth_time(values, 2.0, valid)
    np.testing.assert_allclose(smoothed[0, :6, 0], 1.0)  # a constant stays constant up to the trial's edge
    np.testing.assert_array_equal(smoothed[0, 6:, 0], 0.0)


# -- the metric kit ---------------------------------------------------------------------------------
def kit_data() -> SpikeData:
    """The kit's data with behaviour: ``hand_vel`` (its smooth trajectory), ``reach_angle`` [cos, sin]."""
    kit = synthetic_spike_data(n_trials=30, length=20)
    behaviour = {"hand_vel": kit.covariates["sequence"], "reach_angle": kit.covariates["vector"]}
    return SpikeData(kit.counts, covariates=behaviour, bin_width_s=kit.bin_width_s)


class TestVelocityDecodingKit(MetricContract):
    def make_model(self):
        return VelocityDecoding(VelocityDecodingConfig(sigma_ms=20.0))

    def make_data(self):
        return kit_data()


class TestReachAngleErrorKit(MetricContract):
    """Its values compare decoded with requested angles (``against: condition``), so the kit does not
    ask them to be 0 on identical inputs."""

    def make_model(self):
        return ReachAngleError(ReachAngleErrorConfig(sigma_ms=20.0, angle_bin=5, angle_bins=5))

    def make_data(self):
        return kit_data()


class TestConditionPsthKit(MetricContract):
    def make_model(self):
        return ConditionPsth(ConditionPsthConfig(angle_bin=5, angle_bins=5, directions=4))

    def make_data(self):
        return kit_data()


# -- statistics per length bucket -----------------------------------------------------------------------
def test_length_buckets_are_quantiles_of_the_real_lengths():
    lengths = np.array([5, 6, 7, 8, 9, 10, 11, 12, 20, 30])
    edges = metrics.length_bucket_edges(lengths, 4)
    np.testing.assert_array_equal(edges, [5, 7, 9, 11])
    np.testing.assert_array_equal(metrics.bucket_index(np.array([4, 5, 8, 11, 99]), edges), [-1, 0, 1, 3, 3])


def test_length_bucket_metric_is_zero_on_identical_inputs_and_ignores_padding():
    from ldns_plugins.metrics.length_buckets import LengthBuckets

    lengths = np.random.default_rng(4).integers(6, 17, 30)
    lengths[0] = 16
    data, model = linear_data(30, seed=0, lengths=lengths), linear_data(30, seed=1, lengths=lengths[::-1].copy())
    same = LengthBuckets().compute(data, data)
    assert same == {"bucket_rate_rmse": 0.0, "bucket_correlation_rmse": 0.0}
    clean = LengthBuckets().compute(model, data)
    assert clean["bucket_rate_rmse"] > 0 and clean["bucket_correlation_rmse"] > 0
    assert LengthBuckets().compute(garbage_padding(model), garbage_padding(data, seed=6)) == pytest.approx(clean)


class TestLengthBucketsKit(MetricContract):
    def make_model(self):
        from ldns_plugins.metrics.length_buckets import LengthBuckets

        return LengthBuckets()

    def make_data(self):
        return synthetic_spike_data(n_trials=30, length=20, variable_length=True)


def test_ridge_cv_scores_equal_sklearns_grid_search_over_trial_groups():
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GridSearchCV, GroupKFold

    data = linear_data(n_trials=12, noise=3.0)
    rows = metrics.valid_bins(data.counts, data.lengths).astype(np.float64)
    targets = metrics.valid_bins(data.covariates["hand_vel"], data.lengths)
    groups = np.repeat(np.arange(data.n_trials), data.lengths)
    alphas = (1e-3, 1.0, 30.0, 1e3, 1e4)
    search = GridSearchCV(Ridge(), {"alpha": list(alphas)}, cv=GroupKFold(n_splits=4)).fit(rows, targets, groups=groups)
    np.testing.assert_allclose(metrics.ridge_cv_scores(rows, targets, groups, alphas, 4),
                               search.cv_results_["mean_test_score"], rtol=1e-7, atol=1e-9)
    decoder = metrics.fit_ridge_decoder(data.counts, data.covariates["hand_vel"], data.lengths, alphas, folds=4)
    assert decoder.alpha == search.best_params_["alpha"]


def test_the_evaluation_fits_decoders_on_the_training_trials_and_lists_what_does_not_apply():
    from ldns_framework.evaluation import evaluate_samples
    from ldns_framework.io.samples import Samples

    clean, noisy = linear_data(24, seed=0), linear_data(24, seed=1, noise=4.0)
    velocity = np.concatenate([clean.covariates["hand_vel"], noisy.covariates["hand_vel"]])
    data = SpikeData(np.concatenate([clean.counts, noisy.counts]), bin_width_s=0.01, covariates={"hand_vel": velocity},
                     splits={"train": np.arange(24), "test": np.arange(24, 48)})
    fitted = {"velocity-decoding": VelocityDecoding(RAW)}
    record = evaluate(noisy, {"test": data.split("test")}, fitted, folds=2, progress=False,
                      train=data.split("train"))[1]
    own = VelocityDecoding(RAW).compute(noisy, noisy)["velocity_r2_data"]  # a decoder fitted on the noisy trials
    assert record["metric"] == "velocity_r2_data" and record["value"] < own  # the training decoder is not refitted
    samples = Samples(noisy.counts, noisy.lengths)  # unconditional: no behaviour stored with them
    records, meta = evaluate_samples(samples, data, {"velocity-decoding": VelocityDecoding(RAW)}, against="test",
                                     folds=2, progress=False)
    assert records == [] and meta["not_applicable"] == ["velocity-decoding"]
    table = format_table(records, ["velocity-decoding"])
    assert "not applicable to these samples (no values): velocity-decoding" in table


def test_trials_that_do_not_reach_the_angle_bin_have_no_angle():
    velocity = np.ones((3, 8, 2))
    angles = metrics.angle_at(velocity, 5, np.array([8, 5, 6]))
    assert angles[0] == pytest.approx(np.pi / 4) and np.isnan(angles[1]) and angles[2] == pytest.approx(np.pi / 4)
    assert np.isnan(metrics.angle_at(velocity, 8, np.array([8, 8, 8]))).all()  # past every trial
    velocity[:, 2] = [[1.0, 0.0]] * 3
    velocity[:, 3] = [[-0.2, 1.0]] * 3  # averaged vectors [0.8, 1.0]/2, not averaged angles
    np.testing.assert_allclose(metrics.angle_at(velocity, 2, np.array([8, 4, 3]), 2)[:2], np.arctan2(1.0, 0.8))
    assert np.isnan(metrics.angle_at(velocity, 2, np.array([8, 4, 3]), 2)[2])
