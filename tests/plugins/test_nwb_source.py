"""The ``nwb`` data source: NLB-exact trial alignment and binning on small NWB files written here
with pynwb, the errors of every missing field, directory loads, and the conformance kit."""

from __future__ import annotations

import functools
import tempfile
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

pynwb = pytest.importorskip("pynwb")

from ldns_plugins.nwb.source import NwbConfig, NwbSource

from ldns_framework import DataError
from ldns_framework.testing import DataSourceContract

T0 = datetime(2009, 9, 25, tzinfo=timezone.utc)


def session(rng, n_trials=12, n_units=6, n_heldout=2, full_grid=False, split=None):
    """A small MC_Maze-like session: integer-ms trial times, Poisson spikes strictly inside trials,
    a 1 kHz hand velocity within trials (or on a full grid, NaN between trials)."""
    trials, t = [], 0
    for i in range(n_trials):
        move = t + int(rng.integers(600, 900)) + rng.integers(0, 5) * 0.2  # some events off the 1 ms grid
        stop = int(move) + int(rng.integers(800, 1000))
        trials.append((t / 1000, stop / 1000, move / 1000))
        t = (stop // 100 + 1) * 100
    ids = np.array(sorted(rng.choice(np.arange(1000, 3000, 10), n_units, replace=False)))[::-1]  # written unsorted
    heldout = np.zeros(n_units, bool)
    heldout[rng.choice(n_units, n_heldout, replace=False)] = True
    spikes = []
    for _ in range(n_units):
        parts = [np.round(rng.uniform(a, b, rng.poisson(20 * (b - a))), 6) for a, b, _ in trials]
        spikes.append(np.sort(np.concatenate(parts)))
    splits = split or ["train" if i % 4 else "val" for i in range(n_trials)]
    stamps_ms = (np.arange(t) if full_grid else
                 np.concatenate([np.arange(round(a * 1000), round(b * 1000)) for a, b, _ in trials]))
    vel = np.stack([np.sin(stamps_ms / 97.0), np.cos(stamps_ms / 53.0)], axis=1) * 300.0
    if full_grid:
        inside = np.zeros(t, bool)
        for a, b, _ in trials:
            inside[round(a * 1000):round(b * 1000)] = True
        vel[~inside] = np.nan
    return {"trials": trials, "ids": ids, "heldout": heldout, "spikes": spikes, "split": splits,
            "stamps": stamps_ms / 1000.0, "vel": vel}


def write(path, s, *, units=True, trials=True, behavior=True, obs=True, move_column=True, split_column=True):
    nwb = pynwb.NWBFile(session_description="test", identifier=str(path), session_start_time=T0)
    if trials:
        if move_column:
            nwb.add_trial_column(name="move_onset_time", description="movement onset")
        if split_column:
            nwb.add_trial_column(name="split", description="split")
        for (a, b, m), sp in zip(s["trials"], s["split"]):
            extra = {"move_onset_time": m} if move_column else {}
            if split_column:
                extra["split"] = sp
            nwb.add_trial(start_time=a, stop_time=b, **extra)
    if units:
        nwb.add_unit_column(name="heldout", description="held out")
        intervals = np.array([[a, b] for a, b, _ in s["trials"]])
        for uid, ho, sp in zip(s["ids"], s["heldout"], s["spikes"]):
            nwb.add_unit(id=int(uid), spike_times=sp, heldout=bool(ho), **({"obs_intervals": intervals} if obs else {}))
    if behavior:
        module = nwb.create_processing_module(name="behavior", description="Processed behavioral data")
        module.add(pynwb.TimeSeries(name="hand_vel", data=s["vel"], timestamps=s["stamps"], unit="m/s",
                                    conversion=0.001, comments="columns=[x,y]", description="hand velocity in mm/s"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pynwb.NWBHDF5IO(str(path), "w") as io:
            io.write(nwb)
    return str(path)


# -- an independent implementation of the NLB rule (NWB_NOTES.md 2.3), loop by loop ------------

def expected_counts(s, start=-250, stop=450, bin_ms=5, keep=None):
    order = sorted(range(len(s["ids"])), key=lambda u: (bool(s["heldout"][u]), s["ids"][u]))
    rows = keep if keep is not None else range(len(s["trials"]))
    out = np.zeros((len(rows), (stop - start) // bin_ms, len(order)), np.int64)
    for i, trial in enumerate(rows):
        move_ms = s["trials"][trial][2] * 1000.0
        b0 = int(np.ceil(round(move_ms + start, 6) / bin_ms)) * bin_ms
        for n, u in enumerate(order):
            for t in s["spikes"][u]:
                ms = int(round(t * 1000, 6))
                j = (ms - b0) // bin_ms if ms >= b0 else -1
                if 0 <= j < out.shape[1]:
                    out[i, j, n] += 1
    return out, [str(s["ids"][u]) for u in order]


def expected_velocity(s, lag=100, start=-250, stop=450, bin_ms=5, keep=None):
    from scipy.signal import decimate

    end = round(s["trials"][-1][1] * 1000)
    frame = np.full((end, 2), np.nan)
    ms = np.round(s["stamps"] * 1000).astype(int)
    ok = (ms < end) & np.isfinite(s["vel"][:, 0])
    frame[ms[ok]] = s["vel"][ok]
    grid = np.arange(end)
    for d in range(2):  # pandas interpolate(linear, limit_direction=both) on a regular grid
        good = np.isfinite(frame[:, d])
        frame[:, d] = np.interp(grid, grid[good], frame[good, d])
    dec = decimate(frame, bin_ms, n=500, ftype="fir", axis=0)
    rows = keep if keep is not None else range(len(s["trials"]))
    out = []
    for trial in rows:
        b0 = int(np.ceil(round(s["trials"][trial][2] * 1000 + start + lag, 6) / bin_ms)) * bin_ms
        out.append(dec[b0 // bin_ms: b0 // bin_ms + (stop - start) // bin_ms])
    return np.stack(out) * 0.001


def all_splits(**kw):
    return NwbConfig(select=("train", "val", "test"), splits="file", **kw)


@pytest.fixture(scope="module")
def sess():
    return session(np.random.default_rng(3))


@pytest.fixture(scope="module")
def nwb_path(sess, tmp_path_factory):
    return write(tmp_path_factory.mktemp("nwb") / "session.nwb", sess)


def test_shapes_dtypes_and_counts_equal_a_direct_binning(sess, nwb_path):
    data = NwbSource(NwbConfig(path=nwb_path)).load()
    want, ids = expected_counts(sess)
    assert data.counts.shape == (12, 140, 6) and data.counts.dtype == np.int32
    assert data.bin_width_s == 0.005 and data.neuron_ids == tuple(ids)
    np.testing.assert_array_equal(data.counts, want)
    assert data.counts.sum() > 100
    assert data.metadata["n_heldin"] == 4 and data.metadata["n_heldout"] == 2
    assert data.covariates["hand_vel"].shape == (12, 140, 2) and data.covariates["hand_vel"].dtype == np.float64
    np.testing.assert_allclose(data.covariates["hand_vel"], expected_velocity(sess), rtol=1e-9, atol=1e-12)


def test_held_in_units_come_first_in_ascending_id_order(sess, nwb_path):
    data = NwbSource(NwbConfig(path=nwb_path, behavior=())).load()
    ids = [int(i) for i in data.neuron_ids]
    held = {int(i): bool(h) for i, h in zip(sess["ids"], sess["heldout"])}
    flags = [held[i] for i in ids]
    assert flags == sorted(flags) and ids[:4] == sorted(ids[:4]) and ids[4:] == sorted(ids[4:])
    assert data.covariates == {}


def test_behaviour_within_trials_or_on_a_full_grid_gives_the_same_result(tmp_path):
    a = session(np.random.default_rng(5))
    b = session(np.random.default_rng(5), full_grid=True)
    da = NwbSource(NwbConfig(path=write(tmp_path / "a.nwb", a))).load()
    db = NwbSource(NwbConfig(path=write(tmp_path / "b.nwb", b))).load()
    np.testing.assert_array_equal(da.counts, db.counts)
    np.testing.assert_allclose(da.covariates["hand_vel"], db.covariates["hand_vel"], rtol=0, atol=1e-12)


def test_other_bins_windows_and_lags_follow_the_same_rule(sess, nwb_path):
    data = NwbSource(NwbConfig(path=nwb_path, align_range_ms=(-100, 500), bin_ms=20, behavior_lag_ms=-20)).load()
    want, _ = expected_counts(sess, -100, 500, 20)
    np.testing.assert_array_equal(data.counts, want)
    np.testing.assert_allclose(data.covariates["hand_vel"], expected_velocity(sess, -20, -100, 500, 20),
                               rtol=1e-9, atol=1e-12)


def test_a_spike_exactly_at_the_window_end_is_excluded(tmp_path):
    s = session(np.random.default_rng(7), n_trials=3, n_units=2, n_heldout=0)
    s["trials"] = [(0.0, 2.0, 1.0), (2.1, 4.0, 3.0), (4.1, 6.0, 5.0)]
    s["split"] = ["train"] * 3
    s["ids"] = np.array([1010, 2020])
    s["spikes"] = [np.array([0.75, 0.7549, 1.4499, 1.45, 3.45, 5.2]), np.array([1.4, 2.9])]
    s["stamps"] = np.arange(0, 6000) / 1000.0
    s["vel"] = np.ones((6000, 2))
    data = NwbSource(NwbConfig(path=write(tmp_path / "edge.nwb", s))).load()
    assert data.counts[0, 0, 0] == 2 and data.counts[0, -1, 0] == 1  # 0.75, 0.7549 in bin 0; 1.4499 last; 1.45 out
    assert data.counts[1, :, 0].sum() == 0  # 3.45 = move 3.0 + 450 ms: excluded
    assert data.counts[:, :, 0].sum() == 4 and data.counts[:, :, 1].sum() == 2
    np.testing.assert_allclose(data.covariates["hand_vel"], 0.001)


def test_split_selection_and_the_reference_split(sess, nwb_path):
    data = NwbSource(NwbConfig(path=nwb_path)).load()
    split = np.array(sess["split"])
    val = np.flatnonzero(split == "val")  # 3 val trials: first 1 to train, other 2 -> val 0, test 2
    assert data.splits["train"].tolist() == sorted(np.flatnonzero(split == "train").tolist() + val[:1].tolist())
    assert len(data.splits["val"]) == 0 and sorted(data.splits["test"].tolist()) == val[1:].tolist()
    only_train = NwbSource(NwbConfig(path=nwb_path, select=("train",), splits="file")).load()
    keep = np.flatnonzero(split == "train")
    np.testing.assert_array_equal(only_train.counts, expected_counts(sess, keep=keep)[0])
    assert list(only_train.splits) == ["train"] and only_train.metadata["trial_ids"] == keep.tolist()


def test_the_reference_split_of_574_val_trials_is_ldns_71_216(tmp_path):
    import torch

    source = NwbSource(NwbConfig(path="unused"))
    values = np.array(["train"] * 1721 + ["val"] * 574, dtype=object)
    splits = source._splits(values)
    assert (len(splits["train"]), len(splits["val"]), len(splits["test"])) == (1721 + 287, 71, 216)
    rest = np.arange(1721 + 287, 2295)
    perm = torch.randperm(287, generator=torch.Generator().manual_seed(42))
    np.testing.assert_array_equal(splits["val"], rest[perm[:71].numpy()])


def test_a_directory_load_keeps_every_trial_in_file_order(tmp_path):
    a = session(np.random.default_rng(11), n_trials=5)
    b = session(np.random.default_rng(11), n_trials=7)
    b["ids"], b["heldout"] = a["ids"], a["heldout"]
    write(tmp_path / "sub-x_desc-test.nwb", a)
    write(tmp_path / "sub-x_desc-train.nwb", b)
    data = NwbSource(all_splits(path=str(tmp_path))).load()
    assert data.counts.shape[0] == 12
    np.testing.assert_array_equal(data.counts, np.concatenate([expected_counts(a)[0], expected_counts(b)[0]]))
    assert data.metadata["files"] == ["sub-x_desc-test.nwb", "sub-x_desc-train.nwb"]
    assert data.metadata["trial_ids"] == list(range(5)) + list(range(7))
    np.testing.assert_allclose(data.covariates["hand_vel"][5:], expected_velocity(b), rtol=1e-9, atol=1e-12)


def test_a_directory_file_without_selected_trials_is_skipped(tmp_path):
    a = session(np.random.default_rng(12), n_trials=4, split=["test"] * 4)
    b = session(np.random.default_rng(12), n_trials=6)
    write(tmp_path / "a_test.nwb", a, behavior=False)
    write(tmp_path / "b_train.nwb", b)
    data = NwbSource(NwbConfig(path=str(tmp_path))).load()
    assert data.counts.shape[0] == 6 and data.metadata["skipped_files"] == ["a_test.nwb"]


def test_directory_files_with_other_units_are_refused(tmp_path):
    write(tmp_path / "a.nwb", session(np.random.default_rng(1), n_trials=4))
    write(tmp_path / "b.nwb", session(np.random.default_rng(2), n_trials=4))
    with pytest.raises(DataError, match=r"b\.nwb: units: unit ids"):
        NwbSource(NwbConfig(path=str(tmp_path))).load()


def test_files_without_obs_intervals_check_the_window_against_the_recording(sess, tmp_path):
    data = NwbSource(NwbConfig(path=write(tmp_path / "noobs.nwb", sess, obs=False))).load()
    np.testing.assert_array_equal(data.counts, expected_counts(sess)[0])


def test_the_file_is_not_modified(sess, nwb_path):
    before = Path(nwb_path).read_bytes()
    NwbSource(NwbConfig(path=nwb_path)).load()
    assert Path(nwb_path).read_bytes() == before


# -- errors: one line naming the file and the field --------------------------------------------

@pytest.mark.parametrize("kwargs, config, pattern", [
    ({"units": False}, {}, r"^bad\.nwb: units: no Units table$"),
    ({"trials": False}, {}, r"^bad\.nwb: trials: no trials table"),
    ({"move_column": False}, {}, r"^bad\.nwb: trials\.move_onset_time: no such trials column"),
    ({}, {"align_event": "go_cue_time"}, r"^bad\.nwb: trials\.go_cue_time: no such trials column"),
    ({"split_column": False}, {}, r"^bad\.nwb: trials\.split: no such trials column"),
    ({"behavior": False}, {}, r"^bad\.nwb: processing/behavior: no such processing module"),
    ({}, {"behavior": ("hand_pos",)}, r"^bad\.nwb: behavior/hand_pos: no behaviour series 'hand_pos'"),
    ({}, {"align_range_ms": (-250, 1500)}, r"^bad\.nwb: trials\.move_onset_time: the window .* lies outside"),
    ({"obs": False}, {"align_range_ms": (-5000, 0)}, r"^bad\.nwb: trials\.move_onset_time: the window .* outside"),
    ({}, {"behavior_lag_ms": 100000}, r"^bad\.nwb: behavior/hand_vel: a behaviour window .* outside"),
    ({}, {"select": ("none",)}, r"bad\.nwb: trials\.split: no trial has a split in \['none'\]"),
])
def test_missing_or_wrong_fields_are_one_line_errors(sess, tmp_path, kwargs, config, pattern):
    path = write(tmp_path / "bad.nwb", sess, **kwargs)
    with pytest.raises(DataError, match=pattern) as info:
        NwbSource(NwbConfig(path=path, **config)).load()
    assert "\n" not in str(info.value)


def test_units_without_spikes_in_range_are_an_error_unless_allowed(tmp_path):
    s = session(np.random.default_rng(4), n_trials=4)
    s["spikes"][0] = np.array([s["trials"][0][0] + 0.001])  # before every window
    path = write(tmp_path / "silent.nwb", s)
    with pytest.raises(DataError, match=rf"silent\.nwb: units: units \[{s['ids'][0]}\] have no spikes"):
        NwbSource(NwbConfig(path=path)).load()
    assert NwbSource(NwbConfig(path=path, allow_silent_units=True)).load().counts.shape[2] == 6


def test_a_missing_path_or_a_non_nwb_file_is_an_error(tmp_path):
    with pytest.raises(DataError, match="no such file or directory"):
        NwbSource(NwbConfig(path=str(tmp_path / "nope.nwb"))).load()
    with pytest.raises(DataError, match="no .nwb files"):
        NwbSource(NwbConfig(path=str(tmp_path))).load()
    (tmp_path / "junk.nwb").write_text("not hdf5")
    with pytest.raises(DataError, match=r"junk\.nwb: not a readable NWB file"):
        NwbSource(NwbConfig(path=str(tmp_path / "junk.nwb"))).load()


def test_config_checks():
    with pytest.raises(ValueError, match="multiple of bin_ms"):
        NwbConfig(path="x.nwb", align_range_ms=(-250, 452))
    with pytest.raises(ValueError, match="start < stop"):
        NwbConfig(path="x.nwb", align_range_ms=(450, -250))


def test_registration_declares_the_nwb_suffix_and_a_required_path():
    import ldns_plugins.nwb as nwb_plugin
    from ldns_registry import Registry

    from ldns_framework.errors import SpecErrors

    registry = Registry()
    registry.register(nwb_plugin, "nwb")
    assert registry.data_type_for_file("/data/sub-Jenkins_ses-full_desc-train_behavior+ecephys.nwb") == "nwb"
    with pytest.raises(SpecErrors, match=r"^data.path: required option missing"):
        registry.structure_component("data", {}, "nwb", "data")
    config = registry.structure_component("data", {"path": "x.nwb", "align_range_ms": [-100, 500],
                                                    "select": ["train"], "behavior": []}, "nwb", "data")
    assert config.align_range_ms == (-100, 500) and config.select == ("train",) and config.behavior == ()


@functools.cache
def kit_file() -> str:
    s = session(np.random.default_rng(0), n_trials=16, n_units=5, n_heldout=1,
                split=["train"] * 8 + ["val"] * 8)
    return write(Path(tempfile.mkdtemp(prefix="ldns-nwb-")) / "kit.nwb", s)


class TestNwbSourceContract(DataSourceContract):
    def make_model(self):
        return NwbSource(NwbConfig(path=kit_file(), align_range_ms=(-200, 200), bin_ms=10))


# -- continuous recordings cut into fixed windows -------------------------------------------------

def write_continuous(path, rng, *, epochs=True):
    """10 s of spikes from 4 units (two regions), epochs tagged wake/sleep, a 100 Hz position in acquisition."""
    nwb = pynwb.NWBFile(session_description="continuous", identifier=str(path), session_start_time=T0)
    nwb.add_unit_column(name="location", description="brain region")
    spikes = [np.sort(np.round(rng.uniform(0, 10, 150), 6)) for _ in range(4)]
    for uid, sp, loc in zip((7, 3, 5, 1), spikes, ("CA1", "V1", "CA1", "V1")):
        nwb.add_unit(id=uid, spike_times=sp, location=loc)
    if epochs:
        nwb.add_epoch(start_time=0.0, stop_time=1.0, tags=["sleep"])
        nwb.add_epoch(start_time=1.0, stop_time=3.0, tags=["wake"])
        nwb.add_epoch(start_time=3.0, stop_time=9.5, tags=["sleep"])
        nwb.add_epoch(start_time=9.5, stop_time=9.9, tags=["wake"])
    from pynwb.behavior import Position, SpatialSeries

    position = Position(name="Position")
    position.add_spatial_series(SpatialSeries(name="pos", data=np.stack([np.arange(1000.0), -np.arange(1000.0)], 1),
                                              rate=100.0, starting_time=0.0, reference_frame="origin", unit="m"))
    nwb.add_acquisition(position)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pynwb.NWBHDF5IO(str(path), "w") as io:
            io.write(nwb)
    return str(path), dict(zip((7, 3, 5, 1), spikes))


def windows(**kw):
    return NwbConfig(cut="windows", behavior=(), **kw)


def direct(spikes, ids, starts_ms, length_ms, bin_ms):
    out = np.zeros((len(starts_ms), length_ms // bin_ms, len(ids)), np.int64)
    for n, uid in enumerate(ids):
        for t in spikes[uid]:
            ms = int(round(t * 1000, 6))
            for w, s in enumerate(starts_ms):
                if s <= ms < s + length_ms:
                    out[w, (ms - s) // bin_ms, n] += 1
    return out


def test_windows_tile_the_whole_recording_with_a_stride(tmp_path):
    path, spikes = write_continuous(tmp_path / "c.nwb", np.random.default_rng(0))
    data = NwbSource(windows(path=path, window_ms=2000, stride_ms=1000, bin_ms=20)).load()
    end = max(max(int(round(sp[-1] * 1000, 6)) + 1 for sp in spikes.values()), 9900)  # last spike or epoch end
    starts = list(range(0, end - 2000 + 1, 1000))
    assert data.metadata["trial_ids"] == starts and data.neuron_ids == ("1", "3", "5", "7")
    assert data.counts.shape == (len(starts), 100, 4) and len(starts) >= 8
    np.testing.assert_array_equal(data.counts, direct(spikes, (1, 3, 5, 7), starts, 2000, 20))
    assert sorted(np.concatenate(list(data.splits.values())).tolist()) == list(range(len(starts)))


def test_windows_over_tagged_epochs_tile_them_exactly(tmp_path):
    path, spikes = write_continuous(tmp_path / "c.nwb", np.random.default_rng(1))
    data = NwbSource(windows(path=path, window_ms=500, intervals="epochs", tags=("wake",), bin_ms=10)).load()
    assert data.metadata["trial_ids"] == [1000, 1500, 2000, 2500]  # 9.5-9.9 s is shorter than a window
    in_epoch = sum(int(np.sum((sp >= 1.0) & (sp < 3.0))) for sp in spikes.values())
    assert data.counts.sum() == in_epoch
    np.testing.assert_array_equal(data.counts, direct(spikes, (1, 3, 5, 7), [1000, 1500, 2000, 2500], 500, 10))


def test_windows_select_units_by_a_column_and_read_position_from_acquisition(tmp_path):
    path, _ = write_continuous(tmp_path / "c.nwb", np.random.default_rng(2))
    data = NwbSource(NwbConfig(path=path, cut="windows", window_ms=1000, bin_ms=10, unit_column="location",
                               unit_values=("CA1",), behavior=("Position/pos",), behavior_module="acquisition",
                               behavior_lag_ms=0, intervals="epochs", tags=("sleep",))).load()
    assert data.neuron_ids == ("5", "7") and data.counts.shape == (7, 100, 2)
    pos = data.covariates["pos"]
    assert pos.shape == (7, 100, 2)
    # x = 100 * t m, a line: the 1 ms interpolation and the zero-phase FIR keep it, away from the file's start
    starts = np.array(data.metadata["trial_ids"])
    assert starts.tolist() == [0, 3000, 4000, 5000, 6000, 7000, 8000]
    np.testing.assert_allclose(pos[1:, :, 0], starts[1:, None] / 10 + np.arange(100)[None, :], rtol=0, atol=1e-6)
    np.testing.assert_allclose(pos[1:, :, 1], -pos[1:, :, 0], rtol=0, atol=1e-6)


@pytest.mark.parametrize("config, pattern", [
    ({"intervals": "sleep_stages"}, r"c\.nwb: intervals/sleep_stages: no such interval table"),
    ({"intervals": "epochs", "tags": ("rem",)}, r"c\.nwb: intervals/epochs\.tags: no interval is tagged"),
    ({"window_ms": 20000}, r"c\.nwb: window_ms: no 20000 ms window fits"),
    ({"unit_column": "quality", "unit_values": ("good",)}, r"c\.nwb: units\.quality: no such units column"),
])
def test_window_errors_name_the_file_and_field(tmp_path, config, pattern):
    path, _ = write_continuous(tmp_path / "c.nwb", np.random.default_rng(3))
    with pytest.raises(DataError, match=pattern):
        NwbSource(windows(path=path, **config)).load()


# -- on the synthetic MC_Maze-structured files ------------------------------------------------------

@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory):
    synthetic = pytest.importorskip("ldns_framework.nwb.synthetic")
    files = synthetic.write_synthetic_mc_maze(tmp_path_factory.mktemp("synth"), "mc_maze-mini", 0)
    return files[0].parent


def _direct_from_file(path, keep_splits=("train", "val"), start=-250, stop=450, bin_ms=5):
    """Read the synthetic train file with h5py alone and bin it by the NLB formula."""
    import h5py

    with h5py.File(path, "r") as f:
        ids = f["units/id"][:]
        held = f["units/heldout"][:].astype(bool)
        ends = f["units/spike_times_index"][:]
        times = f["units/spike_times"][:]
        split = np.array([v.decode() if isinstance(v, bytes) else v for v in f["intervals/trials/split"][:]])
        move = f["intervals/trials/move_onset_time"][:]
    keep = np.flatnonzero(np.isin(split, keep_splits))
    order = sorted(range(len(ids)), key=lambda u: (held[u], ids[u]))
    out = np.zeros((len(keep), (stop - start) // bin_ms, len(ids)), np.int64)
    for n, u in enumerate(order):
        ms = np.floor(np.round(times[(ends[u - 1] if u else 0):ends[u]] * 1000, 6)).astype(np.int64)
        for i, trial in enumerate(keep):
            b0 = int(np.ceil(round(move[trial] * 1000 + start, 6) / bin_ms)) * bin_ms
            inside = ms[(ms >= b0) & (ms < b0 + stop - start)]
            np.add.at(out[i, :, n], (inside - b0) // bin_ms, 1)
    return out, [str(ids[u]) for u in order], int((~held).sum())


def test_the_synthetic_mc_maze_directory_loads_as_nlb_tensors(synthetic_dir):
    data = NwbSource(NwbConfig(path=str(synthetic_dir))).load()
    train_file = next(synthetic_dir.glob("*desc-train*.nwb"))
    want, ids, n_heldin = _direct_from_file(train_file)
    assert data.counts.shape == (40, 140, 20) and data.metadata["n_heldin"] == n_heldin == 14
    assert data.neuron_ids == tuple(ids)
    np.testing.assert_array_equal(data.counts, want)
    dandiset_root = synthetic_dir.parent.parent  # DIR/000128/sub-Jenkins/*.nwb: found below the root too
    np.testing.assert_array_equal(NwbSource(NwbConfig(path=str(dandiset_root))).load().counts, want)
    assert data.covariates["hand_vel"].shape == (40, 140, 2) and np.all(np.isfinite(data.covariates["hand_vel"]))
    assert data.metadata["skipped_files"] == ["sub-Jenkins_ses-full_desc-test_ecephys.nwb"]
    assert data.metadata["behavior_units"] == {"hand_vel": "m/s"}
    assert sum(len(v) for v in data.splits.values()) == 40


def test_the_synthetic_test_file_loads_held_in_units_without_behaviour(synthetic_dir):
    test_file = next(synthetic_dir.glob("*desc-test*.nwb"))
    data = NwbSource(NwbConfig(path=str(test_file), select=("test",), splits="file", behavior=())).load()
    assert data.counts.shape == (10, 140, 14) and list(data.splits) == ["test"]
    np.testing.assert_array_equal(data.counts, _direct_from_file(test_file, ("test",))[0])
    with pytest.raises(DataError, match=r"desc-test_ecephys\.nwb: processing/behavior: no such processing module"):
        NwbSource(NwbConfig(path=str(test_file), select=("test",), splits="file")).load()


@pytest.mark.slow
def test_a_tiny_model_trains_on_the_synthetic_file_and_samples(synthetic_dir, tmp_path):
    from ldns_framework.pipeline import Pipeline

    spec = {"seed": 0,
            "data": {"type": "nwb", "path": str(synthetic_dir), "align_range_ms": [-250, 150], "bin_ms": 10},
            "encoder": {"type": "s4-autoencoder", "hidden": 16, "latent_dim": 4, "blocks": 1, "state_size": 8},
            "generator": {"type": "latent-diffusion", "hidden": 16, "blocks": 1, "state_size": 8, "train_steps": 50},
            "train": {"encoder": {"epochs": 2, "batch_size": 8}, "generator": {"epochs": 2, "batch_size": 8}}}
    pipeline = Pipeline.from_spec(spec).fit(run_dir=tmp_path / "run", progress=False)
    samples = pipeline.sample(3, progress=False)
    counts = np.asarray(samples.counts)
    assert counts.shape == (3, 40, 20) and np.all(counts >= 0)


def test_a_load_above_the_memory_limit_is_refused(tmp_path):
    path, _ = write_continuous(tmp_path / "c.nwb", np.random.default_rng(5))
    with pytest.raises(DataError, match=r"c\.nwb: memory_limit_mb: the selection needs about \d+ MB"):
        NwbSource(windows(path=path, window_ms=5000, stride_ms=10, bin_ms=10, memory_limit_mb=1, lazy=False)).load()


@pytest.mark.slow
def test_a_tiny_model_trains_on_a_continuous_recording_cut_into_windows(tmp_path):
    from ldns_framework.pipeline import Pipeline

    path, _ = write_continuous(tmp_path / "c.nwb", np.random.default_rng(4))
    spec = {"seed": 0,
            "data": {"type": "nwb", "path": path, "cut": "windows", "window_ms": 400, "stride_ms": 200,
                     "bin_ms": 20, "behavior": [], "window_split": [0.6, 0.2, 0.2]},
            "encoder": {"type": "s4-autoencoder", "hidden": 16, "latent_dim": 4, "blocks": 1, "state_size": 8},
            "generator": {"type": "latent-diffusion", "hidden": 16, "blocks": 1, "state_size": 8, "train_steps": 50},
            "train": {"encoder": {"epochs": 2, "batch_size": 8}, "generator": {"epochs": 2, "batch_size": 8}}}
    pipeline = Pipeline.from_spec(spec).fit(run_dir=tmp_path / "run", progress=False)
    counts = np.asarray(pipeline.sample(2, progress=False).counts)
    assert counts.shape == (2, 20, 4) and np.all(counts >= 0)


def test_split_values_read_as_bytes_or_str_compare_equal():
    from ldns_plugins.nwb.source import _text

    assert _text(np.array([b"train", "val"], dtype=object)).tolist() == ["train", "val"]


def test_windows_whose_lagged_behaviour_leaves_the_recording_are_left_out(tmp_path):
    path, _ = write_continuous(tmp_path / "c.nwb", np.random.default_rng(2))
    options = dict(path=path, cut="windows", window_ms=1000, bin_ms=10, behavior=("Position/pos",),
                   behavior_module="acquisition")
    aligned = NwbSource(NwbConfig(**options, behavior_lag_ms=0)).load()
    lagged = NwbSource(NwbConfig(**options, behavior_lag_ms=100)).load()
    end = aligned.metadata["trial_ids"][-1] + 1000  # the last window ends with the recording
    assert lagged.metadata["trial_ids"] == [s for s in aligned.metadata["trial_ids"] if s + 100 + 1000 <= end]
    assert lagged.n_trials == aligned.n_trials - 1
