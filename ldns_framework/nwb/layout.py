"""Where generated (or encoded) trials lie on the clock of an NWB file written by the framework.

Binned trials have no time of their own; to store them as spike times and trials rows they are
laid on one clock, back to back: trial i starts at ``base + i * stride`` ms, ``stride`` the
window rounded up past its end to a multiple of ``lcm(bin_ms, 100)`` (700 ms windows start every
800 ms, as the Neural Latents Benchmark's test trials do), so every bin starts on the bin grid and
windows never touch. A trial of ``length`` valid bins stops at ``start + length * bin_ms``.

Each trial also gets an alignment event, so that the ``nwb`` data source cuts the same bins: when
the run's data were cut the Neural Latents Benchmark way (``align_event``, ``align_range_ms``)
with the same window, the same event column and offset are used (a model trained on MC_Maze
writes ``move_onset_time`` 250 ms into each window); otherwise an ``onset_time`` column at each
window's start. :meth:`TrialLayout.read_back` gives the ``nwb`` source options that read the file
back bin for bin.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import attrs
import numpy as np

from ldns_framework.errors import LdnsError

__all__ = ["GENERATED_SPLIT", "TrialLayout", "whole_ms"]

#: The split-column value of generated trials (the ``nwb`` source's default selection includes it).
GENERATED_SPLIT = "train"
_ONSET = "onset_time"
#: Columns the writer fills itself: an event column of the training data with one of these names is not reused.
_TABLE_COLUMNS = ("start_time", "stop_time", "split", "n_bins", "sample_index", "trial_index")


def whole_ms(bin_width_s: float, path: str) -> int:
    """The bin width in whole milliseconds; an error when it is not one (the ``nwb`` source bins on ms)."""
    ms = round(float(bin_width_s) * 1000.0, 6)
    if ms < 1 or ms != int(ms):
        raise LdnsError(f"{path}: the bin width is {ms:g} ms; NWB output needs a whole number of milliseconds "
                        "(the nwb data source bins spike times on a 1 ms clock, so it could not read these bins "
                        "back exactly); write .npz instead")
    return int(ms)


@attrs.frozen
class TrialLayout:
    """Trials of ``n_bins`` bins of ``bin_ms`` ms, ``lengths`` of them valid, laid back to back."""

    bin_ms: int
    n_bins: int
    lengths: np.ndarray
    event_column: str = _ONSET
    offset_ms: int = 0  # the first bin starts offset_ms after the event (<= 0: the event lies inside)

    @classmethod
    def for_run(cls, bin_ms: int, n_bins: int, lengths: np.ndarray, data: Mapping[str, Any]) -> "TrialLayout":
        """The layout of a run's trials; ``data`` is the run's data description (its source's
        ``align_event`` and ``align_range_ms`` are reused when the window is the same)."""
        event, window = data.get("align_event"), data.get("align_range_ms")
        if (isinstance(event, str) and event and event not in _TABLE_COLUMNS and window is not None
                and len(window) == 2 and int(window[1]) - int(window[0]) == n_bins * bin_ms
                and int(window[0]) <= 0 and int(window[0]) % bin_ms == 0):
            return cls(bin_ms, n_bins, np.asarray(lengths, dtype=np.int64), event, int(window[0]))
        return cls(bin_ms, n_bins, np.asarray(lengths, dtype=np.int64))

    @property
    def window_ms(self) -> int:
        return self.n_bins * self.bin_ms

    @property
    def starts_ms(self) -> np.ndarray:
        """(trials,) int64: each trial's first bin, in ms."""
        step = self.bin_ms * 100 // math.gcd(self.bin_ms, 100)
        stride = (self.window_ms // step + 1) * step
        return np.arange(len(self.lengths), dtype=np.int64) * stride

    @property
    def stops_ms(self) -> np.ndarray:
        """(trials,) int64: the end of each trial's last valid bin, in ms."""
        return self.starts_ms + self.lengths * self.bin_ms

    @property
    def events_ms(self) -> np.ndarray:
        return self.starts_ms - self.offset_ms

    def bin_times_s(self) -> np.ndarray:
        """(trials * n_bins,) float64: the start of every bin, trial after trial (timestamps of per-bin series)."""
        return ((self.starts_ms[:, None] + self.bin_ms * np.arange(self.n_bins)[None, :]) / 1000.0).reshape(-1)

    def read_back(self) -> dict[str, Any]:
        """Options of the ``nwb`` data source that cut these trials again, bin for bin."""
        return {"cut": "trials", "align_event": self.event_column,
                "align_range_ms": [self.offset_ms, self.offset_ms + self.window_ms], "bin_ms": self.bin_ms,
                "split_column": "split", "select": [GENERATED_SPLIT], "splits": "file", "behavior": [],
                "allow_silent_units": True, "lengths_from_stop": True}
