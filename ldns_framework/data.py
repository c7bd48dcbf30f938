"""The data model: :class:`SpikeData`, what data sources return and the pipeline passes around.

One layout everywhere: ``counts`` is (trials, time, neurons). Variable-length trials are
right-padded; ``lengths`` says how many bins of each trial are real, and padding is never
treated as data.
"""

from __future__ import annotations

from typing import Any, Mapping

import attrs
import numpy as np

from ldns_framework.errors import DataError

CANONICAL_LAYOUT = ("trials", "time", "neurons")


def _as_array(value: Any) -> np.ndarray:
    return value if isinstance(value, np.ndarray) else np.asarray(value)


def _validate_counts(counts: np.ndarray) -> np.ndarray:
    if counts.ndim != 3:
        raise DataError("counts", f"expected a 3-d array (trials, time, neurons), got shape {counts.shape}")
    if counts.dtype == bool or not np.issubdtype(counts.dtype, np.number):
        raise DataError("counts", f"expected integer spike counts, got dtype {counts.dtype}")
    if np.issubdtype(counts.dtype, np.integer):
        if counts.size and counts.min() < 0:
            raise DataError("counts", f"expected non-negative counts, found {counts.min()}")
        return counts
    if not np.isfinite(counts).all():
        raise DataError("counts", "expected finite counts, found NaN or infinity")
    if counts.size and counts.min() < 0:
        raise DataError("counts", f"expected non-negative counts, found {counts.min()}")
    if not np.array_equal(counts, np.round(counts)):
        raise DataError("counts", "expected integer-valued counts, found fractional values")
    return counts.astype(np.int32)


@attrs.frozen(eq=False)
class SpikeData:
    """Binned spike counts with trial lengths, covariates, splits and provenance.

    Validated on construction: every error names the field and what was expected.
    """

    counts: np.ndarray = attrs.field(converter=_as_array)
    lengths: np.ndarray | None = attrs.field(default=None)
    covariates: Mapping[str, np.ndarray] = attrs.field(factory=dict)
    bin_width_s: float = 0.005
    neuron_ids: tuple[str, ...] | None = None
    splits: Mapping[str, np.ndarray] = attrs.field(factory=dict)
    metadata: Mapping[str, Any] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        counts = _validate_counts(self.counts)
        n_trials, n_time, n_neurons = counts.shape
        object.__setattr__(self, "counts", counts)
        object.__setattr__(self, "lengths", self._checked_lengths(n_trials, n_time))
        object.__setattr__(self, "covariates", self._checked_covariates(n_trials, n_time))
        width = self.bin_width_s
        if isinstance(width, bool) or not isinstance(width, (int, float, np.floating)) or not np.isfinite(width) or width <= 0:
            raise DataError("bin_width_s", f"expected a positive number of seconds, got {width!r}")
        object.__setattr__(self, "bin_width_s", float(width))
        object.__setattr__(self, "neuron_ids", self._checked_neuron_ids(n_neurons))
        object.__setattr__(self, "splits", self._checked_splits(n_trials))
        if not isinstance(self.metadata, Mapping):
            raise DataError("metadata", f"expected a mapping, got {type(self.metadata).__name__}")
        object.__setattr__(self, "metadata", dict(self.metadata))

    def _checked_lengths(self, n_trials: int, n_time: int) -> np.ndarray:
        if self.lengths is None:
            return np.full(n_trials, n_time, dtype=np.int64)
        lengths = np.asarray(self.lengths)
        if lengths.shape != (n_trials,):
            raise DataError("lengths", f"expected shape ({n_trials},) (one per trial), got {lengths.shape}")
        if lengths.size and not np.issubdtype(lengths.dtype, np.integer):
            if not np.issubdtype(lengths.dtype, np.number) or not np.array_equal(lengths, np.round(lengths)):
                raise DataError("lengths", f"expected integer lengths, got dtype {lengths.dtype}")
        lengths = lengths.astype(np.int64)
        if lengths.size and (lengths.min() <= 0 or lengths.max() > n_time):
            raise DataError("lengths", f"expected every length in (0, {n_time}], found range [{lengths.min()}, {lengths.max()}]")
        return lengths

    def _checked_covariates(self, n_trials: int, n_time: int) -> dict[str, np.ndarray]:
        if not isinstance(self.covariates, Mapping):
            raise DataError("covariates", f"expected a mapping of name -> array, got {type(self.covariates).__name__}")
        checked = {}
        for name, value in self.covariates.items():
            field = f"covariates[{name!r}]"
            array = np.asarray(value)
            if not np.issubdtype(array.dtype, np.number):
                raise DataError(field, f"expected a numeric array, got dtype {array.dtype}")
            if array.ndim not in (2, 3):
                raise DataError(field, f"expected shape (trials, dim) or (trials, time, dim), got {array.shape}")
            if array.shape[0] != n_trials:
                raise DataError(field, f"expected {n_trials} trials on axis 0, got {array.shape[0]}")
            if array.ndim == 3 and array.shape[1] != n_time:
                raise DataError(field, f"expected {n_time} time bins on axis 1, got {array.shape[1]}")
            checked[str(name)] = array
        return checked

    def _checked_neuron_ids(self, n_neurons: int) -> tuple[str, ...]:
        if self.neuron_ids is None:
            return tuple(str(i) for i in range(n_neurons))
        ids = tuple(str(i) for i in self.neuron_ids)
        if len(ids) != n_neurons:
            raise DataError("neuron_ids", f"expected {n_neurons} ids (one per neuron), got {len(ids)}")
        if len(set(ids)) != len(ids):
            raise DataError("neuron_ids", "expected unique ids, found duplicates")
        return ids

    def _checked_splits(self, n_trials: int) -> dict[str, np.ndarray]:
        if not isinstance(self.splits, Mapping):
            raise DataError("splits", f"expected a mapping of split name -> trial indices, got {type(self.splits).__name__}")
        if not self.splits:
            return {"train": np.arange(n_trials)}
        checked: dict[str, np.ndarray] = {}
        seen = np.zeros(n_trials, dtype=bool)
        for name, value in self.splits.items():
            field = f"splits[{name!r}]"
            index = np.asarray(value)
            if index.ndim != 1 or (index.size and not np.issubdtype(index.dtype, np.integer)):
                raise DataError(field, f"expected a 1-d array of integer trial indices, got shape {index.shape} dtype {index.dtype}")
            if index.size and (index.min() < 0 or index.max() >= n_trials):
                raise DataError(field, f"expected indices in [0, {n_trials}), found range [{index.min()}, {index.max()}]")
            if np.unique(index).size != index.size:
                raise DataError(field, "expected each trial at most once, found repeated indices")
            if seen[index].any():
                raise DataError(field, "expected disjoint splits, found trials already in another split")
            seen[index] = True
            checked[str(name)] = index.astype(np.int64)
        return checked

    @classmethod
    def from_array(cls, counts: Any, layout: str = "trials time neurons", **kwargs: Any) -> "SpikeData":
        """Build from counts in another axis order, e.g. ``layout="trials neurons time"``."""
        axes = tuple(layout.split())
        if sorted(axes) != sorted(CANONICAL_LAYOUT):
            raise DataError("layout", f"expected a permutation of {' '.join(CANONICAL_LAYOUT)!r}, got {layout!r}")
        array = np.asarray(counts)
        if array.ndim != 3:
            raise DataError("counts", f"expected a 3-d array ({layout}), got shape {array.shape}")
        return cls(np.transpose(array, [axes.index(a) for a in CANONICAL_LAYOUT]), **kwargs)

    @property
    def n_trials(self) -> int:
        return int(self.counts.shape[0])

    @property
    def n_time(self) -> int:
        return int(self.counts.shape[1])

    @property
    def n_neurons(self) -> int:
        return int(self.counts.shape[2])

    def mask(self) -> np.ndarray:
        """Boolean (trials, time): True on valid bins, False on padding."""
        return np.arange(self.n_time)[None, :] < self.lengths[:, None]

    def subset(self, indices: Any) -> "SpikeData":
        """The given trials, in that order; splits are dropped (they index the full set)."""
        index = np.asarray(indices, dtype=np.int64)
        return SpikeData(
            counts=self.counts[index],
            lengths=self.lengths[index],
            covariates={k: v[index] for k, v in self.covariates.items()},
            bin_width_s=self.bin_width_s,
            neuron_ids=self.neuron_ids,
            metadata=self.metadata,
        )

    def split(self, name: str) -> "SpikeData":
        """Trials of one split ('train', 'val', 'test')."""
        if name not in self.splits:
            raise DataError("splits", f"no split named {name!r}; available: {', '.join(self.splits)}")
        return self.subset(self.splits[name])

    def summary(self) -> dict[str, Any]:
        """JSON-ready description: sizes, splits, rates and covariate shapes."""
        valid_bins = int(self.lengths.sum()) * self.n_neurons
        total = float(self.counts[self.mask()].sum())
        return {
            "trials": self.n_trials,
            "splits": {name: int(index.size) for name, index in self.splits.items()},
            "neurons": self.n_neurons,
            "bins": self.n_time,
            "bin_width_s": self.bin_width_s,
            "lengths": {"min": int(self.lengths.min()) if self.n_trials else 0, "max": int(self.lengths.max(initial=0)),
                        "mean": float(self.lengths.mean()) if self.n_trials else 0.0},
            "mean_count_per_bin": total / valid_bins if valid_bins else 0.0,
            "mean_rate_hz": total / valid_bins / self.bin_width_s if valid_bins else 0.0,
            "covariates": {name: list(array.shape) for name, array in self.covariates.items()},
            "metadata": dict(self.metadata),
        }
