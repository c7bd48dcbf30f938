"""The NWB Units table, built from whole columns, and spike times rebuilt from binned counts.

``pynwb``'s ``add_unit`` converts every spike time row by row; :func:`units_table` hands hdmf
whole columns instead (a ragged column is its values plus exclusive end offsets), which is what
makes writing a million spikes take seconds. :func:`spikes_from_counts` places the spikes of
counts the LDNS way (``ldns/utils/eval_utils.py::counts_to_spike_trains``): k spikes in a bin go
at ``bin_start + linspace(0, w, k + 2)[1:-1]``, strictly inside it, computed in whole
microseconds so that binning them again on any clock that rounds to the microsecond gives the
same counts. pynwb and hdmf are imported only when a table is built.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["index_dtype", "spikes_from_counts", "units_table"]


def index_dtype(ends: np.ndarray) -> np.ndarray:
    """Exclusive end offsets of a ragged column, in the smallest unsigned dtype (as hdmf chooses)."""
    ends = np.asarray(ends, dtype=np.int64)
    top = int(ends[-1]) if ends.size else 0
    for dtype in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dtype).max:
            return ends.astype(dtype)
    return ends.astype(np.uint64)


def spikes_from_counts(counts: np.ndarray, starts_us: np.ndarray, bin_us: int) -> tuple[np.ndarray, np.ndarray]:
    """Spike times (s, float64, sorted within each unit, all units concatenated) and each unit's
    exclusive end offset, from ``counts`` (trials, time, units) whose trial i's first bin starts
    at ``starts_us[i]`` microseconds; bins are ``bin_us`` long."""
    n_trials, n_bins, n_units = counts.shape
    by_unit = np.moveaxis(counts, 2, 0)  # (units, trials, time): one unit's spikes stay contiguous
    unit, trial, step = np.nonzero(by_unit)
    k = by_unit[unit, trial, step].astype(np.int64)  # spikes in each non-empty bin
    total = int(k.sum())
    first = np.cumsum(k) - k  # where each bin's spikes begin in the output
    rank = np.arange(total, dtype=np.int64) - np.repeat(first, k)  # 0..k-1 within the bin
    k_each = np.repeat(k, k)
    bin_start = np.repeat(starts_us[trial] + step.astype(np.int64) * bin_us, k)
    offset = (rank + 1) * bin_us // (k_each + 1)  # linspace(0, w, k+2)[1:-1], floored to whole µs
    times = (bin_start + offset) / 1e6
    ends = np.cumsum(np.bincount(unit, weights=k, minlength=n_units)).astype(np.int64)
    return times, ends


def _compressed(io_class: Any, array: np.ndarray) -> Any:
    """gzip for a large column (the intervals repeat for every unit); small ones stay contiguous."""
    return io_class(array, compression="gzip", compression_opts=4) if array.size > 4096 else array


def units_table(ids: Sequence[int], spike_times: np.ndarray, spike_ends: np.ndarray, *, description: str,
                resolution: float, columns: Sequence[Any] = (), obs_intervals: np.ndarray | None = None,
                electrodes: np.ndarray | None = None, electrode_table: Any = None) -> Any:
    """A ``Units`` table from whole columns: ``spike_times`` (s, all units concatenated) split at
    ``spike_ends``, ``obs_intervals`` (k, 2) s the same for every unit, one electrode row per unit
    (``electrodes`` into ``electrode_table``), and further ``columns`` (hdmf ``VectorData``)."""
    from hdmf.backends.hdf5.h5_utils import H5DataIO
    from hdmf.common import DynamicTableRegion, ElementIdentifiers, VectorData, VectorIndex
    from pynwb.misc import Units

    n = len(ids)
    times = VectorData(name="spike_times", description="the spike times for each unit in seconds",
                       data=_compressed(H5DataIO, np.asarray(spike_times, dtype=np.float64)))
    table_columns = [times, VectorIndex(name="spike_times_index", target=times, data=index_dtype(spike_ends))]
    if obs_intervals is not None:
        intervals = np.asarray(obs_intervals, dtype=np.float64).reshape(-1, 2)
        obs = VectorData(name="obs_intervals", description="the observation intervals for each unit",
                         data=_compressed(H5DataIO, np.tile(intervals, (n, 1))))
        table_columns += [obs, VectorIndex(name="obs_intervals_index", target=obs,
                                           data=index_dtype(len(intervals) * np.arange(1, n + 1)))]
    if electrodes is not None:
        region = DynamicTableRegion(name="electrodes", description="the electrodes that each spike unit came from",
                                    data=np.asarray(electrodes, dtype=np.int64), table=electrode_table)
        table_columns += [region, VectorIndex(name="electrodes_index", target=region,
                                              data=index_dtype(np.arange(1, n + 1)))]
    table_columns += list(columns)
    names = [c.name for c in table_columns if not isinstance(c, VectorIndex)]
    return Units(name="units", id=ElementIdentifiers(name="id", data=np.asarray(ids, dtype=np.int64)),
                 columns=table_columns, colnames=names, resolution=resolution, description=description,
                 electrode_table=electrode_table)
