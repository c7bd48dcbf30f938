"""Variable-length generation end to end at tiny sizes: the shipped speech-synthetic spec trained by
``ldns train``, sampled at one length and at per-trial lengths (CLI and Python), trimmed exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ldns_framework.cli import main
from ldns_framework.io.samples import read_samples
from ldns_framework.pipeline import Pipeline

SPEC = Path(__file__).resolve().parents[2] / "docs" / "specs" / "speech-synthetic.yaml"
CHANNELS, LONGEST = 8, 48
TINY = {
    "data.n_trials": 24, "data.n_channels": CHANNELS, "data.min_length": 10, "data.max_length": LONGEST,
    "encoder.hidden": 16, "encoder.latent_dim": 4, "encoder.blocks": 1, "encoder.state_size": 8,
    "generator.hidden": 16, "generator.blocks": 1, "generator.state_size": 8, "generator.train_steps": 50,
    "train.encoder.epochs": 2, "train.encoder.batch_size": 8, "train.generator.epochs": 3,
    "train.generator.batch_size": 8, "sample.steps": 4, "sample.batch_size": 4,
}
PER_TRIAL = [10, LONGEST, 25, 1, 33, 17]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("speech") / "run"
    sets = [arg for key, value in TINY.items() for arg in ("--set", f"{key}={value}")]
    assert main(["train", str(SPEC), "--out", str(out), "--no-progress", *sets]) == 0
    return out


def assert_trimmed(samples, lengths: list[int]) -> None:
    """Exactly the requested lengths: arrays as long as the longest, zero past each trial's length."""
    assert samples.lengths.tolist() == lengths
    assert samples.counts.shape == (len(lengths), max(lengths), CHANNELS)
    valid = np.arange(max(lengths))[None, :] < np.asarray(lengths)[:, None]  # (n, T)
    for name in ("counts", "rates", "latents"):
        assert not getattr(samples, name)[~valid].any(), f"{name} past a trial's length"
    assert (samples.rates[valid] > 0).all() and np.isfinite(samples.latents).all()


def test_the_run_is_variable_length_with_a_causal_encoder_and_centred_latents(run: Path) -> None:
    summary = json.loads((run / "data" / "summary.json").read_text())
    assert summary["bins"] == LONGEST and summary["bin_width_s"] == 0.02
    assert 10 <= summary["lengths"]["min"] < summary["lengths"]["max"] <= LONGEST
    model = Pipeline.load(run).model
    assert model.encoder.is_causal
    assert model.generator.config.centre and int(model.generator.window) == LONGEST


def test_ldns_sample_at_one_length(run: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "t40.npz"
    code = main(["sample", str(run), "--n", "8", "--length", "40", "--seed", "1", "--out", str(out), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert_trimmed(read_samples(out), [40] * 8)


def test_per_trial_lengths_through_the_python_api(run: Path, tmp_path: Path) -> None:
    pipeline = Pipeline.load(run)
    samples = pipeline.sample(len(PER_TRIAL), lengths=np.array(PER_TRIAL), seed=2, progress=False)
    assert_trimmed(samples, PER_TRIAL)
    back = read_samples(pipeline.write_samples(samples, tmp_path / "mixed.npz"))
    assert_trimmed(back, PER_TRIAL)
    # the same seed reproduces the draw; a trial's latents do not depend on the other trials' lengths
    again = pipeline.sample(len(PER_TRIAL), lengths=np.array(PER_TRIAL), seed=2, progress=False)
    np.testing.assert_array_equal(again.counts, samples.counts)
    other = pipeline.sample(len(PER_TRIAL), lengths=np.array([10, LONGEST, 40, 1, 33, 17]), seed=2, progress=False)
    np.testing.assert_allclose(other.latents[:2], samples.latents[:2], rtol=1e-5, atol=1e-5)


def test_ldns_sample_with_a_lengths_file(run: Path, tmp_path: Path, capsys) -> None:
    lengths_file, out = tmp_path / "lengths.npy", tmp_path / "from_file.npz"
    np.save(lengths_file, np.array(PER_TRIAL))
    code = main(["sample", str(run), "--n", str(len(PER_TRIAL)), "--lengths", str(lengths_file), "--out", str(out),
                 "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert_trimmed(read_samples(out), PER_TRIAL)
    assert main(["sample", str(run), "--n", "2", "--lengths", str(lengths_file), "--out", str(out)]) == 2
    assert "--lengths" in capsys.readouterr().err
