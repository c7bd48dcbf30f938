"""Lazy NWB loading: windows binned from the spike times per batch equal the eager counts, train
to the same weights, and keep memory bounded by a batch (a child process, counts 4x the cap)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from ldns_plugins.nwb.source import NwbConfig, NwbSource

from ldns_framework import DataError
from ldns_framework.cli import main
from ldns_framework.io.lazy import ConcatenatedRows, LazyCounts
from ldns_framework.pipeline import Pipeline


@pytest.fixture(scope="module")
def train_file(tmp_path_factory):
    synthetic = pytest.importorskip("ldns_framework.nwb.synthetic")
    files = synthetic.write_synthetic_mc_maze(tmp_path_factory.mktemp("synth"), "mc_maze-mini", 0)
    return next(f for f in files if "desc-train" in f.name)


def _both(**options) -> tuple:
    """(eager, lazy) loads of the same options."""
    return NwbSource(NwbConfig(lazy=False, **options)).load(), NwbSource(NwbConfig(lazy=True, **options)).load()


def _assert_same(eager, lazy) -> None:
    assert not eager.lazy and lazy.lazy and isinstance(lazy.counts, LazyCounts)
    assert lazy.counts.shape == eager.counts.shape and lazy.counts.dtype == eager.counts.dtype == np.int32
    np.testing.assert_array_equal(np.asarray(lazy.counts), eager.counts)
    np.testing.assert_array_equal(lazy.lengths, eager.lengths)
    assert lazy.splits.keys() == eager.splits.keys()
    for name, index in eager.splits.items():
        np.testing.assert_array_equal(lazy.splits[name], index)
        np.testing.assert_array_equal(lazy.split(name).counts[:], eager.split(name).counts)
    for name, values in eager.covariates.items():  # behaviour stays in memory, the same arrays
        np.testing.assert_array_equal(lazy.covariates[name], values)
    assert lazy.summary() == eager.summary() and lazy.metadata == eager.metadata


def test_lazy_trials_equal_the_eager_counts_with_behaviour(train_file):
    eager, lazy = _both(path=str(train_file))
    assert eager.counts.shape == (40, 140, 20) and "hand_vel" in lazy.covariates
    _assert_same(eager, lazy)
    batch = np.array([39, 0, 17, 17, 5])  # any order, repeats: as the trainer indexes
    np.testing.assert_array_equal(lazy.counts[batch], eager.counts[batch])


def test_lazy_overlapping_windows_equal_the_eager_counts(train_file):
    eager, lazy = _both(path=str(train_file), cut="windows", behavior=(), window_ms=500, stride_ms=230, bin_ms=10)
    assert eager.counts.shape[1:] == (50, 20) and eager.counts.shape[0] > 100
    _assert_same(eager, lazy)


def _write_session(path, seed: int) -> None:
    """8 selected trials of variable length (stop_time) over 10 s of spikes from 4 units, spikes between trials too."""
    import warnings
    from datetime import datetime, timezone

    import pynwb

    rng = np.random.default_rng(seed)
    nwb = pynwb.NWBFile(session_description="lazy", identifier=f"lazy-{seed}",
                        session_start_time=datetime(2020, 1, 1, tzinfo=timezone.utc))
    for uid in (4, 2, 9, 6):
        nwb.add_unit(id=uid, spike_times=np.sort(np.round(rng.uniform(0, 10, 400), 6)))
    nwb.add_trial_column(name="move_onset_time", description="alignment event")
    nwb.add_trial_column(name="split", description="split")
    for i in range(8):
        start = 0.1 + 1.2 * i
        nwb.add_trial(start_time=start, stop_time=start + rng.uniform(0.3, 0.9), move_onset_time=start + 0.3,
                      split="val" if i % 4 == 3 else "train")
    nwb.add_trial(start_time=9.7, stop_time=9.99, move_onset_time=9.8, split="test")  # unselected: the end
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pynwb.NWBHDF5IO(str(path), "w") as io:
            io.write(nwb)


@pytest.fixture(scope="module")
def session_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("sessions")
    for seed, name in ((1, "a.nwb"), (2, "b.nwb")):
        _write_session(directory / name, seed)
    return directory


def _sessions(path, **options) -> dict:
    return {"path": str(path), "align_range_ms": (-250, 700), "bin_ms": 10, "lengths_from_stop": True,
            "behavior": (), "splits": "file", **options}


def test_lazy_variable_length_trials_zero_their_padding_per_batch(session_dir):
    eager, lazy = _both(**_sessions(session_dir / "a.nwb"))
    assert eager.counts.shape == (8, 95, 4) and eager.lengths.max() < 95  # every trial padded
    _assert_same(eager, lazy)
    whole = NwbSource(NwbConfig(lazy=False, **_sessions(session_dir / "a.nwb", lengths_from_stop=False))).load()
    assert whole.counts[~lazy.mask()].any()  # spikes lie past the stops: zeroed, not absent
    for i in (0, 5, 7):
        assert not lazy.counts[i][lazy.lengths[i]:].any()
        np.testing.assert_array_equal(lazy.counts[i][:lazy.lengths[i]], whole.counts[i][:lazy.lengths[i]])


def test_a_directory_of_files_is_read_across_its_parts_without_concatenating(session_dir):
    eager, lazy = _both(**_sessions(session_dir))
    assert isinstance(lazy.counts._stored, ConcatenatedRows) and eager.counts.shape == (16, 95, 4)
    alone = [NwbSource(NwbConfig(lazy=False, **_sessions(session_dir / n))).load().counts for n in ("a.nwb", "b.nwb")]
    np.testing.assert_array_equal(eager.counts, np.concatenate(alone))
    _assert_same(eager, lazy)
    batch = np.array([9, 3, 15, 8, 7])  # spans both files
    np.testing.assert_array_equal(lazy.counts[batch], np.concatenate(alone)[batch])


class _Rows:
    """A row source over an array in memory, counting its reads."""

    def __init__(self, array):
        self.shape, self.dtype, self.label, self.reads, self._array = array.shape, array.dtype, "mem", [], array

    def read(self, rows):
        self.reads.append(rows.tolist())
        return self._array[rows]


def test_concatenated_rows_read_each_row_from_its_part_once():
    whole = np.arange(8 * 2 * 3, dtype=np.int32).reshape(8, 2, 3)
    parts = [_Rows(whole[:3]), _Rows(whole[3:4]), _Rows(whole[4:])]  # 3, 1 and 4 trials
    counts = LazyCounts(ConcatenatedRows(parts, label="mem"))
    np.testing.assert_array_equal(counts[np.array([7, 0, 3, 2, 4])], whole[[7, 0, 3, 2, 4]])
    assert [p.reads for p in parts] == [[[0, 2]], [[0]], [[0, 3]]]
    np.testing.assert_array_equal(np.asarray(counts.take([5, 1])), whole[[5, 1]])


def test_a_stored_cut_is_read_lazily_too(tmp_path):
    """A file written by ``ldns sample --out FILE.nwb``: its recorded cut, padding included, per batch."""
    from ldns_framework.io.samples import Samples, write_samples

    rng = np.random.default_rng(0)
    counts = rng.poisson(0.8, (6, 40, 5)).astype(np.int32)  # (trials, time, units)
    lengths = np.array([40, 20, 40, 1, 33, 40])
    counts[np.arange(40)[None, :] >= lengths[:, None]] = 0
    path = write_samples(Samples(counts, lengths, observation="poisson",
                                 provenance={"bin_width_s": 0.005, "unit_ids": [str(u) for u in range(5)]}),
                         tmp_path / "samples.nwb")
    lazy = NwbSource(NwbConfig(path=str(path), cut="stored", lazy=True)).load()
    assert lazy.lazy
    np.testing.assert_array_equal(lazy.counts[np.array([3, 1, 5])], counts[[3, 1, 5]])
    np.testing.assert_array_equal(np.asarray(lazy.counts), counts)


@pytest.mark.parametrize("limit_mb, lazy", [(16, True), (24, False)])
def test_null_lazy_means_lazy_above_the_memory_limit(train_file, limit_mb, lazy):
    data = NwbSource(NwbConfig(path=str(train_file), cut="windows", behavior=(), window_ms=1000, stride_ms=100,
                               memory_limit_mb=limit_mb)).load()  # 1191 windows x 200 bins x 20 units: 18.2 MiB
    assert data.lazy is lazy


def test_silent_units_are_found_without_binning(train_file, monkeypatch):
    monkeypatch.setattr("ldns_plugins.nwb.binned.bin_spikes", lambda *a: pytest.fail("binned at load"))
    with pytest.raises(DataError, match=r"units: units \[\d+(, \d+)*\] have no spikes in any selected window"):
        NwbSource(NwbConfig(path=str(train_file), lazy=True, cut="windows", behavior=(), window_ms=5, bin_ms=5,
                            stride_ms=100_000)).load()  # one 5 ms window: most units silent


def test_an_eager_load_above_the_limit_is_refused_with_the_lazy_way_out(train_file):
    with pytest.raises(DataError, match=r"desc-train_behavior\+ecephys\.nwb: memory_limit_mb: the selection needs "
                                        r"about \d+ MB \(5954 windows x 200 bins x 20 units, plus the spike times "
                                        r"and behaviour\), above the limit of 1 MB; set lazy: true"):
        NwbSource(NwbConfig(path=str(train_file), cut="windows", behavior=(), window_ms=1000, stride_ms=20,
                            lazy=False, memory_limit_mb=1)).load()


@pytest.mark.parametrize("option, value, expected", [
    ("lazy", "maybe", "data.lazy: expected bool | None, got 'maybe'"),
    ("memory_limit_mb", 0, "data.memory_limit_mb: expected int | None >= 1, got 0"),
])
def test_bad_option_values_are_one_line_errors_exit_2(train_file, tmp_path, capsys, option, value, expected):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"data": {"type": "nwb", "path": str(train_file), option: value},
                                    "generator": None}))
    assert main(["data", str(spec)]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1


def test_lazy_training_gives_the_eager_weights(train_file, tmp_path):
    weights = []
    for lazy in (False, True):
        spec = {"seed": 0, "data": {"type": "nwb", "path": str(train_file), "lazy": lazy, "behavior": [],
                                    "align_range_ms": [-250, 70], "bin_ms": 10},
                "encoder": {"type": "s4-autoencoder", "hidden": 16, "latent_dim": 4, "blocks": 1, "state_size": 8},
                "generator": None, "train": {"encoder": {"epochs": 2, "batch_size": 8}},
                "run": {"device": "cpu", "num_threads": 1}}
        pipeline = Pipeline.from_spec(spec).fit(run_dir=tmp_path / f"run-{lazy}", progress=False)
        assert pipeline.load_data().lazy is lazy
        weights.append(pipeline.encoder.state_dict())
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


#: Child process: one small lazy load and read first (libraries, buffers), then the large selection
#: loaded lazily (null lazy, the cap decides), summarised, and read batch by batch as the trainer does.
_BOUNDED = """
import json, resource, sys, numpy as np, torch
from ldns_plugins.nwb.source import NwbConfig, NwbSource
from ldns_framework.runner import CountRows
def load(stride):
    return NwbSource(NwbConfig(path=sys.argv[1], cut="windows", behavior=(), window_ms=1000, stride_ms=stride)).load()
def read(data):
    rows = CountRows(data.counts)
    for start in range(0, data.n_trials, 64):
        rows[torch.arange(start, min(start + 64, data.n_trials))]
    return data.summary()
read(load(1000))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
data = load(20)
read(data)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"lazy": data.lazy, "counts_kib": data.counts.nbytes // 1024, "growth_kib": after - before}))
"""


def test_reading_counts_four_times_the_cap_keeps_memory_bounded(train_file):
    """91 MiB of counts (5954 overlapping 1 s windows x 200 bins x 20 units) under a 20 MiB cap
    (LDNS_MEMORY_LIMIT 40M: half for data): loaded lazily, summarised and read in batches of 64
    with peak resident memory growing by less than a fifth of the counts (measured 9.6 MiB; the
    same child loading eagerly grows by 189 MiB)."""
    env = {**__import__("os").environ, "LDNS_MEMORY_LIMIT": "40M"}
    done = subprocess.run([sys.executable, "-c", _BOUNDED, str(train_file)], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["lazy"] is True and result["counts_kib"] > 4 * 20 * 1024
    assert result["growth_kib"] < result["counts_kib"] / 5, result
