"""Other observation models through the whole pipeline: the third-party negative-binomial plugin
(installed by `make test` from docs/examples) and the autoregressive spike-history model."""

from __future__ import annotations

import numpy as np
import pytest

from ldns_framework.pipeline import Pipeline

BASE = {
    "seed": 0,
    "data": {"type": "lorenz", "n_trials": 24, "n_neurons": 8, "length": 32, "seed": 3},
    "encoder": {"type": "s4-autoencoder", "hidden": 16, "latent_dim": 4, "blocks": 1, "state_size": 8},
    "generator": {"type": "latent-diffusion", "hidden": 16, "blocks": 1, "state_size": 8, "train_steps": 50},
    "train": {"encoder": {"epochs": 2, "batch_size": 8}, "generator": {"epochs": 2, "batch_size": 8}},
    "sample": {"steps": 4, "batch_size": 4},
}


@pytest.mark.parametrize("observation", [
    {"type": "negative-binomial"},
    {"type": "spike-history", "history": 4, "fit": {"max_iter": 20, "progress": False}},
])
def test_a_spec_with_this_observation_model_trains_reloads_and_samples(tmp_path, observation):
    run = tmp_path / "run"
    Pipeline.from_spec({**BASE, "observation": observation}).fit(run_dir=run, progress=False)
    pipeline = Pipeline.load(run)  # rebuilt from the run directory alone, fitted weights loaded
    samples = pipeline.sample(3, seed=1, progress=False)
    assert samples.observation == observation["type"]
    assert samples.counts.shape == (3, 32, 8) and (samples.counts >= 0).all()
    assert np.array_equal(samples.counts, np.round(samples.counts))
    again = Pipeline.load(run).sample(3, seed=1, progress=False)
    np.testing.assert_array_equal(samples.counts, again.counts)


def test_sampling_with_another_observation_model_fits_it_on_the_run(tmp_path):
    run = tmp_path / "run"
    Pipeline.from_spec({**BASE, "observation": {"type": "poisson"}}).fit(run_dir=run, progress=False)
    samples = Pipeline.load(run).sample(2, seed=0, observation="spike-history", progress=False)
    assert samples.observation == "spike-history" and samples.counts.shape == (2, 32, 8)
