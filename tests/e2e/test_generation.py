"""Unconditional generation end to end at tiny sizes: train all stages, sample, reproduce, reload."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from ldns_framework import LdnsError
from ldns_framework.cli import main
from ldns_framework.io.samples import read_samples
from ldns_framework.pipeline import Pipeline

TINY = {
    "seed": 0,
    "data": {"type": "lorenz", "n_trials": 24, "n_neurons": 8, "length": 32, "seed": 3},
    "encoder": {"type": "s4-autoencoder", "hidden": 16, "latent_dim": 4, "blocks": 1, "state_size": 8},
    "generator": {"type": "latent-diffusion", "hidden": 16, "blocks": 1, "state_size": 8, "train_steps": 50},
    "train": {"encoder": {"epochs": 2, "batch_size": 8}, "generator": {"epochs": 3, "batch_size": 8}},
    "sample": {"steps": 5, "batch_size": 4},
}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("gen") / "run"
    Pipeline.from_spec(TINY).fit(run_dir=run, progress=False)
    return run


def test_a_run_has_every_stage(trained_run):
    stats = json.loads((trained_run / "latent_stats.json").read_text())
    assert len(stats["mean"]) == 4 and all(s > 0 for s in stats["std"])
    assert (trained_run / "generator" / "weights.safetensors").is_file()
    assert len((trained_run / "generator" / "log.jsonl").read_text().splitlines()) == 3


@pytest.mark.parametrize("sampler, options", [("ddpm", {"guidance": 1.0}), ("ddim", {"steps": 25, "eta": 0.0, "guidance": 1.0}),
                                              ("dpm-solver++", {"steps": 5, "sde": False, "guidance": 1.0})])
def test_samples_have_the_right_shapes_lengths_and_dtypes(trained_run, sampler, options):
    pipeline = Pipeline.load(trained_run)
    samples = pipeline.sample(6, sampler=sampler, seed=1, progress=False)
    # as used: the spec's steps carry over to its own sampler only, and ddpm has none
    assert samples.sampler == sampler and dict(samples.sampler_options) == options
    assert samples.latents.shape == (6, 32, 4) and samples.latents.dtype == np.float32
    assert samples.rates.shape == (6, 32, 8) and (samples.rates > 0).all()
    assert samples.counts.shape == (6, 32, 8) and np.issubdtype(samples.counts.dtype, np.integer)
    assert samples.lengths.tolist() == [32] * 6 and (samples.counts >= 0).all()


def test_a_seed_reproduces_samples_and_other_lengths_work(trained_run):
    pipeline = Pipeline.load(trained_run)
    a = pipeline.sample(5, seed=7, progress=False)
    b = pipeline.sample(5, seed=7, progress=False)
    c = pipeline.sample(5, seed=8, progress=False)
    np.testing.assert_array_equal(a.counts, b.counts)
    np.testing.assert_array_equal(a.latents, b.latents)
    assert not np.array_equal(a.latents, c.latents)
    long = pipeline.sample(2, length=128, seed=7, progress=False)
    assert long.counts.shape == (2, 128, 8) and np.isfinite(long.rates).all()


def test_the_run_directory_alone_suffices_to_sample(trained_run, tmp_path, capsys):
    moved = tmp_path / "elsewhere"
    shutil.copytree(trained_run, moved)
    out = tmp_path / "samples.npz"
    code = main(["sample", str(moved), "--n", "3", "--sampler", "ddim", "--steps", "4", "--seed", "2", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    written = read_samples(out)
    assert written.counts.shape == (3, 32, 8) and written.sampler == "ddim"
    assert dict(written.sampler_options) == {"steps": 4, "eta": 0.0, "guidance": 1.0}
    assert written.latents.shape == (3, 32, 4) and written.lengths.tolist() == [32] * 3
    assert main(["sample", str(moved), "--n", "3", "--out", str(tmp_path / "x.h5")]) == 2
    assert "expected a file name ending in .npz or .nwb" in capsys.readouterr().err


def test_an_unconditional_model_refuses_a_condition(trained_run):
    with pytest.raises(LdnsError, match="condition"):
        Pipeline.load(trained_run).sample(2, condition=np.zeros((2, 2)), progress=False)


def test_writing_samples_tells_the_plugins(trained_run, tmp_path):
    from ldns_framework import hookimpl
    from ldns_registry import Registry

    written = []

    class Listener:
        @hookimpl
        def ldns_samples_written(self, path, n_trials, sampler):
            written.append((path.name, n_trials, sampler))

    registry = Registry.discover()
    registry.register(Listener(), "listener")
    pipeline = Pipeline.load(trained_run, registry)
    pipeline.write_samples(pipeline.sample(2, sampler="ddim", progress=False), tmp_path / "s.npz")
    assert written == [("s.npz", 2, "ddim")]
