"""Named property checks for data sources: valid SpikeData, sound splits, seeded determinism.

``factory()`` returns a data source; ``load()`` is called on fresh instances (twice for the
determinism check). SpikeData validates itself on construction, so a source whose splits overlap
or run out of range fails inside ``load`` with a DataError on ``splits``: the splits check reports
that under its own name; the kit also re-checks the returned object, since its mappings can be
changed after construction.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ldns_framework.data import SpikeData
from ldns_framework.errors import DataError
from ldns_framework.testing.core import CheckSkipped, Subject, fail, register_check

__all__ = ["DataSubject"]


class DataSubject(Subject):
    """A data source; its first ``load()`` is kept (with the error it raised, if any)."""

    kind = "data"

    def loaded(self) -> SpikeData:
        if not hasattr(self, "_loaded"):
            try:
                self._loaded: Any = self.prepared().load()
            except Exception as exc:  # noqa: BLE001 - kept and reported by the checks
                self._loaded = exc
        if isinstance(self._loaded, Exception):
            raise self._loaded
        return self._loaded


def _check(name: str, **kwargs: Any) -> Any:
    return register_check("data", name, **kwargs)


def _data_or_skip(subject: DataSubject, name: str) -> SpikeData:
    """The loaded data; a load that fails is load_returns_spike_data's failure, so other checks skip."""
    try:
        data = subject.loaded()
    except Exception as exc:  # noqa: BLE001
        raise CheckSkipped(f"{name}: load() failed ({type(exc).__name__}), see load_returns_spike_data") from None
    if not isinstance(data, SpikeData):
        raise CheckSkipped(f"{name}: load() did not return SpikeData, see load_returns_spike_data")
    return data


@_check("load_returns_spike_data")
def _valid(subject: DataSubject, name: str) -> None:
    """load() returns a SpikeData with at least one trial, neuron and bin, and a non-empty 'train' split."""
    try:
        data = subject.loaded()
    except Exception as exc:  # noqa: BLE001
        raise fail(name, f"load() raised {type(exc).__name__}: {exc}") from None
    if not isinstance(data, SpikeData):
        raise fail(name, f"load() must return ldns_framework.SpikeData, got {type(data).__name__}")
    if min(data.counts.shape) < 1:
        raise fail(name, f"the data is empty: counts of shape {data.counts.shape} (trials, time, neurons)")
    if "train" not in data.splits or not len(data.splits["train"]):
        raise fail(name, f"no training trials: splits are {sorted(data.splits)}; the pipeline trains on 'train'")


@_check("splits_are_disjoint_and_in_range")
def _splits(subject: DataSubject, name: str) -> None:
    """Every split holds distinct trial indices within range, and no trial is in two splits."""
    try:
        data = subject.loaded()
    except DataError as exc:
        if str(exc.field).startswith("splits"):
            raise fail(name, f"load() built SpikeData with bad splits: {exc}") from None
        raise CheckSkipped(f"{name}: load() failed, see load_returns_spike_data") from None
    except Exception:  # noqa: BLE001
        raise CheckSkipped(f"{name}: load() failed, see load_returns_spike_data") from None
    if not isinstance(data, SpikeData):
        raise CheckSkipped(f"{name}: load() did not return SpikeData, see load_returns_spike_data")
    seen: dict[int, str] = {}
    for split, index in data.splits.items():
        index = np.asarray(index)
        if index.ndim != 1 or (index.size and not np.issubdtype(index.dtype, np.integer)):
            raise fail(name, f"split {split!r} must be a 1-d array of trial indices, got shape {index.shape} {index.dtype}")
        if index.size and (index.min() < 0 or index.max() >= data.n_trials):
            raise fail(name, f"split {split!r} has indices in [{index.min()}, {index.max()}], outside [0, {data.n_trials})")
        if np.unique(index).size != index.size:
            raise fail(name, f"split {split!r} lists a trial twice")
        for trial in index.tolist():
            if trial in seen:
                raise fail(name, f"trial {trial} is in split {seen[trial]!r} and in split {split!r}: splits must be disjoint")
            seen[trial] = split


@_check("padding_holds_no_spikes")
def _padding(subject: DataSubject, name: str) -> None:
    """Counts past each trial's length are zero (padding is never data)."""
    data = _data_or_skip(subject, name)
    outside = data.counts[~data.mask()]
    if outside.size and outside.any():
        raise fail(name, f"{int((outside != 0).sum())} padded entries (bins past a trial's length) hold spikes")


@_check("loads_are_deterministic")
def _deterministic(subject: DataSubject, name: str) -> None:
    """Two fresh sources with the same config load equal data: counts, lengths, splits, covariates, bin width."""
    first = _data_or_skip(subject, name)
    second = subject.build().load()
    if not isinstance(second, SpikeData):
        raise fail(name, f"the second load returned {type(second).__name__}")
    parts = {"counts": (first.counts, second.counts), "lengths": (first.lengths, second.lengths)}
    parts.update({f"splits[{k!r}]": (first.splits[k], second.splits.get(k)) for k in first.splits})
    parts.update({f"covariates[{k!r}]": (first.covariates[k], second.covariates.get(k)) for k in first.covariates})
    for label, (a, b) in parts.items():
        if b is None or not np.array_equal(a, b):
            raise fail(name, f"two loads with the same config differ in {label}: seed every random draw from the config")
    if set(first.splits) != set(second.splits) or set(first.covariates) != set(second.covariates):
        raise fail(name, "two loads with the same config have different splits or covariates")
    if first.bin_width_s != second.bin_width_s:
        raise fail(name, f"two loads give bin widths {first.bin_width_s} and {second.bin_width_s}")
