"""The pipeline end to end at tiny sizes: train, stop, resume, encode, lifecycle hooks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from ldns_framework import LdnsError, hookimpl
from ldns_framework.cli import main
from ldns_framework.pipeline import Pipeline
from ldns_registry import Registry

TINY = {
    "seed": 1,
    "data": {"type": "lorenz", "n_trials": 24, "n_neurons": 8, "length": 32, "seed": 3},
    "encoder": {"type": "s4-autoencoder", "hidden": 16, "latent_dim": 4, "blocks": 1, "state_size": 8,
                "calibrate_rates": True},
    "generator": None,
    "train": {"encoder": {"epochs": 4, "batch_size": 8, "val_every": 2, "checkpoint_every": 2}},
}


class Recorder:
    """A lifecycle plugin: records every hook call."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    @hookimpl
    def ldns_stage_start(self, stage, run_dir, spec):
        self.calls.append(("start", stage))

    @hookimpl
    def ldns_stage_end(self, stage, run_dir, summary):
        self.calls.append(("end", stage))

    @hookimpl
    def ldns_epoch_end(self, stage, epoch, record):
        self.calls.append(("epoch", stage, epoch, "train_loss" in record))


@pytest.fixture
def tiny_spec(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


def test_fit_writes_a_complete_run_and_calls_the_lifecycle_hooks(tmp_path):
    registry = Registry.discover()
    recorder = Recorder()
    registry.register(recorder, "recorder")
    run = tmp_path / "run"
    pipeline = Pipeline.from_spec(TINY, registry=registry).fit(run_dir=run, progress=False)
    assert recorder.calls[:2] == [("start", "data"), ("end", "data")]
    assert [c for c in recorder.calls if c[0] == "epoch"] == [("epoch", "encoder", e, True) for e in range(1, 5)]
    assert recorder.calls[-2:] == [("start", "observation"), ("end", "observation")]
    for name in ("spec.yaml", "environment.json", "data/summary.json", "encoder/weights.safetensors",
                 "encoder/state.json", "encoder/log.jsonl", "observation/state.json"):
        assert (run / name).is_file(), name
    environment = json.loads((run / "environment.json").read_text())
    assert environment["seed"] == 1 and "torch" in environment["packages"]
    assert environment["plugins"]["encoder"]["distribution"] == "ldns-framework"
    assert not list(run.rglob("*.tmp*")), "temporary files left behind"
    loglines = (run / "encoder" / "log.jsonl").read_text().splitlines()
    assert len(loglines) == 4 and "val_loss" in json.loads(loglines[1])

    calibration = json.loads((run / "encoder" / "state.json").read_text())["finalized"]
    assert calibration["trials"] == len(pipeline.load_data().splits["train"])
    train = pipeline.load_data().split("train")  # calibrated: each neuron's mean rate is its mean count
    np.testing.assert_allclose(pipeline.encode(train, progress=False).rates.mean((0, 1)), train.counts.mean((0, 1)),
                               rtol=1e-4)

    encoded = pipeline.encode(pipeline.load_data().split("test"), progress=False)
    assert encoded.latents.shape == (5, 32, 4) and encoded.rates.shape == (5, 32, 8)
    assert (encoded.rates > 0).all()
    ll = pipeline.log_prob(pipeline.load_data().split("test"))
    assert ll.shape == (5,) and np.isfinite(ll).all() and (ll <= 0).all()
    copy = pipeline.save(tmp_path / "copy")
    np.testing.assert_allclose(Pipeline.load(copy, registry).log_prob(pipeline.load_data().split("test")), ll, rtol=1e-5)


def test_existing_run_is_not_overwritten(tmp_path):
    run = tmp_path / "run"
    Pipeline.from_spec(TINY).fit(run_dir=run, until="data", progress=False)
    with pytest.raises(LdnsError, match="already exists; pass --resume"):
        Pipeline.from_spec(TINY).fit(run_dir=run, progress=False)
    changed = {**TINY, "seed": 2}
    with pytest.raises(LdnsError, match="spec differs from the run's spec.yaml at seed"):
        Pipeline.from_spec(changed).fit(run_dir=run, resume=True, progress=False)


def test_cli_train_until_resume_and_encode(tmp_path, tiny_spec, capsys):
    run = tmp_path / "run"
    assert main(["train", str(tiny_spec), "--out", str(run), "--until", "encoder", "--no-progress"]) == 0
    assert (run / "encoder" / "weights.safetensors").is_file()
    assert not (run / "observation").exists()
    assert main(["train", "--resume", "--out", str(run), "--no-progress"]) == 0
    assert json.loads((run / "observation" / "state.json").read_text())["complete"]

    out = tmp_path / "latents.npz"
    assert main(["encode", str(run), "--split", "test", "--out", str(out)]) == 0
    with np.load(out) as f:
        assert f["latents"].shape == (5, 32, 4) and f["rates"].shape == (5, 32, 8)
        assert f["counts"].shape == (5, 32, 8) and f["lengths"].tolist() == [32] * 5
        assert f["covariate/latents_true"].shape == (5, 32, 3)
        assert f["covariate/rates_true"].shape == (5, 32, 8)
        test_index = f["trial_index"]
    data = Pipeline.load(run).load_data()
    np.testing.assert_array_equal(test_index, data.splits["test"])

    other = tmp_path / "other.npz"
    np.savez(other, counts=data.counts[:3])
    assert main(["encode", str(run), "--data", str(other), "--out", str(tmp_path / "o.npz")]) == 0
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, counts=data.counts[:3, :, :5])
    capsys.readouterr()
    assert main(["encode", str(run), "--data", str(wrong), "--out", str(tmp_path / "w.npz")]) == 2
    assert "counts: expected 8 neurons (as in training), got 5" in capsys.readouterr().err


def test_encode_of_a_run_without_weights_is_a_clear_error(tmp_path, tiny_spec, capsys):
    run = tmp_path / "run"
    assert main(["train", str(tiny_spec), "--out", str(run), "--until", "data", "--no-progress"]) == 0
    assert main(["encode", str(run), "--out", str(tmp_path / "x.npz")]) == 2
    assert "encoder stage has not finished" in capsys.readouterr().err
