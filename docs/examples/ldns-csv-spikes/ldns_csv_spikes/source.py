"""The ``csv-spikes`` data source: spike times in a CSV file, binned into (trials, time, neurons) counts.

The file has a header naming (at least) the columns ``trial``, ``neuron`` and ``time``, and one
row per spike: its trial id, its neuron id and its time in seconds from the trial's start::

    trial,neuron,time
    0,3,0.0123
    0,7,0.0410
    1,3,0.0057

Trials and neurons are numbered by their sorted ids (numerically when they are integers; the
neuron ids become ``neuron_ids``); a trial or neuron with no spike at all does not appear, so list every
trial in ``n_trials`` when some are silent. Every trial lasts ``duration_s`` (default: the
latest spike, rounded up to whole bins) and is cut into bins of ``bin_width_s``; counts are the
spikes per bin. Splits are drawn with ``split_seed`` in the ``split`` fractions.

Usage::

    data = CsvSpikes(CsvSpikesConfig(path="session.csv", bin_width_s=0.02)).load()   # SpikeData

In a spec: ``data: {type: csv-spikes, path: session.csv, bin_width_s: 0.02}``.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import attrs
import numpy as np

from ldns_framework import DataError, DataSource, SpikeData, option

COLUMNS = ("trial", "neuron", "time")


def _fractions(_instance: object, _attribute: object, value: tuple[float, float, float]) -> None:
    if len(value) != 3 or min(value) < 0 or abs(sum(value) - 1.0) > 1e-6:
        raise ValueError(f"expected three non-negative fractions (train, val, test) summing to 1, got {list(value)}")


@attrs.frozen
class CsvSpikesConfig:
    """Options of the ``csv-spikes`` data source."""

    path: str = option(doc="Path of the CSV file (columns trial, neuron, time; one row per spike).")
    bin_width_s: float = option(0.01, doc="Bin width in seconds.", gt=0)
    duration_s: float | None = option(None, doc="Trial duration in seconds; null = the latest spike, rounded up "
                                                "to whole bins.", gt=0)
    n_trials: int | None = option(None, doc="Trials 0..n_trials-1 when ids are integers (silent trials "
                                            "included); null = the trial ids found in the file.", ge=1)
    split: tuple[float, float, float] = attrs.field(
        default=(0.7, 0.1, 0.2), validator=_fractions,
        metadata={"ldns_doc": "Train/val/test fractions of the trials."})
    split_seed: int = option(0, doc="Seed of the random split.", ge=0)


def _ids(values: list[str]) -> np.ndarray:
    """Ids as integers when they all are (so they sort numerically), else as strings."""
    stripped = [v.strip() for v in values]
    if all(v.isdigit() for v in stripped):
        return np.array([int(v) for v in stripped], dtype=np.int64)
    return np.array(stripped)


class CsvSpikes(DataSource):
    """Reads and bins one CSV file of spike times."""

    config_class = CsvSpikesConfig

    def _read(self) -> dict[str, np.ndarray]:
        path = Path(self.config.path)
        if not path.is_file():
            raise DataError("data.path", f"file not found: {path}")
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
            if missing:
                raise DataError(str(path), f"missing column(s) {', '.join(missing)}; the header must name "
                                           f"{', '.join(COLUMNS)}, found {', '.join(reader.fieldnames or ()) or 'none'}")
            rows = [(row["trial"], row["neuron"], row["time"]) for row in reader]
        try:
            times = np.array([float(t) for _, _, t in rows], dtype=np.float64)
        except ValueError as exc:
            raise DataError(f"{path}: time", f"expected numbers of seconds ({exc})") from None
        return {"trial": _ids([r[0] for r in rows]), "neuron": _ids([r[1] for r in rows]), "time": times}

    def load(self) -> SpikeData:
        c = self.config
        columns = self._read()
        times = columns["time"]
        if times.size and (not np.isfinite(times).all() or times.min() < 0):
            raise DataError(f"{c.path}: time", "expected finite spike times >= 0 (seconds from the trial's start)")
        duration = c.duration_s or max(c.bin_width_s, math.ceil(times.max(initial=0.0) / c.bin_width_s + 1e-9) * c.bin_width_s)
        n_bins = max(1, int(round(duration / c.bin_width_s)))
        if times.size and times.max() >= n_bins * c.bin_width_s:
            raise DataError(f"{c.path}: time", f"a spike at {times.max():g} s lies past the trial duration "
                                               f"{n_bins * c.bin_width_s:g} s (duration_s)")
        trial_ids = self._trial_ids(columns["trial"])
        neuron_ids = np.unique(columns["neuron"])
        trial = np.searchsorted(trial_ids, columns["trial"])
        neuron = np.searchsorted(neuron_ids, columns["neuron"])
        counts = np.zeros((len(trial_ids), n_bins, len(neuron_ids)), dtype=np.int64)  # (trials, time, neurons)
        np.add.at(counts, (trial, (times / c.bin_width_s).astype(np.int64), neuron), 1)
        return SpikeData(counts, bin_width_s=c.bin_width_s, neuron_ids=tuple(str(n) for n in neuron_ids),
                         splits=self._splits(len(trial_ids)), metadata={"source": str(c.path)})

    def _trial_ids(self, found: np.ndarray) -> np.ndarray:
        ids = np.unique(found)
        if self.config.n_trials is None:
            return ids
        if ids.dtype.kind != "i" or (ids.size and (ids.min() < 0 or ids.max() >= self.config.n_trials)):
            raise DataError(f"{self.config.path}: trial", f"with n_trials={self.config.n_trials}, trial ids must be "
                                                          f"integers 0..{self.config.n_trials - 1}")
        return np.arange(self.config.n_trials)

    def _splits(self, n_trials: int) -> dict[str, np.ndarray]:
        order = np.random.default_rng(self.config.split_seed).permutation(n_trials)
        n_train = int(round(self.config.split[0] * n_trials))
        n_val = int(round(self.config.split[1] * n_trials))
        parts = np.split(order, [n_train, n_train + n_val])
        return {name: np.sort(part) for name, part in zip(("train", "val", "test"), parts)}
