"""The conditioner plugins (reach-angle, velocity, covariate): the conformance kit, normalisation
from training trials only, validation of user conditions, the angle formula, and their invariants."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ldns_framework import DataError, SpikeData
from ldns_framework.testing import ConditionerContract, parametrize_with_checks, run_check_command
from ldns_framework.testing.pytest_plugin import kit_registry
from ldns_plugins.conditioners.covariate import CovariateConditioner, CovariateConfig
from ldns_plugins.conditioners.reach_angle import ReachAngle, ReachAngleConfig
from ldns_plugins.conditioners.velocity import Velocity, VelocityConfig

LENGTH = 64


def reach_data(n_trials: int = 20, seed: int = 0, variable_length: bool = False) -> SpikeData:
    """Straight reaches: hand_vel (trials, 64, 2) m/s, a bell-shaped speed peaking at bin 55 in a
    random direction, plus a vector covariate ``target`` (trials, 2); 60/20/20 splits."""
    rng = np.random.default_rng(seed)
    theta = rng.uniform(-np.pi, np.pi, n_trials)
    t = np.arange(LENGTH)
    speed = 0.4 * np.exp(-0.5 * ((t - 55) / 6.0) ** 2)  # (time,)
    direction = np.stack([np.cos(theta), np.sin(theta)], axis=1)  # (trials, 2)
    velocity = speed[None, :, None] * direction[:, None, :] + rng.normal(0, 0.002, (n_trials, LENGTH, 2))
    counts = rng.poisson(np.exp(-1 + velocity @ rng.normal(0, 3, (2, 5))))  # (trials, time, 5)
    lengths = None
    if variable_length:
        lengths = rng.integers(62, LENGTH + 1, n_trials)
        lengths[0] = LENGTH
        mask = t[None, :] < lengths[:, None]  # (trials, time)
        counts = counts * mask[..., None]
        velocity = np.where(mask[..., None], velocity, 50.0)  # padding that must never count
    order = rng.permutation(n_trials)
    splits = {"train": np.sort(order[:12]), "val": np.sort(order[12:16]), "test": np.sort(order[16:])}
    return SpikeData(counts, lengths=lengths, covariates={"hand_vel": velocity, "target": 0.1 * direction},
                     bin_width_s=0.005, splits=splits, metadata={"behavior_units": {"hand_vel": "m/s"}})


def fitted(conditioner, data=None):
    data = reach_data() if data is None else data
    conditioner.fit(data, data.splits["train"])
    return conditioner, data


# -- the conformance kit ---------------------------------------------------------------------------
# On the kit's own data (covariates "vector" (trials, 2) and "sequence" (trials, 16, 2)) ...


@parametrize_with_checks([lambda: ReachAngle(ReachAngleConfig(covariate="vector")),
                          lambda: ReachAngle(ReachAngleConfig(covariate="sequence", bin=4, average_bins=3))],
                         kind="conditioner")
def test_reach_angle_passes_the_kit(check):
    check()


@parametrize_with_checks([lambda: Velocity(VelocityConfig(covariate="sequence"))], kind="conditioner")
def test_velocity_passes_the_kit(check):
    check()


@parametrize_with_checks([lambda: CovariateConditioner(CovariateConfig(covariate="vector")),
                          lambda: CovariateConditioner(CovariateConfig(covariate="sequence", normalise=False))],
                         kind="conditioner")
def test_covariate_passes_the_kit(check):
    check()


# ... and with their defaults on reach-like data with hand_vel.


class TestReachAngleDefaults(ConditionerContract):
    def make_model(self):
        return ReachAngle()

    def make_data(self):
        return reach_data()


class TestVelocityDefaults(ConditionerContract):
    def make_model(self):
        return Velocity()

    def make_data(self):
        return reach_data(variable_length=True)


class TestCovariateOnAVector(ConditionerContract):
    def make_model(self):
        return CovariateConditioner(CovariateConfig(covariate="target"))

    def make_data(self):
        return reach_data()


@pytest.mark.parametrize("name, options", [("reach-angle", ["covariate=sequence", "bin=4"]),
                                           ("velocity", ["covariate=sequence"]),
                                           ("covariate", ["covariate=vector"])])
def test_ldns_check_passes_each_registered_name(name, options, capsys):
    registry = kit_registry("ldns_plugins.conditioners")
    assert run_check_command("conditioner", name, options, registry, progress=False) == 0, capsys.readouterr().out


# -- normalisation ---------------------------------------------------------------------------------


def test_velocity_statistics_come_from_valid_training_bins_only():
    data = reach_data(variable_length=True)
    conditioner, _ = fitted(Velocity(), data)
    train = data.splits["train"]
    valid = data.covariates["hand_vel"][train][data.mask()[train]]  # (bins, 2): the padding (50 m/s) left out
    state = conditioner.state()
    np.testing.assert_allclose(state["mean"], valid.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(state["std"], valid.std(axis=0), rtol=1e-9)
    assert state["units"] == "m/s" and state["kind"] == "sequence" and state["dim"] == 2
    # other trials never move the statistics
    moved = dict(data.covariates)
    moved["hand_vel"] = data.covariates["hand_vel"].copy()
    moved["hand_vel"][data.splits["test"]] += 3.0
    other = SpikeData(data.counts, lengths=data.lengths, covariates=moved, splits=data.splits, metadata=data.metadata)
    assert fitted(Velocity(), other)[0].state() == state


def test_sequence_conditions_are_standardised_with_zero_padding():
    data = reach_data(variable_length=True)
    conditioner, _ = fitted(Velocity(), data)
    train = data.splits["train"]
    out = conditioner.from_data(data, train).numpy()  # (trials, time, 2)
    mask = data.mask()[train]
    np.testing.assert_allclose(out[mask].mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(out[mask].std(axis=0), 1.0, atol=1e-4)
    assert (out[~mask] == 0).all() and (~mask).any()


def test_state_round_trips_through_json():
    for conditioner in (Velocity(), CovariateConditioner(CovariateConfig(covariate="target"))):
        conditioner, data = fitted(conditioner)
        fresh = type(conditioner)(conditioner.config)
        fresh.load_state(json.loads(json.dumps(conditioner.state())))
        assert fresh.kind == conditioner.kind and fresh.dim == conditioner.dim
        test = data.splits["test"]
        assert torch.equal(fresh.from_data(data, test), conditioner.from_data(data, test))
        user = conditioner.user_conditions(data, test)
        n = len(test)
        assert torch.equal(fresh.validate(user, n, data.n_time), conditioner.validate(user, n, data.n_time))


@pytest.mark.parametrize("state", [{}, {"kind": "sequence", "dim": 2, "units": None, "mean": [0.0], "std": [1.0, 1.0]},
                                   {"kind": "vector", "dim": 2, "units": None, "mean": [0, 0], "std": [1, 1]},
                                   {"kind": "sequence", "dim": 2, "units": None, "mean": [0, 0], "std": [1, 0]}])
def test_a_malformed_state_is_an_error_naming_conditioner_json(state):
    with pytest.raises(DataError, match="^conditioner.json: expected"):
        Velocity().load_state(state)


def test_covariate_kind_follows_the_data_and_normalise_false_keeps_units():
    vector, data = fitted(CovariateConditioner(CovariateConfig(covariate="target", normalise=False)))
    assert vector.kind == "vector" and vector.dim == 2
    np.testing.assert_allclose(vector.from_data(data, [3, 1]).numpy(), data.covariates["target"][[3, 1]], rtol=1e-6)
    sequence, _ = fitted(CovariateConditioner(CovariateConfig(covariate="hand_vel")), data)
    assert sequence.kind == "sequence" and sequence.from_data(data, [0]).shape == (1, LENGTH, 2)
    with pytest.raises(DataError, match=r"covariates\['target'\]: expected \(trials, time, dim\) for a sequence"):
        fitted(CovariateConditioner(CovariateConfig(covariate="target", kind="sequence")), data)


# -- validation ------------------------------------------------------------------------------------


def test_a_missing_covariate_lists_the_covariates_the_data_have():
    for conditioner in (ReachAngle(ReachAngleConfig(covariate="cursor_vel")), Velocity(VelocityConfig(covariate="x")),
                        CovariateConditioner(CovariateConfig(covariate="x"))):
        with pytest.raises(DataError) as error:
            fitted(conditioner)
        assert str(error.value).startswith("conditioner.covariate: the data have no covariate")
        assert str(error.value).endswith("covariates: 'hand_vel', 'target'") and "\n" not in str(error.value)


@pytest.mark.parametrize("condition, message", [
    (np.zeros((4, LENGTH - 1, 2)), r"expected \(4, 64, 2\) hand_vel traces in m/s .* got shape \(4, 63, 2\)"),
    (np.zeros((4, LENGTH, 3)), r"got shape \(4, 64, 3\)"),
    (np.zeros((5, LENGTH, 2)), r"got shape \(5, 64, 2\)"),
    (np.zeros((4, 2)), r"got shape \(4, 2\)"),
    (np.full((4, LENGTH, 2), np.nan), "expected finite values, found 512 NaN or infinite"),
    (np.array([["a"]]), "of real numbers, got dtype <U1"),
    (None, "this model is conditional: expected"),
])
def test_velocity_refuses_bad_conditions_in_one_line(condition, message):
    conditioner, _ = fitted(Velocity())
    with pytest.raises(DataError, match=message) as error:
        conditioner.validate(condition, 4, LENGTH)
    assert str(error.value).startswith("condition: ") and "\n" not in str(error.value)


def test_velocity_names_the_mm_per_s_mistake():
    conditioner, data = fitted(Velocity())
    test = data.splits["test"]
    metres = conditioner.user_conditions(data, test)
    conditioner.validate(metres, len(test), LENGTH)  # m/s, as the data: accepted
    with pytest.raises(DataError, match=r"expected hand_vel in m/s like the training data \(a trace in mm/s"):
        conditioner.validate(metres * 1000, len(test), LENGTH)
    relaxed, _ = fitted(Velocity(VelocityConfig(max_z=None)), data)
    relaxed.validate(metres * 1000, len(test), LENGTH)


@pytest.mark.parametrize("units, condition, message", [
    ("radians", np.array([0.0, 90.0, 180.0]),
     r"within \[-6.28319, 6.28319\], got \|angle\| up to 180; they look like degrees: set units: degrees"),
    ("degrees", np.array([0.0, 90.0, 400.0]),
     r"expected angles in degrees within \[-360, 360\], got \|angle\| up to 400$"),
    ("degrees", np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]), r"unit rows \[cos, sin\], got row norms 0.707 to 1"),
    ("degrees", np.zeros((3, 3)), r"expected \(3,\) reach angles in degrees or \(3, 2\) \[cos, sin\] rows, got shape"),
    ("degrees", np.zeros(4), r"got shape \(4,\)"),
    ("degrees", np.zeros((3, LENGTH, 2)), r"got shape \(3, 64, 2\)"),
    ("degrees", np.array([0.0, np.inf, 1.0]), "expected finite values"),
])
def test_reach_angle_refuses_bad_conditions(units, condition, message):
    conditioner, _ = fitted(ReachAngle(ReachAngleConfig(units=units)))
    with pytest.raises(DataError, match=message) as error:
        conditioner.validate(condition, 3, LENGTH)
    assert str(error.value).startswith("condition: ")


def test_reach_angle_units_and_rounded_vectors():
    degrees, _ = fitted(ReachAngle())
    radians, _ = fitted(ReachAngle(ReachAngleConfig(units="radians")))
    expected = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    assert torch.allclose(degrees.validate([0, 90, 180], 3, LENGTH), expected, atol=1e-6)
    assert torch.allclose(radians.validate([0, np.pi / 2, np.pi], 3, LENGTH), expected, atol=1e-6)
    rounded = degrees.validate(np.array([[0.707, 0.707]]), 1, LENGTH)
    assert torch.allclose(rounded.norm(dim=1), torch.ones(1)) and torch.allclose(rounded[0, 0], rounded[0, 1])


def test_reach_angle_matches_the_direct_formula():
    data = reach_data()
    velocity = data.covariates["hand_vel"]
    for bin_, average in ((50, 1), (50, 10), (45, 15)):
        conditioner, _ = fitted(ReachAngle(ReachAngleConfig(bin=bin_, average_bins=average)), data)
        out = conditioner.from_data(data, np.arange(data.n_trials)).numpy()
        vx, vy = velocity[:, bin_:bin_ + average, 0].mean(axis=1), velocity[:, bin_:bin_ + average, 1].mean(axis=1)
        theta = np.arctan2(vy, vx)
        np.testing.assert_allclose(out, np.stack([np.cos(theta), np.sin(theta)], axis=1), atol=1e-6)
    vector, _ = fitted(ReachAngle(ReachAngleConfig(covariate="target")), data)
    target = data.covariates["target"]
    np.testing.assert_allclose(vector.from_data(data, [2]).numpy()[0],
                               target[2] / np.linalg.norm(target[2]), atol=1e-6)


def test_reach_angle_refuses_trials_without_a_direction():
    data = reach_data()
    with pytest.raises(DataError, match=r"^condition: 12 of 12 trials \(first: trial \d+\) have hand_vel speed below "
                                        r"min_speed=0.01 at bin 5, so no reach direction"):
        fitted(ReachAngle(ReachAngleConfig(bin=5, average_bins=1, min_speed=0.01)), data)  # before the reach
    with pytest.raises(DataError, match=r"^conditioner.bin: bins 60..69 \(bin, average_bins\) must lie inside every "
                                        r"trial; the shortest has 64 bins"):
        fitted(ReachAngle(ReachAngleConfig(bin=60)), data)


def test_reach_angle_draws_uniform_reproducible_directions():
    conditioner = ReachAngle()
    a = conditioner.draw(2000, LENGTH, torch.Generator().manual_seed(3))
    assert torch.equal(a, conditioner.draw(2000, LENGTH, torch.Generator().manual_seed(3)))
    assert torch.allclose(a.norm(dim=1), torch.ones(2000), atol=1e-6)
    counts = np.histogram(torch.atan2(a[:, 1], a[:, 0]).numpy(), bins=8, range=(-np.pi, np.pi))[0]
    assert counts.min() > 200  # 250 expected per octant
    assert torch.allclose(conditioner.validate(a.numpy(), 2000, LENGTH), a, atol=1e-6)


# -- invariants ------------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-359.9, 359.9), min_size=1, max_size=8))
def test_angle_to_vector_to_angle_is_the_identity(angles):
    conditioner = ReachAngle()
    vectors = conditioner.validate(np.array(angles), len(angles), LENGTH).double().numpy()
    back = np.degrees(np.arctan2(vectors[:, 1], vectors[:, 0]))
    difference = (back - np.array(angles) + 180.0) % 360.0 - 180.0  # on the circle
    np.testing.assert_allclose(difference, 0.0, atol=1e-4)
    again = conditioner.validate(vectors, len(angles), LENGTH).double().numpy()  # [cos, sin] rows pass unchanged
    np.testing.assert_allclose(again, vectors, atol=1e-6)


_DATA = reach_data()
_VELOCITY = fitted(Velocity(), _DATA)[0]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, _DATA.n_trials - 1), min_size=1, max_size=6))
def test_validating_real_conditions_gives_from_data(indices):
    for conditioner in (_VELOCITY, fitted(ReachAngle(), _DATA)[0]):
        user = conditioner.user_conditions(_DATA, np.array(indices))
        assert torch.allclose(conditioner.validate(user, len(indices), LENGTH),
                              conditioner.from_data(_DATA, np.array(indices)), atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(0.01, 1.0))
def test_samples_carry_the_validated_traces_in_data_units(seed, scale):
    traces = np.random.default_rng(seed).normal(0, scale, (2, LENGTH, 2))  # m/s
    model = _VELOCITY.validate(traces, 2, LENGTH)
    [(name, stored)] = _VELOCITY.sample_covariates(model).items()
    assert name == "hand_vel"
    np.testing.assert_allclose(stored, traces, rtol=1e-4, atol=1e-5)


def test_samples_carry_the_requested_angle_in_radians():
    conditioner = ReachAngle()
    stored = conditioner.sample_covariates(conditioner.validate([0.0, 90.0, -135.0], 3, LENGTH))
    assert list(stored) == ["reach_angle"] and stored["reach_angle"].shape == (3, 1)
    np.testing.assert_allclose(stored["reach_angle"][:, 0], np.radians([0.0, 90.0, -135.0]), atol=1e-6)
    assert conditioner.sample_covariates(None) == {} and _VELOCITY.sample_covariates(None) == {}
