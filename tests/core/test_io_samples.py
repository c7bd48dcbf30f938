"""The samples and encodings files: what is written is read back, keys defined in one place."""

from __future__ import annotations

import os

import numpy as np
import pytest

from ldns_framework import LdnsError, SpikeData
from ldns_framework.io.encodings import Encoded, read_encodings, write_encodings
from ldns_framework.io.samples import Samples, latest_samples, read_samples, write_samples


def samples(condition: bool = True) -> Samples:
    rng = np.random.default_rng(0)
    return Samples(counts=rng.poisson(1.0, (3, 6, 4)).astype(np.int32), lengths=np.array([6, 4, 5]),
                   latents=rng.normal(size=(3, 6, 2)).astype(np.float32),
                   rates=rng.uniform(0.1, 2, (3, 6, 4)).astype(np.float32),
                   condition=rng.normal(size=(3, 2)) if condition else None, sampler="ddim",
                   sampler_options={"steps": 7, "eta": 0.5}, sampler_label="ddim (steps=7, eta=0.5)", seed=11,
                   observation="poisson")


def test_a_samples_file_round_trips(tmp_path):
    original = samples()
    path = write_samples(original, tmp_path / "s.npz")
    back = read_samples(path)
    for field in ("counts", "lengths", "latents", "rates", "condition"):
        np.testing.assert_array_equal(getattr(back, field), getattr(original, field))
    assert (back.sampler, dict(back.sampler_options), back.sampler_label, back.seed, back.observation) == (
        "ddim", {"steps": 7, "eta": 0.5}, "ddim (steps=7, eta=0.5)", 11, "poisson")
    assert back.info() == original.info()
    assert read_samples(write_samples(samples(condition=False), tmp_path / "u.npz")).condition is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.npz", "u.npz"]  # written atomically


def test_samples_from_elsewhere_need_only_counts(tmp_path):
    np.savez(tmp_path / "x.npz", counts=np.ones((2, 5, 3), np.int64))
    back = read_samples(tmp_path / "x.npz")
    assert back.lengths.tolist() == [5, 5] and back.latents is None and back.info() == {"sampler_options": {}}
    spikes = back.to_spike_data(0.02, {"isi_unit": "bins"})
    assert spikes.metadata["generated"] and spikes.metadata["isi_unit"] == "bins" and spikes.bin_width_s == 0.02


def test_bad_files_are_one_line_errors(tmp_path):
    np.savez(tmp_path / "nocounts.npz", rates=np.ones(3))
    with pytest.raises(LdnsError, match="missing array 'counts'; found: rates"):
        read_samples(tmp_path / "nocounts.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(LdnsError, match="cannot read samples"):
        read_samples(tmp_path / "junk.npz")
    with pytest.raises(LdnsError, match="expected a .npz file, got s.nwb"):
        write_samples(samples(), tmp_path / "s.nwb")


def test_the_latest_samples_file_of_a_run(tmp_path):
    with pytest.raises(LdnsError, match="ldns sample"):
        latest_samples(tmp_path)
    old = write_samples(samples(), tmp_path / "samples" / "old.npz")
    new = write_samples(samples(), tmp_path / "samples" / "new.npz")
    os.utime(old, (1, 1))
    assert latest_samples(tmp_path) == new


def test_an_encodings_file_round_trips(tmp_path):
    rng = np.random.default_rng(1)
    data = SpikeData(rng.poisson(1.0, (3, 6, 4)), lengths=np.array([6, 6, 2]), bin_width_s=0.05,
                     covariates={"angle": rng.normal(size=(3, 2))})
    encoded = Encoded(rng.normal(size=(3, 6, 2)).astype(np.float32), rng.uniform(size=(3, 6, 4)).astype(np.float32),
                      data, np.array([4, 7, 9]))
    back = read_encodings(write_encodings(encoded, tmp_path / "e.npz"))
    np.testing.assert_array_equal(back.latents, encoded.latents)
    np.testing.assert_array_equal(back.rates, encoded.rates)
    np.testing.assert_array_equal(back.trial_index, [4, 7, 9])
    np.testing.assert_array_equal(back.data.counts, data.counts)
    assert back.data.lengths.tolist() == [6, 6, 2] and back.data.bin_width_s == 0.05
    np.testing.assert_array_equal(back.data.covariates["angle"], data.covariates["angle"])
