"""NWB in and out through the CLI at tiny sizes: a synthetic MC_Maze-structured session trained on and
sampled to an NWB file that the ``nwb`` source reads back bit for bit; a continuous recording cut
into windows trained on; samples evaluated from the NWB file."""

from __future__ import annotations

import warnings
from datetime import datetime, timezone

import numpy as np
import pytest
import yaml

pynwb = pytest.importorskip("pynwb")

from ldns_framework.cli import main
from ldns_framework.io.samples import read_samples

pytestmark = pytest.mark.slow

MODEL = {
    "encoder": {"type": "s4-autoencoder", "hidden": 16, "latent_dim": 4, "blocks": 1, "state_size": 8},
    "generator": {"type": "latent-diffusion", "hidden": 16, "blocks": 1, "state_size": 8, "train_steps": 50},
    "train": {"encoder": {"epochs": 1, "batch_size": 8}, "generator": {"epochs": 1, "batch_size": 8}},
    "sample": {"steps": 3, "batch_size": 8},
}


def train(tmp_path, data: dict, capsys) -> str:
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"seed": 0, "data": data, **MODEL}))
    run = tmp_path / "run"
    assert main(["train", str(spec), "--out", str(run), "--no-progress"]) == 0, capsys.readouterr().err
    return str(run)


def test_samples_of_a_synthetic_mc_maze_run_round_trip_through_nwb(tmp_path, capsys):
    folder = tmp_path / "mc_maze-mini"
    assert main(["make-synthetic-nwb", str(folder), "--preset", "mc_maze-mini", "--seed", "0"]) == 0
    run = train(tmp_path, {"type": "nwb", "path": str(folder), "behavior": []}, capsys)
    for out in ("s.npz", "s.nwb"):
        assert main(["sample", run, "--n", "5", "--seed", "3", "--out", str(tmp_path / out), "--no-progress"]) == 0
    reference = read_samples(tmp_path / "s.npz")
    assert main(["sample", run, "--n", "5", "--out", str(tmp_path / "s.nwb"), "--no-progress"]) == 2
    assert "s.nwb already exists" in capsys.readouterr().err

    # the nwb source, given only the path, cuts the spike times into the sampled counts
    back = tmp_path / "back.yaml"
    back.write_text(yaml.safe_dump({"data": {"type": "nwb", "path": str(tmp_path / "s.nwb"), "cut": "stored"}}))
    capsys.readouterr()
    assert main(["data", str(back), "--json"]) == 0
    import json

    summary = json.loads(capsys.readouterr().out)
    assert summary["trials"] == 5 and summary["bins"] == 140 and summary["neurons"] == 20
    from ldns_plugins.nwb.source import NwbConfig, NwbSource

    data = NwbSource(NwbConfig(path=str(tmp_path / "s.nwb"), cut="stored")).load()
    np.testing.assert_array_equal(data.counts, reference.counts)
    training = NwbSource(NwbConfig(path=str(folder), behavior=())).load()
    assert data.neuron_ids == training.neuron_ids and data.metadata["n_heldin"] == training.metadata["n_heldin"]
    np.testing.assert_array_equal(read_samples(tmp_path / "s.nwb").counts, reference.counts)

    # evaluation reads the NWB samples as it reads .npz ones
    assert main(["evaluate", run, "--samples", str(tmp_path / "s.nwb"), "--metric", "mean-rate", "--folds", "2",
                 "--out", str(tmp_path / "m.json"), "--no-progress"]) == 0, capsys.readouterr().err


def continuous_recording(path, rng) -> str:
    """20 s of spikes from 5 units, epochs wake [0, 6) s, sleep, wake [12, 20) s: 29 + 39 windows of 400 ms every 200."""
    nwb = pynwb.NWBFile(session_description="continuous", identifier="c", session_start_time=datetime.now(timezone.utc))
    for uid in range(5):
        nwb.add_unit(id=uid, spike_times=np.sort(np.round(rng.uniform(0, 20, 400), 6)))
    for start, stop, tag in ((0.0, 6.0, "wake"), (6.0, 12.0, "sleep"), (12.0, 20.0, "wake")):
        nwb.add_epoch(start_time=start, stop_time=stop, tags=[tag])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pynwb.NWBHDF5IO(str(path), "w") as io:
            io.write(nwb)
    return str(path)


def test_a_continuous_recording_cut_into_windows_trains_and_samples_to_nwb(tmp_path, capsys):
    path = continuous_recording(tmp_path / "c.nwb", np.random.default_rng(0))
    data = {"type": "nwb", "path": path, "cut": "windows", "window_ms": 400, "stride_ms": 200, "bin_ms": 20,
            "intervals": "epochs", "tags": ["wake"], "behavior": [], "window_split": [0.6, 0.2, 0.2]}
    spec = tmp_path / "data.yaml"
    spec.write_text(yaml.safe_dump({"data": data}))
    assert main(["data", str(spec)]) == 0
    listed = capsys.readouterr().out
    assert "windows      68 windows of 400 ms (20 bins of 20 ms), stride 200 ms, over intervals/epochs tagged " \
           "['wake']" in listed
    run = train(tmp_path, data, capsys)
    assert main(["sample", run, "--n", "3", "--seed", "1", "--out", str(tmp_path / "w.nwb"), "--no-progress"]) == 0
    from ldns_plugins.nwb.source import NwbConfig, NwbSource

    samples = read_samples(tmp_path / "w.nwb")
    assert samples.counts.shape == (3, 20, 5)
    np.testing.assert_array_equal(NwbSource(NwbConfig(path=str(tmp_path / "w.nwb"), cut="stored")).load().counts,
                                  samples.counts)
    assert main(["encode", run, "--split", "test", "--out", str(tmp_path / "e.nwb")]) == 0
    from ldns_framework.io.encodings import read_encodings

    encoded = read_encodings(tmp_path / "e.nwb")
    assert encoded.latents.shape[1:] == (20, 4) and encoded.data.counts.shape[1:] == (20, 5)
