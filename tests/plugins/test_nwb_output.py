"""Samples and encodings written as NWB: exact round trips (through the file's counts and through the
``nwb`` source's trial cut of the spike times), validity, metadata, refusals, and what the source
lists of its selection."""

from __future__ import annotations

import json

import numpy as np
import pytest

pynwb = pytest.importorskip("pynwb")

from ldns_plugins.nwb.source import NwbConfig, NwbSource

from ldns_framework import DataError, LdnsError, SpikeData
from ldns_framework.io.encodings import Encoded, read_encodings, write_encodings
from ldns_framework.io.samples import Samples, check_output, read_samples, write_samples
from ldns_framework.nwb.units import spikes_from_counts

MC_MAZE = {"bin_width_s": 0.005, "unit_ids": [str(1000 + 10 * i) for i in range(9)], "n_heldin": 6,
           "align_event": "move_onset_time", "align_range_ms": [-250, 450], "spec": "seed: 0\ndata: {type: nwb}\n",
           "packages": {"numpy": "2.0"}, "run": "runs/x"}


def samples(n=7, length=140, units=9, condition="vector", seed=0, provenance=None):
    """Counts up to 30 per bin, two short trials (zero past their length), a condition."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(0.8, (n, length, units)).astype(np.int32)  # (trials, time, units)
    counts[0, 0, 0], counts[2, length - 1, units - 1] = 30, 17
    lengths = np.full(n, length, dtype=np.int64)
    lengths[[1, n - 1]] = [length // 2, 1]
    counts[np.arange(length)[None, :] >= lengths[:, None]] = 0
    cond = {"vector": rng.normal(size=(n, 3)).astype(np.float32),
            "sequence": rng.normal(size=(n, length, 2)), None: None}[condition]
    return Samples(counts, lengths, condition=cond, sampler="ddim", sampler_options={"steps": 5}, seed=seed,
                   observation="poisson", provenance=dict(MC_MAZE if provenance is None else provenance))


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    s = samples()
    return s, write_samples(s, tmp_path_factory.mktemp("nwb") / "samples.nwb")


def test_spikes_are_spread_evenly_inside_each_bin_in_whole_microseconds():
    counts = np.zeros((2, 3, 2), np.int32)
    counts[0, 1, 0], counts[1, 0, 1], counts[1, 2, 0] = 3, 1, 2
    times, ends = spikes_from_counts(counts, np.array([0, 800_000]), 5000)
    assert ends.tolist() == [5, 6]  # unit 0: 3 + 2 spikes, unit 1: 1
    np.testing.assert_array_equal(np.round(times * 1e6).astype(int),
                                  [5000 + 1250, 5000 + 2500, 5000 + 3750, 800_000 + 10_000 + 1666,
                                   800_000 + 10_000 + 3333, 800_000 + 2500])


def test_samples_read_back_exactly_from_the_file(written):
    s, path = written
    back = read_samples(path)
    np.testing.assert_array_equal(back.counts, s.counts)
    np.testing.assert_array_equal(back.lengths, s.lengths)
    np.testing.assert_array_equal(back.condition, s.condition)
    assert back.condition.dtype == np.float32 and back.counts.dtype == np.int32
    assert (back.sampler, back.sampler_options, back.seed, back.observation) == ("ddim", {"steps": 5}, 0, "poisson")
    assert back.provenance["spec"] == MC_MAZE["spec"] and back.provenance["packages"] == {"numpy": "2.0"}


def test_the_nwb_source_cuts_the_spike_times_into_the_same_counts(written):
    s, path = written
    stored = NwbSource(NwbConfig(path=str(path), cut="stored")).load()
    np.testing.assert_array_equal(stored.counts, s.counts)
    np.testing.assert_array_equal(stored.lengths, s.lengths)
    assert stored.neuron_ids == tuple(MC_MAZE["unit_ids"]) and stored.metadata["n_heldin"] == 6
    # the same with the options written out: the training data's event and window are reused
    explicit = NwbSource(NwbConfig(path=str(path), behavior=(), allow_silent_units=True, lengths_from_stop=True,
                                   splits="file", select=("train",))).load()
    np.testing.assert_array_equal(explicit.counts, s.counts)


def test_fixed_length_samples_of_an_mc_maze_run_read_back_with_the_default_cut(tmp_path):
    s = samples(condition=None)
    s = Samples(s.counts, np.full(s.n_trials, 140), provenance=MC_MAZE)
    path = write_samples(s, tmp_path / "fixed.nwb")
    data = NwbSource(NwbConfig(path=str(path), behavior=(), allow_silent_units=True)).load()
    np.testing.assert_array_equal(data.counts, s.counts)  # move_onset_time, [-250, 450) ms, 5 ms: the defaults


def test_a_sequence_condition_and_other_sizes_round_trip(tmp_path):
    s = samples(n=4, length=50, units=3, condition="sequence", provenance={"bin_width_s": 0.02})
    path = write_samples(s, tmp_path / "seq.nwb")
    back = read_samples(path)
    np.testing.assert_array_equal(back.condition, s.condition)
    data = NwbSource(NwbConfig(path=str(path), cut="stored")).load()
    np.testing.assert_array_equal(data.counts, s.counts)
    assert data.neuron_ids == ("0", "1", "2") and data.metadata["n_heldout"] == 0  # no ids known: 0..N-1
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        assert nwb.trials["onset_time"].data[:].tolist() == nwb.trials["start_time"].data[:].tolist()
        assert nwb.processing["ldns"]["condition"].data.shape == (4 * 50, 2)


def test_the_file_validates_and_has_no_critical_inspector_finding(written):
    from nwbinspector import Importance, inspect_nwbfile

    _, path = written
    assert pynwb.validate(path=str(path)) == []
    serious = [m for m in inspect_nwbfile(nwbfile_path=str(path))
               if m.importance in (Importance.CRITICAL, Importance.PYNWB_VALIDATION, Importance.ERROR)]
    assert serious == []


def test_the_file_is_marked_generated_and_carries_the_spec_and_versions(written):
    _, path = written
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        assert nwb.session_description.startswith("GENERATED by ldns-framework")
        assert {"synthetic", "generated"} <= set(nwb.keywords[:])
        assert nwb.was_generated_by[0][0] == "ldns-framework"
        assert nwb.source_script == MC_MAZE["spec"]
        record = json.loads(nwb.scratch["ldns"].data)
        heldout = nwb.units["heldout"].data[:].tolist()
        assert nwb.units.id.data[:].tolist() == [int(u) for u in MC_MAZE["unit_ids"]]
    assert record["what"] == "samples" and record["sampling"]["sampler"] == "ddim"
    assert record["provenance"]["packages"] == {"numpy": "2.0"} and "spec" not in record["provenance"]
    assert record["read_back"]["align_event"] == "move_onset_time"
    assert heldout == [False] * 6 + [True] * 3


def test_existing_files_bad_suffixes_and_fractional_ms_bins_are_refused(written, tmp_path):
    s, path = written
    with pytest.raises(LdnsError, match=r"--out: .*samples\.nwb already exists"):
        write_samples(s, path)
    with pytest.raises(LdnsError, match=r"--out: expected a file name ending in \.npz or \.nwb"):
        write_samples(s, tmp_path / "x.h5")
    odd = Samples(s.counts, s.lengths, provenance={"bin_width_s": 0.0025})
    with pytest.raises(LdnsError, match=r"bin width is 2\.5 ms; NWB output needs a whole number of milliseconds"):
        write_samples(odd, tmp_path / "odd.nwb")
    with pytest.raises(LdnsError, match=r"--out: the bin width is 2\.5 ms"):
        check_output(tmp_path / "odd.nwb", odd.provenance)
    with pytest.raises(LdnsError, match=r"bin width of these trials is unknown"):
        write_samples(Samples(s.counts, s.lengths), tmp_path / "bare.nwb")
    assert not (tmp_path / "odd.nwb").exists() and not list(tmp_path.glob(".*"))  # no temporary left


def test_files_not_written_by_ldns_are_refused_with_the_file_named(tmp_path):
    from datetime import datetime, timezone

    path = tmp_path / "plain.nwb"
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(pynwb.NWBFile(session_description="x", identifier="x", session_start_time=datetime.now(timezone.utc)))
    with pytest.raises(DataError, match=r"plain\.nwb: not an ldns samples file"):
        read_samples(path)
    with pytest.raises(DataError, match=r"plain\.nwb: scratch/ldns: no stored trial cut"):
        NwbSource(NwbConfig(path=str(path), cut="stored")).load()


def test_encodings_round_trip_with_latents_rates_and_covariates(tmp_path):
    rng = np.random.default_rng(1)
    counts = rng.poisson(1.0, (5, 20, 4)).astype(np.int32)
    data = SpikeData(counts, covariates={"vel": rng.normal(size=(5, 20, 2)), "angle": rng.normal(size=(5, 1))},
                     bin_width_s=0.01, neuron_ids=("a", "b", "c", "d"), metadata={"n_heldin": 3})
    encoded = Encoded(rng.normal(size=(5, 20, 3)).astype(np.float32), rng.random((5, 20, 4)).astype(np.float32),
                      data, np.arange(5) + 7, provenance={"spec": "seed: 1\n"})
    back = read_encodings(write_encodings(encoded, tmp_path / "enc.nwb"))
    for name in ("latents", "rates", "trial_index"):
        np.testing.assert_array_equal(getattr(back, name), getattr(encoded, name))
    np.testing.assert_array_equal(back.data.counts, counts)
    for name, value in data.covariates.items():
        np.testing.assert_array_equal(back.data.covariates[name], value)
    assert back.data.neuron_ids == ("a", "b", "c", "d") and back.data.bin_width_s == 0.01
    assert back.provenance["spec"] == "seed: 1\n"
    assert pynwb.validate(path=str(tmp_path / "enc.nwb")) == []
    np.testing.assert_array_equal(NwbSource(NwbConfig(path=str(tmp_path / "enc.nwb"), cut="stored")).load().counts,
                                  counts)


def test_the_source_lists_units_splits_and_windows(written, tmp_path):
    _, path = written
    listing = NwbSource(NwbConfig(path=str(path), cut="stored")).load().metadata["listing"]
    assert listing["units"].startswith("9 (6 held-in, 3 held-out by column 'heldout'); every unit; ids 1000, 1010")
    assert listing["splits"] == "train 7 (one split per value of trials.split, selecting ['train'])"
    assert listing["windows"] == ("7 trials aligned on trials.move_onset_time, window [-250, 450) ms (140 bins of "
                                  "5 ms), each ending at its stop_time")
    reference = NwbSource(NwbConfig(path=str(path), behavior=(), allow_silent_units=True, lengths_from_stop=True))
    assert "reference: train = split 'train' + first half of 'val'" in reference.load().metadata["listing"]["splits"]


def test_ldns_data_prints_the_listing(written, tmp_path, capsys):
    import yaml

    from ldns_framework.cli import main

    _, path = written
    spec = tmp_path / "back.yaml"
    spec.write_text(yaml.safe_dump({"data": {"type": "nwb", "path": str(path), "cut": "stored"}}))
    assert main(["data", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "trials       7  (train 7)" in out
    assert "units        9 (6 held-in, 3 held-out" in out and "windows      7 trials aligned" in out


def test_lengths_from_stop_cuts_each_trial_at_its_stop_and_refuses_empty_ones(tmp_path):
    from datetime import datetime, timezone

    def recording(path, stops):
        nwb = pynwb.NWBFile(session_description="x", identifier=str(path), session_start_time=datetime.now(timezone.utc))
        nwb.add_trial_column(name="move_onset_time", description="movement onset")
        for i, stop in enumerate(stops):
            nwb.add_trial(start_time=i * 2.0, stop_time=i * 2.0 + stop, move_onset_time=i * 2.0 + 0.3)
        nwb.add_unit(id=1, spike_times=np.arange(0.0, 2.0 * len(stops), 0.0101))
        with pynwb.NWBHDF5IO(str(path), "w") as io:
            io.write(nwb)
        return str(path)

    options = dict(split_column=None, splits="file", behavior=(), lengths_from_stop=True)
    full = NwbSource(NwbConfig(path=recording(tmp_path / "a.nwb", [1.5, 0.4]), **options)).load()
    assert full.lengths.tolist() == [140, 70]  # the second stops 350 ms into its [50, 750) ms window
    assert full.counts[1, 70:].sum() == 0 and full.counts[1, :70].sum() > 0
    with pytest.raises(DataError, match=r"b\.nwb: trials\.stop_time: trial ids \[1\] stop before the first 5 ms bin"):
        NwbSource(NwbConfig(path=recording(tmp_path / "b.nwb", [1.5, 0.052]), **options)).load()
