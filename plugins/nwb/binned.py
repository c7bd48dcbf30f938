"""Spike times binned into counts over windows: all at once, or a batch of windows when read.

:class:`BinnedWindows` keeps each unit's sorted spike milliseconds and the windows' starts and
valid lengths; ``read(rows)`` bins just those windows (:func:`bin_spikes`) and zeroes the bins
past each window's length. The eager load reads every row; the lazy one hands the object to
:class:`ldns_framework.io.lazy.LazyCounts` as its row source, so a batch costs its own counts
and the spike times stay the only per-recording arrays in memory.

Usage::

    windows = BinnedWindows(unit_ms, starts_ms, lengths, n_bins=140, bin_ms=5, label="session.nwb")
    batch = windows.read(np.array([3, 8, 9]))   # (3, 140, units) int32
    spikes = windows.spikes_per_unit()          # (units,) spikes in the valid bins of all windows
"""

from __future__ import annotations

import numpy as np

__all__ = ["BinnedWindows", "bin_spikes"]


def bin_spikes(unit_ms: list[np.ndarray], starts_ms: np.ndarray, n_bins: int, bin_ms: int) -> np.ndarray:
    """(windows, n_bins, units) int32: spikes of each unit with ms in ``[start + bin*j, start + bin*(j+1))``."""
    n_win = len(starts_ms)
    counts = np.zeros((n_win * n_bins, len(unit_ms)), dtype=np.int32)  # the result's memory, nothing more
    ends = starts_ms + n_bins * bin_ms
    for u, ms in enumerate(unit_ms):
        lo, hi = np.searchsorted(ms, starts_ms, "left"), np.searchsorted(ms, ends, "left")
        sizes = hi - lo
        total = int(sizes.sum())
        if not total:
            continue
        window = np.repeat(np.arange(n_win), sizes)
        first = np.repeat(lo - np.concatenate(([0], np.cumsum(sizes)[:-1])), sizes)
        spikes = ms[np.arange(total) + first]
        flat = window * n_bins + (spikes - starts_ms[window]) // bin_ms
        counts[:, u] = np.bincount(flat, minlength=n_win * n_bins)
    return counts.reshape(n_win, n_bins, len(unit_ms))


class BinnedWindows:
    """Counts (windows, n_bins, units) int32 of spike times, binned when read (a
    :class:`~ldns_framework.io.lazy.RowSource`)."""

    dtype = np.dtype(np.int32)

    def __init__(self, unit_ms: list[np.ndarray], starts_ms: np.ndarray, lengths: np.ndarray, *, n_bins: int,
                 bin_ms: int, label: str) -> None:
        self.label = label
        self.shape = (len(starts_ms), n_bins, len(unit_ms))
        self._unit_ms = unit_ms  # per unit: sorted spike milliseconds
        self._starts = np.asarray(starts_ms, dtype=np.int64)  # (windows,) first bin's start, ms
        self._lengths = np.asarray(lengths, dtype=np.int64)  # (windows,) valid bins
        self._bin_ms = bin_ms

    @property
    def n_spikes(self) -> int:
        """Spike times held (for memory estimates)."""
        return sum(len(ms) for ms in self._unit_ms)

    def read(self, rows: np.ndarray) -> np.ndarray:
        """Windows ``rows`` binned, zero past each one's valid length: (len(rows), n_bins, units) int32."""
        counts = bin_spikes(self._unit_ms, self._starts[rows], self.shape[1], self._bin_ms)
        counts[np.arange(self.shape[1])[None, :] >= self._lengths[rows, None]] = 0  # padding (rows, n_bins)
        return counts

    def spikes_per_unit(self) -> np.ndarray:
        """(units,) int64: spikes of each unit in the valid bins of every window (a spike in two
        overlapping windows counts twice), found by binary search without binning."""
        ends = self._starts + self._lengths * self._bin_ms
        return np.array([int((np.searchsorted(ms, ends, "left") - np.searchsorted(ms, self._starts, "left")).sum())
                         for ms in self._unit_ms], dtype=np.int64)
