"""Behaviour-conditioned generation end to end at tiny sizes, through the CLI: synthetic MC_Maze-structured
files, ``ldns train`` with the reach-angle and the velocity conditioners, ``ldns sample --condition``,
and the condition stored with the samples."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from ldns_framework.cli import main
from ldns_framework.io.samples import read_samples
from ldns_framework.pipeline import Pipeline


def tiny_spec(data_dir, conditioner: dict) -> dict:
    return {
        "seed": 0,
        "data": {"type": "nwb", "path": str(data_dir), "behavior": ["hand_vel"]},
        "encoder": {"type": "s4-autoencoder", "hidden": 16, "latent_dim": 4, "blocks": 1, "state_size": 8,
                    "bidirectional": False},
        "generator": {"type": "latent-diffusion", "hidden": 16, "blocks": 1, "state_size": 8, "train_steps": 50},
        "conditioner": conditioner,
        "train": {"encoder": {"epochs": 2, "batch_size": 8}, "generator": {"epochs": 3, "batch_size": 8}},
        "sample": {"steps": 5, "batch_size": 4},
    }


@pytest.fixture(scope="module")
def nwb_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mc_maze-mini")
    assert main(["make-synthetic-nwb", str(folder), "--preset", "mc_maze-mini", "--seed", "0"]) == 0
    return folder


def train(tmp_path, nwb_dir, conditioner: dict):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(tiny_spec(nwb_dir, conditioner)))
    run = tmp_path / "run"
    assert main(["train", str(spec), "--out", str(run), "--no-progress"]) == 0
    return run


def sample(run, condition_file, out, n: int) -> int:
    return main(["sample", str(run), "--n", str(n), "--condition", str(condition_file), "--seed", "1",
                 "--out", str(out), "--no-progress"])


def test_angle_conditioned_samples_store_their_condition(tmp_path, nwb_dir, capsys):
    run = train(tmp_path, nwb_dir, {"type": "reach-angle", "units": "degrees"})
    angles = np.array([0.0, 90.0, 180.0, -90.0])
    np.savez(tmp_path / "cond.npz", condition=angles)
    assert sample(run, tmp_path / "cond.npz", tmp_path / "samples.npz", 4) == 0, capsys.readouterr().err
    samples = read_samples(tmp_path / "samples.npz")
    assert samples.counts.shape == (4, 140, 20)
    expected = np.stack([np.cos(np.radians(angles)), np.sin(np.radians(angles))], axis=1)
    np.testing.assert_allclose(samples.condition, expected, atol=1e-6)  # what the generator saw
    np.testing.assert_allclose(samples.covariates["reach_angle"][:, 0], np.radians(angles), atol=1e-6)
    # radians where degrees are expected, and a wrong count: one line each, exit status 2
    np.save(tmp_path / "bad.npy", np.array([0.0, 90.0, 400.0, 10.0]))
    assert sample(run, tmp_path / "bad.npy", tmp_path / "bad.npz", 4) == 2
    assert "condition: expected angles in degrees within [-360, 360], got |angle| up to 400" in capsys.readouterr().err
    assert sample(run, tmp_path / "cond.npz", tmp_path / "bad.npz", 5) == 2
    assert "condition: expected (5,) reach angles in degrees or (5, 2) [cos, sin] rows, got shape (4,)" \
        in capsys.readouterr().err


def test_velocity_conditioned_samples_follow_held_out_trials(tmp_path, nwb_dir, capsys):
    run = train(tmp_path, nwb_dir, {"type": "velocity"})
    pipeline = Pipeline.load(run)
    data = pipeline.load_data()
    conditioner = pipeline.model.conditioner
    test = data.splits["test"]
    traces = conditioner.user_conditions(data, test)  # (trials, 140, 2) m/s: unseen trajectories
    np.testing.assert_allclose(traces, data.covariates["hand_vel"][test], rtol=1e-6)
    np.save(tmp_path / "traces.npy", traces)
    assert sample(run, tmp_path / "traces.npy", tmp_path / "samples.npz", len(test)) == 0, capsys.readouterr().err
    samples = read_samples(tmp_path / "samples.npz")
    assert samples.counts.shape == (len(test), 140, 20)
    # the samples store the condition the generator saw (standardised) and the traces in m/s
    np.testing.assert_allclose(samples.condition, conditioner.from_data(data, test).numpy(), atol=1e-5)
    np.testing.assert_allclose(samples.covariates["hand_vel"], traces, atol=1e-5)
    np.save(tmp_path / "mm.npy", traces * 1000)
    capsys.readouterr()
    assert sample(run, tmp_path / "mm.npy", tmp_path / "bad.npz", len(test)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "expected hand_vel in m/s like the training data (a trace in mm/s" in err[0]
