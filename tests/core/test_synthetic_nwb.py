"""`ldns make-synthetic-nwb` and ldns_framework.nwb.write_synthetic_mc_maze: MC_Maze-structured NWB files."""

from __future__ import annotations

import itertools

import h5py
import numpy as np
import pynwb
import pytest

from ldns_framework.cli import main
from ldns_framework.errors import LdnsError
from ldns_framework.nwb import PRESETS, write_synthetic_mc_maze
from ldns_framework.nwb.synthetic import TEST_FILE, TRAIN_FILE

TRIAL_COLUMNS = ["start_time", "stop_time", "trial_type", "trial_version", "maze_id", "success", "target_on_time",
                 "go_cue_time", "move_onset_time", "rt", "delay", "num_targets", "target_pos", "num_barriers",
                 "barrier_pos", "active_target", "split"]


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return write_synthetic_mc_maze(tmp_path_factory.mktemp("mini"), "mc_maze-mini", 3)


def read(path):
    """Everything the tests look at, as plain arrays (the file closed again)."""
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        units, trials = nwb.units, nwb.trials
        out = {
            "ids": units.id[:],
            "heldout": np.asarray(units["heldout"][:], dtype=bool),
            "spikes": [np.asarray(units["spike_times"][i]) for i in range(len(units))],
            "obs": [np.asarray(units["obs_intervals"][i]) for i in range(len(units))],
            "electrodes": [units["electrodes"][i].index.to_numpy() for i in range(len(units))],
            "trials": trials.to_dataframe(),
            "columns": list(trials.colnames),
            "description": nwb.session_description, "notes": nwb.notes, "keywords": list(nwb.keywords[:]),
            "subject": nwb.subject.description, "n_electrodes": len(nwb.electrodes),
            "behavior": None,
        }
        if "behavior" in nwb.processing:
            module = nwb.processing["behavior"]
            out["behavior"] = {name: {"data": module[name].data[:], "timestamps": module[name].timestamps[:],
                                      "unit": module[name].unit, "conversion": module[name].conversion,
                                      "comments": module[name].comments, "type": type(module[name]).__name__}
                               for name in module.data_interfaces}
    return out


def test_files_are_named_and_placed_as_the_real_dandiset(mini, tmp_path):
    assert [p.name for p in mini] == [TRAIN_FILE, TEST_FILE]
    assert TRAIN_FILE == "sub-Jenkins_ses-full_desc-train_behavior+ecephys.nwb"
    assert TEST_FILE == "sub-Jenkins_ses-full_desc-test_ecephys.nwb"
    assert all(p.parent.parts[-2:] == ("000128", "sub-Jenkins") for p in mini)
    assert sorted(q.name for q in mini[0].parent.iterdir()) == sorted([TRAIN_FILE, TEST_FILE])  # no temporaries


@pytest.mark.parametrize("which", [0, 1])
def test_files_pass_pynwb_validation(mini, which):
    assert pynwb.validate(path=str(mini[which])) == []


def test_train_file_layout(mini):
    train = read(mini[0])
    preset = PRESETS["mc_maze-mini"]
    assert len(train["ids"]) == preset.units and train["heldout"].sum() == preset.heldout
    assert np.all(np.diff(train["ids"]) > 0)  # ascending ids A*1000 + channel*10 + sort
    assert set(train["ids"] // 1000) <= {1, 2} and np.all((train["ids"] // 10) % 100 >= 1)
    assert train["columns"] == TRIAL_COLUMNS
    trials = train["trials"]
    assert len(trials) == preset.trials
    assert sorted(trials.split.unique()) == ["train", "val"] and (trials.split == "val").sum() == preset.val_trials
    # integer-ms events, in order, and the window + forward prediction and the behaviour window inside each trial
    for name in ("start_time", "stop_time", "target_on_time", "go_cue_time", "move_onset_time"):
        assert np.allclose(trials[name] * 1000, np.round(trials[name] * 1000), atol=1e-6)
    move = trials.move_onset_time.to_numpy()
    assert np.all(trials.start_time < trials.target_on_time) and np.all(trials.target_on_time <= trials.go_cue_time)
    assert np.all(move - 0.25 >= trials.start_time) and np.all(move + 0.65 <= trials.stop_time)
    assert np.allclose(trials.rt, np.round((move - trials.go_cue_time) * 1000))
    assert np.allclose(trials.delay, np.round((trials.go_cue_time - trials.target_on_time) * 1000))
    starts = trials.start_time.to_numpy()
    assert np.allclose(starts * 10, np.round(starts * 10)) and np.all(starts[1:] > trials.stop_time.to_numpy()[:-1])
    for _, row in trials.iterrows():
        assert row.target_pos.dtype == np.int16 and row.target_pos.shape == (row.num_targets, 2)
        assert row.barrier_pos.shape == (row.num_barriers, 4)
        assert row.num_targets == (3 if row.trial_version == 2 else 1) and 0 <= row.active_target < row.num_targets
        assert (row.num_barriers == 0) == (row.trial_version == 0)
    # units: one obs interval per trial, the same for all; spikes inside trials; one electrode of 192
    intervals = np.column_stack([trials.start_time, trials.stop_time])
    assert all(np.array_equal(obs, intervals) for obs in train["obs"])
    assert train["n_electrodes"] == 192 and all(len(e) == 1 for e in train["electrodes"])
    for spikes in train["spikes"]:
        assert spikes.dtype == np.float64 and np.all(np.diff(spikes) >= 0)
        trial = np.searchsorted(intervals[:, 0], spikes, side="right") - 1
        assert np.all(trial >= 0) and np.all(spikes < intervals[trial, 1]) and np.all(spikes >= intervals[trial, 0])
        assert np.allclose(spikes * 1e6, np.round(spikes * 1e6), atol=1e-3)
    rate = sum(s.size for s in train["spikes"]) / len(train["ids"]) / (intervals[:, 1] - intervals[:, 0]).sum()
    assert 1.0 < rate < 15.0  # a few Hz, as the real recording
    # behaviour: directly in the module, mm with conversion 0.001, timestamps on the 1 ms grid inside trials only
    behavior = train["behavior"]
    assert sorted(behavior) == ["cursor_pos", "eye_pos", "hand_pos", "hand_vel"]
    assert {b["type"] for n, b in behavior.items() if n != "hand_vel"} == {"SpatialSeries"}
    assert behavior["hand_vel"]["type"] == "TimeSeries" and behavior["hand_vel"]["unit"] == "m/s"
    assert behavior["hand_pos"]["unit"] == "meters"
    for series in behavior.values():
        assert series["conversion"] == 0.001 and series["comments"] == "columns=[x,y]"
        assert series["data"].shape == (series["timestamps"].size, 2) and series["data"].dtype == np.float64
    stamps = behavior["hand_vel"]["timestamps"]
    expected = np.concatenate([np.arange(round(a * 1000), round(b * 1000)) for a, b in intervals]) / 1000
    assert np.array_equal(stamps, expected)


def test_test_file_has_held_in_units_and_test_windows(mini):
    train, test = read(mini[0]), read(mini[1])
    m = PRESETS["mc_maze-mini"].test_trials
    assert np.array_equal(test["ids"], train["ids"][~train["heldout"]]) and not test["heldout"].any()
    assert test["behavior"] is None
    assert test["columns"] == ["start_time", "stop_time", "move_onset_time", "split"]
    trials = test["trials"]
    assert len(trials) == m and set(trials.split) == {"test"}
    assert np.allclose(trials.start_time, 0.8 * np.arange(m))
    assert np.allclose(trials.stop_time - trials.start_time, 0.7)
    assert np.allclose(trials.move_onset_time - trials.start_time, 0.25)
    windows = np.column_stack([trials.start_time, trials.stop_time])
    assert all(np.array_equal(obs, windows) for obs in test["obs"])
    for spikes in test["spikes"]:
        trial = np.searchsorted(windows[:, 0], spikes, side="right") - 1
        assert np.all(spikes < windows[trial, 1])


def test_marked_synthetic(mini):
    for path in mini:
        content = read(path)
        assert "SYNTHETIC" in content["description"] and "SYNTHETIC" in content["notes"]
        assert "SYNTHETIC" in content["subject"] and "synthetic" in content["keywords"]
    with h5py.File(mini[0], "r") as f:
        assert "SYNTHETIC" in f["units"].attrs["description"]


def test_velocity_is_the_derivative_of_position_within_each_trial(mini):
    train = read(mini[0])
    behavior = train["behavior"]
    pos, vel = behavior["hand_pos"]["data"], behavior["hand_vel"]["data"]
    trials = train["trials"]
    stamps = behavior["hand_pos"]["timestamps"]
    bounds = np.searchsorted(stamps, trials.start_time.to_numpy() - 1e-9)
    bounds = np.append(bounds, stamps.size)
    for a, b in itertools.pairwise(bounds):
        assert np.allclose(vel[a:b], np.gradient(pos[a:b], axis=0) * 1000.0)
    assert np.array_equal(behavior["cursor_pos"]["data"], pos)
    # the reach: at rest before movement onset, at the active target at the trial's end, fast in between
    for i, row in trials.iterrows():
        a, b = bounds[i], bounds[i + 1]
        t = stamps[a:b]
        target = row.target_pos[row.active_target]
        assert np.linalg.norm(pos[b - 1] - target) < 10.0
        assert np.abs(vel[a:b][t < row.move_onset_time - 0.002]).max() < 1e-9
        assert np.linalg.norm(vel[a:b], axis=1).max() > 150.0  # mm/s
        reach = pos[b - 1] - pos[a]
        assert np.dot(reach, target) > 0.9 * np.linalg.norm(reach) * np.linalg.norm(target)


def _window_counts(train, lo, hi):
    """Spike counts (trials, units) in [move + lo, move + hi) s."""
    move = train["trials"].move_onset_time.to_numpy()
    counts = np.zeros((move.size, len(train["spikes"])))
    for n, spikes in enumerate(train["spikes"]):
        counts[:, n] = np.searchsorted(spikes, move + hi) - np.searchsorted(spikes, move + lo)
    return counts


def test_rates_depend_on_reach_direction_and_on_time(tmp_path):
    paths = write_synthetic_mc_maze(tmp_path, "mc_maze-mini", 11)
    train = read(paths[0])
    direction = train["trials"].trial_type.to_numpy()  # the maze: one reach direction each
    counts = _window_counts(train, -0.1, 0.4)

    def between_condition_variance(labels):
        means = np.stack([counts[labels == c].mean(0) for c in np.unique(labels)])
        return means.var(0).sum()

    observed = between_condition_variance(direction)
    shuffles = np.random.default_rng(0)
    null = [between_condition_variance(shuffles.permutation(direction)) for _ in range(200)]
    assert observed > np.quantile(null, 0.99)
    # time: the population fires differently around the movement than well before it
    before = _window_counts(train, -0.25, -0.15).sum()
    around = _window_counts(train, 0.0, 0.1).sum()
    assert around > 1.3 * before


def test_same_seed_same_contents_other_seed_differs(tmp_path, mini):
    again = write_synthetic_mc_maze(tmp_path / "again", "mc_maze-mini", 3)
    other = write_synthetic_mc_maze(tmp_path / "other", "mc_maze-mini", 4)
    for first, second in zip(mini, again):
        a, b = read(first), read(second)
        assert np.array_equal(a["ids"], b["ids"]) and np.array_equal(a["heldout"], b["heldout"])
        assert all(np.array_equal(x, y) for x, y in zip(a["spikes"], b["spikes"]))
        assert a["trials"].equals(b["trials"]) if first.name == TEST_FILE else \
            a["trials"].drop(columns=["target_pos", "barrier_pos"]).equals(b["trials"].drop(
                columns=["target_pos", "barrier_pos"]))
        if a["behavior"] is not None:
            for name in a["behavior"]:
                assert np.array_equal(a["behavior"][name]["data"], b["behavior"][name]["data"])
    a, c = read(mini[0]), read(other[0])
    assert not (np.array_equal(a["ids"], c["ids"]) and all(
        np.array_equal(x, y) for x, y in zip(a["spikes"], c["spikes"])))


def test_refuses_existing_files_unknown_presets_and_bad_seeds(mini, tmp_path):
    root = mini[0].parents[2]
    before = mini[0].stat().st_mtime_ns
    with pytest.raises(LdnsError, match="already exists"):
        write_synthetic_mc_maze(root, "mc_maze-mini", 3)
    assert mini[0].stat().st_mtime_ns == before
    with pytest.raises(LdnsError, match="unknown preset 'mc_maze-huge'; known: mc_maze-mini, mc_maze"):
        write_synthetic_mc_maze(tmp_path, "mc_maze-huge", 0)
    with pytest.raises(LdnsError, match="--seed"):
        write_synthetic_mc_maze(tmp_path, "mc_maze-mini", -1)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(LdnsError, match="is a file"):
        write_synthetic_mc_maze(a_file, "mc_maze-mini", 0)
    assert not list(tmp_path.glob("*/000128"))


def test_presets_have_the_real_sizes():
    full = PRESETS["mc_maze"]
    assert (full.units, full.heldout, full.trials, full.val_trials, full.test_trials) == (182, 45, 2295, 574, 574)


def test_cli_writes_the_files_and_prints_their_paths(tmp_path, capsys):
    code = main(["make-synthetic-nwb", str(tmp_path / "d"), "--preset", "mc_maze-mini", "--seed", "5"])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    paths = out.split()
    assert [p.rsplit("/", 1)[-1] for p in paths] == [TRAIN_FILE, TEST_FILE]
    assert all((tmp_path / "d" / "000128" / "sub-Jenkins" / name).is_file() for name in (TRAIN_FILE, TEST_FILE))


@pytest.mark.parametrize("argv, message", [
    (["--preset", "mc_maze-huge"], "--preset: invalid choice"),
    (["--preset", "mc_maze-mini", "--seed", "-3"], "--seed: expected a seed"),
    (["--preset", "mc_maze-mini", "--seed", "x"], "--seed: expected a seed"),
    ([], "the following arguments are required: --preset"),
])
def test_cli_bad_options_exit_2_on_one_line(tmp_path, capsys, argv, message):
    code = main(["make-synthetic-nwb", str(tmp_path), *argv])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and message in err
    assert not (tmp_path / "000128").exists()


def test_cli_refuses_existing_files_and_a_file_as_dir(tmp_path, capsys, mini):
    code = main(["make-synthetic-nwb", str(mini[0].parents[2]), "--preset", "mc_maze-mini"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.startswith("error: ") and "already exists" in err
    assert len(err.strip().splitlines()) == 1
    a_file = tmp_path / "f"
    a_file.write_text("")
    code = main(["make-synthetic-nwb", str(a_file), "--preset", "mc_maze-mini"])
    out, err = capsys.readouterr()
    assert code == 2 and "is a file" in err and len(err.strip().splitlines()) == 1


def test_cli_preset_choices_match_the_presets():
    from ldns_framework.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices["make-synthetic-nwb"]
    preset = next(a for a in sub._actions if a.dest == "preset")
    assert tuple(preset.choices) == tuple(PRESETS)


def test_a_failed_write_leaves_neither_file_nor_temporaries(tmp_path, monkeypatch):
    from ldns_framework.nwb import synthetic

    real = synthetic._write_file

    def fail_on_test(path, content, role, preset, seed):
        if role == "test":
            raise OSError(28, "No space left on device", str(path))
        real(path, content, role, preset, seed)

    monkeypatch.setattr(synthetic, "_write_file", fail_on_test)
    with pytest.raises(OSError):
        write_synthetic_mc_maze(tmp_path, "mc_maze-mini", 0)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_nwbinspector_finds_nothing_critical(mini):
    import nwbinspector  # a test dependency (pyproject's test extra)

    for path in mini:
        findings = list(nwbinspector.inspect_nwbfile(nwbfile_path=str(path), config=nwbinspector.load_config("dandi")))
        assert not [f for f in findings if f.importance.name == "CRITICAL"], findings


def test_the_full_preset_is_checked_against_memory_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LDNS_MEMORY_LIMIT", "64M")
    code = main(["make-synthetic-nwb", str(tmp_path), "--preset", "mc_maze"])
    _, err = capsys.readouterr()
    assert code == 2 and err.startswith("error: --preset: trials 2295") and "LDNS_MEMORY_LIMIT" in err
    assert len(err.strip().splitlines()) == 1 and not list(tmp_path.iterdir())


def test_full_grid_behaviour_holds_the_same_values_inside_trials_and_nan_between(tmp_path, mini, capsys):
    code = main(["make-synthetic-nwb", str(tmp_path), "--preset", "mc_maze-mini", "--seed", "3", "--full-grid"])
    capsys.readouterr()
    assert code == 0
    paths = [tmp_path / "000128" / "sub-Jenkins" / name for name in (TRAIN_FILE, TEST_FILE)]
    assert pynwb.validate(path=str(paths[0])) == []
    grid, within = read(paths[0]), read(mini[0])
    assert all(np.array_equal(x, y) for x, y in zip(grid["spikes"], within["spikes"]))
    stamps = within["behavior"]["hand_vel"]["timestamps"]
    last_stop = within["trials"].stop_time.iloc[-1]
    for name, series in grid["behavior"].items():
        assert np.array_equal(series["timestamps"], np.arange(round(last_stop * 1000)) / 1000)
        inside = np.round(stamps * 1000).astype(int)
        assert np.array_equal(series["data"][inside], within["behavior"][name]["data"])
        outside = np.ones(series["timestamps"].size, dtype=bool)
        outside[inside] = False
        assert outside.any() and np.isnan(series["data"][outside]).all()
