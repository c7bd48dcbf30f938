"""The samples and encodings files: what is written is read back, keys defined in one place."""

from __future__ import annotations

import os
import zipfile

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ldns_framework import LdnsError, SpikeData
from ldns_framework.io.encodings import Encoded, read_encodings, write_encodings
from ldns_framework.io.npz import NpzFile, write_npz
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
    assert back.info() == original.info() and back.provenance == {}
    assert read_samples(write_samples(samples(condition=False), tmp_path / "u.npz")).condition is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.npz", "u.npz"]  # written atomically


def test_the_condition_in_data_units_round_trips_as_covariates_of_the_generated_trials(tmp_path):
    velocity = np.random.default_rng(1).normal(size=(3, 6, 2))  # (n, T, 2)
    angle = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])  # (n, 2) [cos, sin]
    original = attrs.evolve(samples(), covariates={"hand_vel": velocity, "reach_angle": angle})
    back = read_samples(write_samples(original, tmp_path / "s.npz"))
    assert sorted(back.covariates) == ["hand_vel", "reach_angle"]
    np.testing.assert_array_equal(back.covariates["hand_vel"], velocity)
    generated = back.to_spike_data(0.005)
    np.testing.assert_array_equal(generated.covariates["reach_angle"], angle)
    assert read_samples(write_samples(samples(), tmp_path / "u.npz")).covariates == {}


def test_the_run_provenance_is_stored_with_the_samples(tmp_path):
    import attrs

    provenance = {"run": "runs/x", "spec": "seed: 0\n", "bin_width_s": 0.005, "unit_ids": ["7", "9", "11", "12"]}
    back = read_samples(write_samples(attrs.evolve(samples(), provenance=provenance), tmp_path / "s.npz"))
    assert back.provenance == provenance


def test_the_provenance_of_a_run_directory(tmp_path):
    import json

    from ldns_framework.io.provenance import run_provenance

    (tmp_path / "data").mkdir()
    (tmp_path / "spec.yaml").write_text("seed: 0\n")
    (tmp_path / "environment.json").write_text(json.dumps({"packages": {"numpy": "2.0"}, "seed": 0}))
    (tmp_path / "data" / "summary.json").write_text(json.dumps(
        {"bin_width_s": 0.005, "metadata": {"unit_ids": [3, 4], "n_heldin": 1, "trial_ids": [1, 2]}}))
    assert run_provenance(tmp_path) == {"run": str(tmp_path), "spec": "seed: 0\n", "packages": {"numpy": "2.0"},
                                        "bin_width_s": 0.005, "unit_ids": [3, 4], "n_heldin": 1}
    (tmp_path / "data" / "summary.json").unlink()
    with pytest.raises(LdnsError, match=r"summary\.json: file not found"):
        run_provenance(tmp_path)


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
    with pytest.raises(LdnsError, match="junk.npz: expected a NumPy .npz archive, cannot open it"):
        read_samples(tmp_path / "junk.npz")
    np.savez(tmp_path / "evil.npz", counts=np.array([{"x": 1}], dtype=object))
    with pytest.raises(LdnsError, match="evil.npz: counts: expected a plain numeric or text array, got dtype object"):
        read_samples(tmp_path / "evil.npz")
    np.savez(tmp_path / "flat.npz", counts=np.ones(3))
    with pytest.raises(LdnsError, match=r"flat.npz: counts: expected a 3-d array \(trials, time, neurons\)"):
        read_samples(tmp_path / "flat.npz")
    np.savez(tmp_path / "half.npz", counts=np.full((1, 2, 3), 0.5))
    with pytest.raises(LdnsError, match=r"half.npz: counts: expected integer-valued counts"):
        read_samples(tmp_path / "half.npz")
    np.savez(tmp_path / "long.npz", counts=np.ones((1, 2, 3)), lengths=np.array([3]))
    with pytest.raises(LdnsError, match=r"long.npz: lengths: expected every length in \(0, 2\]"):
        read_samples(tmp_path / "long.npz")
    np.savez(tmp_path / "opts.npz", counts=np.ones((1, 2, 3)), sampler_options=np.array("[1, 2]"))
    with pytest.raises(LdnsError, match="opts.npz: sampler_options: expected a JSON object, got '\\[1, 2\\]'"):
        read_samples(tmp_path / "opts.npz")


@pytest.mark.parametrize("name, message", [
    ("s.h5", "--out: expected a file name ending in .npz or .nwb, got 's.h5'"),
    ("e10", "--out: expected a file name ending in .npz or .nwb, got 'e10' \\(for example e10.npz\\)"),
    ("s.NPZ", "--out: expected a file name ending in .npz or .nwb"),  # numpy would append .npz to it
    ("adir", "--out: .*adir is a directory; expected a .npz or .nwb file name"),
    ("afile/s.nwb", "--out: .*afile is a file, not a directory"),
    ("afile/s.npz", "--out: .*afile is a file, not a directory"),
])
def test_bad_output_paths_are_refused_and_nothing_is_written(tmp_path, name, message):
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("user data")
    before = sorted(tmp_path.rglob("*"))
    for writer, obj in ((write_samples, samples()), (write_encodings, encoded())):
        with pytest.raises(LdnsError, match=message):
            writer(obj, tmp_path / name)
    assert sorted(tmp_path.rglob("*")) == before and (tmp_path / "afile").read_text() == "user data"


def test_a_failed_write_leaves_neither_file_nor_temporary(tmp_path, monkeypatch):
    def broken(handle, arrays):
        handle.write(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("ldns_framework.io.samples.write_npz", broken)
    with pytest.raises(OSError, match="No space left"):
        write_samples(samples(), tmp_path / "out" / "s.npz")
    assert list((tmp_path / "out").iterdir()) == []


def test_the_latest_samples_file_of_a_run(tmp_path):
    with pytest.raises(LdnsError, match="ldns sample"):
        latest_samples(tmp_path)
    old = write_samples(samples(), tmp_path / "samples" / "old.npz")
    new = write_samples(samples(), tmp_path / "samples" / "new.npz")
    os.utime(old, (1, 1))
    assert latest_samples(tmp_path) == new
    (tmp_path / "samples" / ".newer.npz.ab12.tmp.npz").write_bytes(b"half-written")  # a sampler still writing
    assert latest_samples(tmp_path) == new


def encoded() -> Encoded:
    rng = np.random.default_rng(1)
    data = SpikeData(rng.poisson(1.0, (3, 6, 4)), lengths=np.array([6, 6, 2]), bin_width_s=0.05,
                     covariates={"angle": rng.normal(size=(3, 2))})
    return Encoded(rng.normal(size=(3, 6, 2)).astype(np.float32), rng.uniform(size=(3, 6, 4)).astype(np.float32),
                   data, np.array([4, 7, 9]))


def test_an_encodings_file_round_trips(tmp_path):
    encoded_ = encoded()
    data = encoded_.data
    back = read_encodings(write_encodings(encoded_, tmp_path / "e.npz"))
    np.testing.assert_array_equal(back.latents, encoded_.latents)
    np.testing.assert_array_equal(back.rates, encoded_.rates)
    np.testing.assert_array_equal(back.trial_index, [4, 7, 9])
    np.testing.assert_array_equal(back.data.counts, data.counts)
    assert back.data.lengths.tolist() == [6, 6, 2] and back.data.bin_width_s == 0.05
    np.testing.assert_array_equal(back.data.covariates["angle"], data.covariates["angle"])


@settings(max_examples=30, deadline=None)
@given(arrays=st.dictionaries(
    st.from_regex(r"[a-z][a-z_]{0,11}", fullmatch=True),
    hnp.arrays(st.sampled_from([np.int32, np.int64, np.uint8, np.bool_, np.float32, np.float64, np.complex64]),
               hnp.array_shapes(min_dims=0, max_dims=3, max_side=5)),
    max_size=4))
def test_written_npz_reads_back_exactly_with_floats_stored_and_the_rest_deflated(tmp_path_factory, arrays) -> None:
    path = tmp_path_factory.mktemp("npz") / "a.npz"
    with open(path, "wb") as handle:
        write_npz(handle, arrays)
    with np.load(path) as loaded, NpzFile(path) as archive:
        assert sorted(loaded.files) == sorted(arrays)
        for key, value in arrays.items():
            np.testing.assert_array_equal(loaded[key], value)
            assert loaded[key].dtype == value.dtype and archive.read(key).dtype == value.dtype
    with zipfile.ZipFile(path) as archive:
        for key, value in arrays.items():
            stored = archive.getinfo(f"{key}.npy").compress_type == zipfile.ZIP_STORED
            assert stored == (value.dtype.kind in "fc")


def test_generated_counts_are_deflated_and_rates_stored(tmp_path) -> None:
    counts = np.zeros((4, 50, 3), dtype=np.int64)
    counts[:, ::7] = 1
    samples = Samples(counts=counts, rates=np.full(counts.shape, 0.1, np.float32), lengths=np.full(4, 50))
    path = write_samples(samples, tmp_path / "s.npz")
    with zipfile.ZipFile(path) as archive:
        member = archive.getinfo("counts.npy")
        assert member.compress_type == zipfile.ZIP_DEFLATED and member.compress_size < member.file_size / 10
        assert archive.getinfo("rates.npy").compress_type == zipfile.ZIP_STORED
    np.testing.assert_array_equal(read_samples(path).counts, counts)
