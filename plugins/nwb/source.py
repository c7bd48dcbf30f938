"""The ``nwb`` data source: spike counts and behaviour from NWB files, read lazily with pynwb.

Trials are cut the way the Neural Latents Benchmark (nlb_tools) cuts them, bin for bin
(``/work/shared/NWB_NOTES.md`` section 2.3), without depending on nlb_tools:

- a spike at ``t`` seconds falls in millisecond ``floor(round(t * 1000, 6))`` of its file's clock;
- trial i's first bin starts at ``b0 = ceil_bin(event_i + start)`` ms (``event_i`` from the
  alignment column, ``start``/``stop`` from ``align_range_ms``, bins on the file's own
  ``bin_ms`` grid), and bin j counts the spikes whose millisecond lies in
  ``[b0 + bin_ms * j, b0 + bin_ms * (j + 1))``: ``(stop - start) / bin_ms`` bins (140 for
  MC_Maze), a spike exactly at the window's end excluded;
- units come held-in first, then held-out (the ``heldout`` column; all held-in without it),
  each group by ascending unit id;
- a behaviour series is put on the 1 ms grid ``[0, end)`` of its file (``end`` from the units'
  ``obs_intervals``), interpolated linearly between its samples (constant beyond the first and
  last; NaN samples ignored, so samples stored only within trials or on a full grid with NaN
  between trials give the same result), decimated by ``bin_ms`` with scipy's 500-tap FIR
  (``decimate(x, bin_ms, n=500, ftype="fir")``), and read at the bins of its own window, shifted
  by ``behavior_lag_ms``; it is multiplied by the series' ``conversion`` (mm/s to m/s for MC_Maze)
  unless ``behavior_scale`` says otherwise.

``path`` is one ``.nwb`` file or a directory: every ``*.nwb`` in it, in sorted order (a
dandiset's test and train files), is read and the selected trials of all of them are kept in
that order; a file with no selected trial (MC_Maze's test file, for ``select: [train, val]``) is
skipped and named in the metadata. Files are opened read-only; only the Units table, the
trials table and the named behaviour series are read.

Continuous recordings (``cut: windows``, no trials table needed): windows of ``window_ms`` start
every ``stride_ms`` from the start of the recording (or of each interval of the table named by
``intervals``, e.g. ``epochs``, optionally only those with one of ``tags``), rounded up to the bin
grid, as long as the whole window fits before the end; bins, units and behaviour follow the rules
above (behaviour from a processing module or ``acquisition``, e.g. ``Position/hand_pos``). Units
can be selected by a column's value (``unit_column``/``unit_values``) in both modes. The windows
are split at random (``window_split``, ``split_seed``); ``metadata.trial_ids`` holds each
window's start in ms.

Variable-length trials: with ``lengths_from_stop`` a trial's valid bins end at its ``stop_time``
(``lengths`` = whole bins before it, at most the window's); counts and behaviour past it are zero.
``cut: stored`` reads a file written by ``ldns sample/encode --out FILE.nwb`` with the options it
records (:mod:`ldns_plugins.nwb.stored`), so a spec needs only its path.

Memory: with ``lazy: true``, or by default when the counts with the spike times and behaviour
would take more than ``memory_limit_mb`` (null: :func:`ldns_framework.limits.memory_budget`),
the counts are not binned at load: each unit's spike milliseconds and the windows' starts and
lengths are kept (:class:`~ldns_plugins.nwb.binned.BinnedWindows`) and every read (a batch, a
block of ``ldns data``'s summary) bins just its windows; a directory's files are joined by
:class:`~ldns_framework.io.lazy.ConcatenatedRows`. Behaviour covariates are computed at load
and stay in memory. Silent units are found by binary search of the spike times, not by binning.
With ``lazy: false`` a selection over the limit is refused before anything is binned.

``metadata``: ``unit_ids`` (as loaded), ``n_heldin``/``n_heldout``, ``trial_ids``, ``trial_split``,
the cut's options, and ``listing`` (label -> line: the units, splits, windows and files selected;
``ldns data`` prints it, :mod:`ldns_plugins.nwb.listing`).

Splits: ``splits: reference`` is LDNS's split of MC_Maze: train = every "train" trial and the
first half of the "val" trials (in file order); the other half of "val" is split by
``torch.utils.data.random_split([n // 4, n - n // 4], Generator().manual_seed(split_seed))``
into val and test. ``splits: file`` makes one split per value of the split column.

Usage::

    data = NwbSource(NwbConfig(path="000128/sub-Jenkins")).load()   # (trials, 140, 182), hand_vel (trials, 140, 2)
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from ldns_framework import ConcatenatedRows, DataError, DataSource, LazyCounts, SpikeData, memory_limit_bytes
from ldns_plugins.nwb.binned import BinnedWindows
from ldns_plugins.nwb.config import NwbConfig
from ldns_plugins.nwb.listing import selection_listing

#: Taps of nlb_tools' anti-aliasing filter (``scipy.signal.decimate(..., n=500, ftype="fir")``).
FIR_ORDER = 500


def nwb_files(path: str | Path) -> list[Path]:
    """The file itself, or the sorted ``*.nwb`` files anywhere below a directory (a dandiset keeps
    them in ``sub-*`` folders); a :class:`DataError` if none."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.nwb") if p.is_file() and not p.name.startswith("."))
        if not files:
            raise DataError(str(path), "no .nwb files in this directory or below it")
        return files
    if not path.is_file():
        raise DataError(str(path), "no such file or directory")
    return [path]


@contextmanager
def open_nwb(path: Path) -> Iterator[Any]:
    """The file's NWBFile, opened read-only (datasets stay lazy while the context is open)."""
    import warnings

    from pynwb import NWBHDF5IO

    try:
        io = NWBHDF5IO(str(path), mode="r")
    except Exception as exc:  # noqa: BLE001 - h5py/hdmf raise many kinds for a bad file
        raise DataError(path.name, f"not a readable NWB file ({type(exc).__name__}: {exc})") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nwbfile = io.read()
        yield nwbfile
    finally:
        io.close()


def _text(values: np.ndarray) -> np.ndarray:
    """Strings as str (h5py gives bytes)."""
    return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values], dtype=object)


def spike_ms(times: np.ndarray) -> np.ndarray:
    """nlb_tools' millisecond of each spike: ``floor(round(t * 1000, 6))``, sorted, int64."""
    return np.sort(np.floor(np.round(np.asarray(times, dtype=np.float64) * 1000.0, 6)).astype(np.int64))


def window_starts_ms(event_s: np.ndarray, offset_ms: int, bin_ms: int) -> np.ndarray:
    """First-bin start of each window: ``event + offset`` rounded up to the ``bin_ms`` grid (ns precision)."""
    start_ns = np.round(np.asarray(event_s, dtype=np.float64) * 1e9).astype(np.int64) + offset_ms * 1_000_000
    bin_ns = bin_ms * 1_000_000
    return -(-start_ns // bin_ns) * bin_ms


def behaviour_on_bins(timestamps_s: np.ndarray, values: np.ndarray, end_ms: int, starts_ms: np.ndarray,
                      n_bins: int, bin_ms: int) -> np.ndarray:
    """(windows, n_bins, dim): the series on the 1 ms grid [0, end_ms), decimated by ``bin_ms`` as nlb_tools
    does, read at each window's bins."""
    from scipy.signal import decimate

    values = values.reshape(len(values), -1)
    grid = np.arange(end_ms, dtype=np.float64)
    sample_ms = np.round(np.asarray(timestamps_s, dtype=np.float64) * 1000.0, 6)
    index = (starts_ms[:, None] // bin_ms) + np.arange(n_bins)[None, :]
    out = np.empty(index.shape + (values.shape[1],))
    for d in range(values.shape[1]):  # one dimension at a time: the 1 ms grid is the memory peak
        column = np.asarray(values[:, d], dtype=np.float64)
        ok = np.isfinite(column) & np.isfinite(sample_ms)
        on_grid = np.interp(grid, sample_ms[ok], column[ok])
        decimated = decimate(on_grid, bin_ms, n=FIR_ORDER, ftype="fir") if bin_ms > 1 else on_grid
        out[..., d] = decimated[index]
    return out


@attrs.frozen
class _FileTrials:
    """What one file contributes."""

    name: str
    unit_ids: np.ndarray
    windows: BinnedWindows  # the counts, binned when read
    behaviour: dict[str, np.ndarray]
    behaviour_units: dict[str, str]
    split_values: np.ndarray
    trial_ids: np.ndarray
    n_heldin: int
    lengths: np.ndarray


def _nbytes(rows: Any) -> int:
    """Bytes of a row source's counts once binned."""
    return math.prod(rows.shape) * rows.dtype.itemsize


class NwbSource(DataSource):
    """Loads trial-aligned spike counts (and behaviour) from one NWB file or a directory of them."""

    config_class = NwbConfig

    def load(self) -> SpikeData:
        if self.config.cut == "stored":
            from ldns_plugins.nwb.stored import stored_config

            return NwbSource(stored_config(self.config)).load()
        cfg = self.config
        parts, skipped = [], []
        files = nwb_files(cfg.path)
        for path in files:
            part = self._read_file(path)
            (parts if part is not None else skipped).append(part if part is not None else path.name)
        if not parts and cfg.cut == "windows":
            raise DataError(f"{cfg.path}: window_ms", f"no {cfg.window_ms} ms window fits in the recording"
                                                      + (f"'s {cfg.intervals}" if cfg.intervals else ""))
        if not parts:
            raise DataError(f"{cfg.path}: trials.{cfg.split_column}",
                            f"no trial has a split in {list(cfg.select)}")
        first = parts[0]
        for part in parts[1:]:
            if not np.array_equal(part.unit_ids, first.unit_ids) or part.n_heldin != first.n_heldin:
                raise DataError(f"{part.name}: units", f"unit ids (held-in then held-out) differ from those of "
                                                       f"{first.name}; all files must have the same units")
        lengths = np.concatenate([p.lengths for p in parts])
        behaviour = {name: np.concatenate([p.behaviour[name] for p in parts]) for name in first.behaviour}
        split_values = np.concatenate([p.split_values for p in parts])
        counts = self._counts([p.windows for p in parts], sum(v.nbytes for v in behaviour.values()))
        if not cfg.allow_silent_units:
            silent = first.unit_ids[sum(p.windows.spikes_per_unit() for p in parts) == 0]
            if silent.size:
                raise DataError(f"{cfg.path}: units", f"units {silent.tolist()[:10]} have no spikes in any selected "
                                                      f"window (allow_silent_units: true keeps them)")
        splits = self._splits(split_values)
        metadata = {
            "source": str(cfg.path), "files": [p.name for p in parts], "skipped_files": skipped,
            "unit_ids": first.unit_ids.tolist(),
            "trial_file": np.concatenate([np.full(len(p.trial_ids), i) for i, p in enumerate(parts)]).tolist(),
            "trial_ids": np.concatenate([p.trial_ids for p in parts]).tolist(),
            "trial_split": split_values.tolist(),
            "n_heldin": first.n_heldin, "n_heldout": len(first.unit_ids) - first.n_heldin,
            "align_event": cfg.align_event, "align_range_ms": list(cfg.align_range_ms), "bin_ms": cfg.bin_ms,
            "behavior_lag_ms": cfg.behavior_lag_ms, "behavior_units": first.behaviour_units, "cut": cfg.cut,
        }
        if cfg.cut == "windows":  # trial_ids are then the windows' start times in ms
            metadata.update(window_ms=cfg.window_ms, stride_ms=cfg.stride_ms or cfg.window_ms,
                            intervals=cfg.intervals, tags=list(cfg.tags))
            for key in ("align_event", "align_range_ms", "trial_split"):
                metadata.pop(key)
        metadata["listing"] = selection_listing(cfg, metadata, splits, n_bins=counts.shape[1])
        return SpikeData(counts, lengths=lengths, covariates=behaviour, bin_width_s=cfg.bin_ms / 1000.0,
                         neuron_ids=tuple(str(i) for i in first.unit_ids), splits=splits, metadata=metadata)

    # -- memory ---------------------------------------------------------------------------------
    def _counts(self, windows: list[BinnedWindows], behaviour_bytes: int) -> np.ndarray | LazyCounts:
        """The counts of all windows: binned now, or (``lazy``) a :class:`LazyCounts` binning each batch when read."""
        rows = windows[0] if len(windows) == 1 else ConcatenatedRows(windows, label=str(self.config.path))
        held = behaviour_bytes + 8 * sum(w.n_spikes for w in windows)  # in memory either way
        lazy = self.config.lazy
        if lazy is None:
            lazy = _nbytes(rows) + held > memory_limit_bytes(self.config.memory_limit_mb)
        self._check_memory(str(self.config.path), rows, held, lazy=lazy)
        if lazy:  # binned spikes are non-negative int32 by construction: nothing to validate
            return LazyCounts(rows, checked=True)
        return rows.read(np.arange(rows.shape[0]))

    def _check_memory(self, field: str, rows: Any, held: int, *, lazy: bool) -> None:
        """Refuse a load whose arrays (``held`` bytes, plus the counts unless ``lazy``) exceed memory_limit_mb."""
        limit = memory_limit_bytes(self.config.memory_limit_mb)
        need = held + (0 if lazy else _nbytes(rows))
        if need > limit:
            n_windows, n_bins, n_units = rows.shape
            what = (f"the spike times and behaviour, the counts ({n_windows} windows x {n_bins} bins x {n_units} "
                    f"units) being binned per batch" if lazy else
                    f"{n_windows} windows x {n_bins} bins x {n_units} units, plus the spike times and behaviour")
            way = "" if lazy else "set lazy: true (or null) to bin each batch when it is read, "
            raise DataError(f"{field}: memory_limit_mb",
                            f"the selection needs about {need / 2**20:.0f} MB ({what}), above the limit of "
                            f"{limit / 2**20:.0f} MB; {way}select fewer trials or units, or raise the limit")

    # -- splits ---------------------------------------------------------------------------------
    def _splits(self, values: np.ndarray) -> dict[str, np.ndarray]:
        cfg = self.config
        if cfg.cut == "windows":
            order = np.random.default_rng(cfg.split_seed).permutation(len(values))
            n_train = round(cfg.window_split[0] * len(values))
            n_val = round(cfg.window_split[1] * len(values))
            parts = np.split(order, [n_train, n_train + n_val])
            return {name: np.sort(part) for name, part in zip(("train", "val", "test"), parts)}
        if cfg.split_column is None:
            return {"train": np.arange(len(values))}
        names = list(dict.fromkeys(values.tolist()))
        if cfg.splits == "file":
            return {name: np.flatnonzero(values == name) for name in names}
        import torch

        val = np.flatnonzero(values == "val")
        half = len(val) // 2
        rest = val[half:]
        order = torch.randperm(len(rest), generator=torch.Generator().manual_seed(cfg.split_seed)).numpy()
        n_val = len(rest) // 4
        splits = {"train": np.sort(np.concatenate([np.flatnonzero(values == "train"), val[:half]])),
                  "val": rest[order[:n_val]], "test": rest[order[n_val:]]}
        for name in names:
            if name not in ("train", "val", "test"):
                splits[name] = np.flatnonzero(values == name)
            elif name == "test":
                splits["test"] = np.concatenate([splits["test"], np.flatnonzero(values == "test")])
        return splits

    # -- one file -------------------------------------------------------------------------------
    def _read_file(self, path: Path) -> _FileTrials | None:
        cfg = self.config
        name = path.name
        with open_nwb(path) as nwb:
            if cfg.cut == "trials":
                cut = self._trial_windows(nwb, name)
                if cut is None:
                    return None
                event, split_values, trial_ids, stop_s, trial_stops = cut
                unit_ids, heldin, unit_ms, observed = self._units(nwb, name)
                start, stop = cfg.align_range_ms
                n_bins = (stop - start) // cfg.bin_ms
                starts = window_starts_ms(event, start, cfg.bin_ms)
                lengths = np.full(len(starts), n_bins, dtype=np.int64)
                if cfg.lengths_from_stop:
                    lengths = self._lengths_to_stop(name, starts, trial_stops, n_bins, trial_ids)
                end_ms = self._check_windows(name, starts, lengths, observed, stop_s, trial_ids)
                beh_starts = window_starts_ms(event, start + cfg.behavior_lag_ms, cfg.bin_ms)
            else:
                unit_ids, heldin, unit_ms, observed = self._units(nwb, name)
                n_bins = cfg.window_ms // cfg.bin_ms
                end_ms = self._recording_end_ms(nwb, unit_ms, observed)
                starts = self._tiled_windows(nwb, name, end_ms)
                if not starts.size:
                    return None
                split_values = np.full(len(starts), "window", dtype=object)
                trial_ids = starts
                lengths = np.full(len(starts), n_bins, dtype=np.int64)
                beh_starts = -(-(starts + cfg.behavior_lag_ms) // cfg.bin_ms) * cfg.bin_ms
            windows = BinnedWindows(unit_ms, starts, lengths, n_bins=n_bins, bin_ms=cfg.bin_ms, label=name)
            grid = 4 * 8 * end_ms if cfg.behavior else 0  # the 1 ms behaviour grid and its filtered copies
            self._check_memory(name, windows, grid + 8 * windows.n_spikes, lazy=cfg.lazy is not False)
            padding = np.arange(n_bins)[None, :] >= lengths[:, None]  # (windows, n_bins): past each trial's stop

            behaviour, units = {}, {}
            for series_name in cfg.behavior:
                series = self._series(nwb, name, series_name)
                field = f"{name}: {cfg.behavior_module}/{series_name}"
                if np.any(beh_starts < 0) or np.any(beh_starts + n_bins * cfg.bin_ms > end_ms):
                    raise DataError(field, f"a behaviour window (lag {cfg.behavior_lag_ms} ms) lies outside the "
                                           f"recording [0, {end_ms}) ms")
                values, times = self._series_data(series, field)
                scale = cfg.behavior_scale if cfg.behavior_scale is not None else float(series.conversion)
                on_bins = behaviour_on_bins(times, values, end_ms, beh_starts, n_bins, cfg.bin_ms) * scale
                on_bins[padding] = 0.0
                behaviour[series_name.rsplit("/", 1)[-1]] = on_bins
                units[series_name] = str(series.unit) if cfg.behavior_scale is None else "scaled"
        return _FileTrials(name=name, unit_ids=unit_ids, windows=windows, behaviour=behaviour, behaviour_units=units,
                           split_values=split_values, trial_ids=np.asarray(trial_ids), n_heldin=int(heldin),
                           lengths=lengths)

    def _trial_windows(self, nwb: Any, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, np.ndarray] | None:
        """Alignment times, split values and ids of the selected trials, the last trial's stop, and the
        selected trials' stop times (s)."""
        cfg = self.config
        trials = nwb.trials
        if trials is None:
            raise DataError(f"{name}: trials", "no trials table (intervals/trials); cut: windows tiles a recording "
                                               "without trials")
        columns = set(trials.colnames)
        keep = np.arange(len(trials))
        split_values = np.full(len(trials), "all", dtype=object)
        if cfg.split_column is not None:
            if cfg.split_column not in columns:
                raise DataError(f"{name}: trials.{cfg.split_column}",
                                f"no such trials column (found: {sorted(columns)})")
            split_values = _text(trials[cfg.split_column].data[:])
            keep = np.flatnonzero(np.isin(split_values, list(cfg.select)))
        if not keep.size:
            return None
        if cfg.align_event not in columns:
            raise DataError(f"{name}: trials.{cfg.align_event}", f"no such trials column (found: {sorted(columns)})")
        event = np.asarray(trials[cfg.align_event].data[:], dtype=np.float64)[keep]
        if not np.all(np.isfinite(event)):
            bad = keep[~np.isfinite(event)]
            raise DataError(f"{name}: trials.{cfg.align_event}", f"not a finite time in trials {bad.tolist()[:10]}")
        trial_ids = np.asarray(trials.id.data[:], dtype=np.int64)[keep]
        stops = np.asarray(trials["stop_time"].data[:], dtype=np.float64)
        return event, split_values[keep], trial_ids, float(np.max(stops)), stops[keep]

    @staticmethod
    def _recording_end_ms(nwb: Any, unit_ms: list[np.ndarray], observed: Any) -> int:
        """The recording's end: the units' last observation interval, else past the last spike, trial or epoch."""
        if observed is not None:
            return observed[1]
        ends = [int(ms[-1]) + 1 for ms in unit_ms if len(ms)]
        for table in (nwb.intervals or {}).values():
            if len(table):
                ends.append(math.ceil(round(float(np.max(table["stop_time"].data[:])) * 1000, 6)))
        return max(ends) if ends else 0

    def _tiled_windows(self, nwb: Any, name: str, end_ms: int) -> np.ndarray:
        """Window starts (ms): from each interval's start rounded up to the bin grid, every stride_ms, while
        the whole window fits before the interval's end and, when behaviour is read, its behaviour window
        (shifted by behavior_lag_ms) fits in the recording."""
        cfg = self.config
        if cfg.intervals is None:
            spans = np.array([[0, end_ms]], dtype=np.int64)
        else:
            tables = nwb.intervals or {}
            if cfg.intervals not in tables:
                raise DataError(f"{name}: intervals/{cfg.intervals}",
                                f"no such interval table (found: {sorted(tables)})")
            table = tables[cfg.intervals]
            starts_s = np.asarray(table["start_time"].data[:], dtype=np.float64)
            stops_s = np.asarray(table["stop_time"].data[:], dtype=np.float64)
            keep = np.ones(len(starts_s), bool)
            if cfg.tags:
                if "tags" not in table.colnames:
                    raise DataError(f"{name}: intervals/{cfg.intervals}.tags", "the table has no tags column")
                keep = np.array([bool(set(_text(np.asarray(row))) & set(cfg.tags)) for row in table["tags"][:]])
                if not keep.any():
                    raise DataError(f"{name}: intervals/{cfg.intervals}.tags",
                                    f"no interval is tagged {list(cfg.tags)}")
            spans = np.stack([np.ceil(np.round(starts_s[keep] * 1000, 6)),
                              np.floor(np.round(stops_s[keep] * 1000, 6))], axis=1).astype(np.int64)
            late = spans[:, 1] > end_ms
            if late.any():
                raise DataError(f"{name}: intervals/{cfg.intervals}",
                                f"interval {np.flatnonzero(late)[:1].tolist()} ends past the recording ({end_ms} ms)")
        stride = cfg.stride_ms or cfg.window_ms
        out = []
        for a, b in spans:
            first = -(-a // cfg.bin_ms) * cfg.bin_ms
            out.append(np.arange(first, b - cfg.window_ms + 1, stride, dtype=np.int64))
        starts = np.concatenate(out) if out else np.zeros(0, np.int64)
        if cfg.behavior:
            behaviour_starts = -(-(starts + cfg.behavior_lag_ms) // cfg.bin_ms) * cfg.bin_ms  # as the loader cuts them
            starts = starts[(behaviour_starts >= 0) & (behaviour_starts + cfg.window_ms <= end_ms)]
        return starts

    def _units(self, nwb: Any, name: str) -> tuple[np.ndarray, int, list[np.ndarray], np.ndarray | None]:
        """Unit ids (held-in then held-out, ascending in each), the held-in count, each unit's spike
        milliseconds, and the first unit's observation intervals in ms ([ceil(start), floor(stop)))."""
        units = nwb.units
        if units is None:
            raise DataError(f"{name}: units", "no Units table")
        if "spike_times" not in units.colnames:
            raise DataError(f"{name}: units.spike_times", "the Units table has no spike_times column")
        ids = np.asarray(units.id.data[:], dtype=np.int64)
        if not ids.size:
            raise DataError(f"{name}: units", "the Units table has no units")
        heldout = np.zeros(len(ids), dtype=bool)
        if self.config.heldout_column in units.colnames:
            heldout = np.asarray(units[self.config.heldout_column].data[:], dtype=bool)
        order = np.lexsort((ids, heldout))
        column = self.config.unit_column
        if column is not None:
            if column not in units.colnames:
                raise DataError(f"{name}: units.{column}", f"no such units column (found: {sorted(units.colnames)})")
            values = _text(np.asarray(units[column].data[:]))
            order = order[np.isin(values[order], list(self.config.unit_values))]
            if not order.size:
                raise DataError(f"{name}: units.{column}", f"no unit has a value in {list(self.config.unit_values)}")
        ends = np.asarray(units["spike_times"].data[:], dtype=np.int64)  # VectorIndex: exclusive end offsets
        times = units["spike_times"].target.data
        all_times = np.asarray(times[:ends[-1]] if ends[-1] else np.zeros(0), dtype=np.float64)
        begins = np.concatenate(([0], ends[:-1]))
        unit_ms = [spike_ms(all_times[begins[i]:ends[i]]) for i in order]
        observed = None
        if "obs_intervals" in units.colnames:
            index = units["obs_intervals"]
            first_end = int(index.data[order[0]])
            first_begin = int(index.data[order[0] - 1]) if order[0] else 0
            intervals = np.asarray(index.target.data[first_begin:first_end], dtype=np.float64).reshape(-1, 2)
            if len(intervals):
                all_ends = np.asarray(index.target.data[:], dtype=np.float64).reshape(-1, 2)[:, 1]
                observed = np.stack([np.ceil(np.round(intervals[:, 0] * 1000, 6)),
                                     np.floor(np.round(intervals[:, 1] * 1000, 6))], axis=1).astype(np.int64)
                observed = (observed, round(float(all_ends.max()) * 1000))
        return ids[order], int((~heldout[order]).sum()), unit_ms, observed

    def _lengths_to_stop(self, name: str, starts: np.ndarray, stops_s: np.ndarray, n_bins: int,
                         trial_ids: np.ndarray) -> np.ndarray:
        """Bins of each window before its trial's stop_time (at most n_bins); an error when a trial
        stops before its first bin ends."""
        stops_ms = np.floor(np.round(stops_s * 1000.0, 6)).astype(np.int64)
        lengths = np.clip((stops_ms - starts) // self.config.bin_ms, 0, n_bins)
        if np.any(lengths < 1):
            bad = trial_ids[lengths < 1]
            raise DataError(f"{name}: trials.stop_time", f"trial ids {bad.tolist()[:10]} stop before the first "
                                                         f"{self.config.bin_ms} ms bin of their window ends")
        return lengths

    def _check_windows(self, name: str, starts: np.ndarray, lengths: np.ndarray, observed: Any, stop_s: float,
                       trial_ids: np.ndarray) -> int:
        """Every spike window (its valid bins) inside the recording (inside one of the units' observation
        intervals, as nlb_tools requires, when the file has them); returns the recording's end in ms."""
        ends = starts + lengths * self.config.bin_ms
        if observed is not None:
            intervals, end_ms = observed
            k = np.searchsorted(intervals[:, 0], starts, "right") - 1
            inside = (k >= 0) & (starts >= intervals[np.maximum(k, 0), 0]) & (ends <= intervals[np.maximum(k, 0), 1])
            where = "the units' obs_intervals"
        else:
            end_ms = math.ceil(round(stop_s * 1000, 6))
            inside = (starts >= 0) & (ends <= end_ms)
            where = f"the recording [0, {end_ms}) ms"
        if not np.all(inside):
            bad = np.flatnonzero(~inside)
            raise DataError(f"{name}: trials.{self.config.align_event}",
                            f"the window {list(self.config.align_range_ms)} ms of trial ids "
                            f"{trial_ids[bad].tolist()[:10]} lies outside {where}")
        return end_ms

    def _series(self, nwb: Any, name: str, series_name: str) -> Any:
        module_name = self.config.behavior_module
        if module_name == "acquisition":
            container: Any = nwb.acquisition
        else:
            if module_name not in nwb.processing:
                raise DataError(f"{name}: processing/{module_name}",
                                f"no such processing module (found: {sorted(nwb.processing)})")
            container = nwb.processing[module_name]
        obj = container
        for part in series_name.split("/"):
            try:
                obj = obj[part]
            except (KeyError, TypeError):
                found = sorted(obj.data_interfaces) if hasattr(obj, "data_interfaces") else sorted(obj)
                raise DataError(f"{name}: {module_name}/{series_name}",
                                f"no behaviour series {part!r} (found: {found})") from None
        if not hasattr(obj, "data") or not hasattr(obj, "conversion"):
            raise DataError(f"{name}: {module_name}/{series_name}", f"not a TimeSeries ({type(obj).__name__})")
        return obj

    @staticmethod
    def _series_data(series: Any, field: str) -> tuple[np.ndarray, np.ndarray]:
        values = np.asarray(series.data[:], dtype=np.float64)
        if series.timestamps is not None:
            times = np.asarray(series.timestamps[:], dtype=np.float64)
        else:
            times = float(series.starting_time or 0.0) + np.arange(len(values)) / float(series.rate)
        if len(times) != len(values) or not len(values):
            raise DataError(field, f"expected as many timestamps as samples (>0), got {len(times)} and {len(values)}")
        if values.ndim > 2:
            raise DataError(field, f"expected a (samples,) or (samples, dim) series, got shape {values.shape}")
        return values, times
