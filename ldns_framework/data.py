"""The data model: :class:`SpikeData`, what data sources return and the pipeline passes around.

One layout everywhere: ``counts`` is (trials, time, neurons). Variable-length trials are
right-padded; ``lengths`` says how many bins of each trial are real, and padding is never
treated as data.

Validation walks large arrays in blocks (:func:`_blocks`), so checking a dataset never
allocates a temporary the size of the data.

``counts`` may also be a :class:`~ldns_framework.io.lazy.LazyCounts`: counts left in a
file, read per batch (a data source's ``lazy`` option). Validation, summaries and
subsets then read the file in blocks and never hold it whole; :meth:`SpikeData.in_memory`
loads it when a step needs a plain array.
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Mapping

import attrs
import numpy as np

from ldns_framework.errors import DataError, shown
from ldns_framework.io.lazy import LazyCounts

CANONICAL_LAYOUT = ("trials", "time", "neurons")
#: Largest spike count per bin: counts are stored as int32 (in memory, in samples files, on the device).
MAX_COUNT = int(np.iinfo(np.int32).max)
#: Elements per block when validating, so no check allocates more than a few MB beside the data.
_BLOCK = 1 << 20
#: dtype kinds accepted as numbers: signed, unsigned, float (bool, complex, strings, objects are not).
_REAL_KINDS = "iuf"


def _blocks(array: np.ndarray | LazyCounts) -> Iterator[np.ndarray]:
    """Views of ``array`` (never copies) of at most about ``_BLOCK`` elements, covering it once;
    lazy counts are read a block of trials at a time."""
    if isinstance(array, LazyCounts):
        yield from (block for _, block in _trial_blocks(array))
        return
    if array.ndim == 0 or array.size <= _BLOCK:
        yield array
        return
    rows = _BLOCK // (array.size // array.shape[0])
    if rows < 1:
        for row in array:
            yield from _blocks(row)
        return
    for start in range(0, array.shape[0], rows):
        yield array[start:start + rows]


def _real_range(array: np.ndarray, field: str, what: str) -> tuple[int | float, int | float]:
    """(min, max) of a non-empty real array as Python numbers, refusing NaN and infinity; in blocks."""
    lows, highs = [], []
    for block in _blocks(array):
        if array.dtype.kind == "f" and not np.isfinite(block).all():
            raise DataError(field, f"expected finite {what}, found NaN or infinity")
        lows.append(block.min())
        highs.append(block.max())
    return min(lows).item(), max(highs).item()


def _integral(array: np.ndarray) -> bool:
    """True when every value of a float array is a whole number (in blocks)."""
    return all(np.array_equal(block, np.floor(block)) for block in _blocks(array))


def _field_array(value: Any, field: str) -> np.ndarray:
    """``value`` as an array, or a :class:`DataError` naming ``field`` (ragged lists, odd objects)."""
    try:
        return value if isinstance(value, np.ndarray) else np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise DataError(field, f"expected an array, got {type(value).__name__} ({str(exc)[:100]})") from None


def _as_array(value: Any) -> np.ndarray | LazyCounts:
    return value if isinstance(value, LazyCounts) else _field_array(value, "counts")


def _trial_blocks(counts: np.ndarray | LazyCounts) -> Iterator[tuple[int, np.ndarray]]:
    """(first trial, block) pairs covering ``counts`` in whole trials of about ``_BLOCK`` elements."""
    step = max(1, _BLOCK // max(1, counts.shape[1] * counts.shape[2]))
    for start in range(0, counts.shape[0], step):
        yield start, counts[start:start + step]


def _validate_counts(counts: np.ndarray | LazyCounts) -> np.ndarray | LazyCounts:
    """The counts as integers (int32 or int64; lazy counts are read as such), or a :class:`DataError`.
    Lazy counts are read through once, in blocks; views of checked ones (subsets) are not read again."""
    if isinstance(counts, LazyCounts) and counts.checked:
        return counts
    if counts.ndim != 3:
        raise DataError("counts", f"expected a 3-d array (trials, time, neurons), got shape {counts.shape}")
    if counts.shape[1] == 0 or counts.shape[2] == 0:
        raise DataError("counts", f"expected at least one time bin and one neuron, got shape {counts.shape}")
    if counts.dtype.kind not in _REAL_KINDS:
        raise DataError("counts", f"expected integer spike counts (an integer or whole-valued float array), "
                                  f"got dtype {counts.dtype}")
    if counts.size:
        low, high = _real_range(counts, "counts", "counts")
        if low < 0:
            raise DataError("counts", f"expected non-negative counts, found {low}")
        if high > MAX_COUNT:
            raise DataError("counts", f"expected counts of at most {MAX_COUNT} per bin (int32), found {high}")
        if counts.dtype.kind == "f" and not _integral(counts):
            raise DataError("counts", "expected integer-valued counts, found fractional values")
    counts = counts if counts.dtype in (np.int32, np.int64) else counts.astype(np.int32)
    return counts.as_checked() if isinstance(counts, LazyCounts) else counts


def _checked_bin_width(width: Any) -> float:
    """A finite positive number of seconds (a 0-d array from a file counts as a number)."""
    if isinstance(width, np.ndarray) and width.ndim == 0:
        width = width.item()
    number = isinstance(width, (int, float, np.integer, np.floating)) and not isinstance(width, (bool, np.bool_))
    try:
        value = float(width) if number else math.nan
    except OverflowError:  # an int beyond float range
        value = math.inf
    if not math.isfinite(value) or value <= 0:
        got = shown(width) if number or isinstance(width, (bool, np.bool_)) else type(width).__name__
        raise DataError("bin_width_s", f"expected a finite positive number of seconds, got {got}")
    return value


@attrs.frozen(eq=False)
class SpikeData:
    """Binned spike counts with trial lengths, covariates, splits and provenance.

    Validated on construction: every error names the field and what was expected.
    """

    counts: np.ndarray | LazyCounts = attrs.field(converter=_as_array)
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
        object.__setattr__(self, "bin_width_s", _checked_bin_width(self.bin_width_s))
        object.__setattr__(self, "neuron_ids", self._checked_neuron_ids(n_neurons))
        object.__setattr__(self, "splits", self._checked_splits(n_trials))
        if not isinstance(self.metadata, Mapping):
            raise DataError("metadata", f"expected a mapping, got {type(self.metadata).__name__}")
        object.__setattr__(self, "metadata", dict(self.metadata))

    def _checked_lengths(self, n_trials: int, n_time: int) -> np.ndarray:
        if self.lengths is None:
            return np.full(n_trials, n_time, dtype=np.int64)
        lengths = _field_array(self.lengths, "lengths")
        if lengths.shape != (n_trials,):
            raise DataError("lengths", f"expected shape ({n_trials},) (one per trial), got {lengths.shape}")
        if not lengths.size:
            return lengths.astype(np.int64)
        if lengths.dtype.kind not in _REAL_KINDS:
            raise DataError("lengths", f"expected integer lengths, got dtype {lengths.dtype}")
        low, high = _real_range(lengths, "lengths", "lengths")
        if low <= 0 or high > n_time:
            raise DataError("lengths", f"expected every length in (0, {n_time}], found range [{low}, {high}]")
        if lengths.dtype.kind == "f" and not _integral(lengths):
            raise DataError("lengths", f"expected integer lengths, got fractional values (dtype {lengths.dtype})")
        return lengths.astype(np.int64)

    def _checked_covariates(self, n_trials: int, n_time: int) -> dict[str, np.ndarray]:
        if not isinstance(self.covariates, Mapping):
            raise DataError("covariates", f"expected a mapping of name -> array, got {type(self.covariates).__name__}")
        checked = {}
        for name, value in self.covariates.items():
            field = f"covariates[{name!r}]"
            array = _field_array(value, field)
            if array.dtype.kind not in _REAL_KINDS:
                raise DataError(field, f"expected a real numeric array, got dtype {array.dtype}")
            if array.ndim not in (2, 3):
                raise DataError(field, f"expected shape (trials, dim) or (trials, time, dim), got {array.shape}")
            if array.shape[0] != n_trials:
                raise DataError(field, f"expected {n_trials} trials on axis 0, got {array.shape[0]}")
            if array.ndim == 3 and array.shape[1] != n_time:
                raise DataError(field, f"expected {n_time} time bins on axis 1, got {array.shape[1]}")
            if array.size:
                _real_range(array, field, "values (pad with zeros: lengths mark the valid bins)")
            checked[str(name)] = array
        return checked

    def _checked_neuron_ids(self, n_neurons: int) -> tuple[str, ...]:
        if self.neuron_ids is None:
            return tuple(str(i) for i in range(n_neurons))
        try:
            if isinstance(self.neuron_ids, (str, bytes)):
                raise TypeError
            ids = tuple(str(i) for i in self.neuron_ids)
        except TypeError:  # not iterable (a number, a 0-d array) or a single string
            raise DataError("neuron_ids", f"expected a sequence of {n_neurons} ids, "
                                          f"got {type(self.neuron_ids).__name__}") from None
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
            index = _field_array(value, field)
            if index.ndim != 1 or (index.size and index.dtype.kind not in "iu"):
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
        axes = tuple(layout.split()) if isinstance(layout, str) else ()
        if sorted(axes) != sorted(CANONICAL_LAYOUT):
            raise DataError("layout", f"expected a permutation of {' '.join(CANONICAL_LAYOUT)!r}, got {shown(layout)}")
        array = _as_array(counts)
        if isinstance(array, LazyCounts):
            if axes != CANONICAL_LAYOUT:
                raise DataError("layout", "lazy counts are opened in the canonical layout (the source reorders "
                                          f"them); got layout {shown(layout)}")
            return cls(array, **kwargs)
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

    @property
    def lazy(self) -> bool:
        """Whether the counts stay in their file (read per batch) rather than in memory."""
        return isinstance(self.counts, LazyCounts)

    def in_memory(self) -> "SpikeData":
        """This data with its counts loaded into memory (itself when they already are); for steps
        that need every trial at once (refused above the memory limit, see :class:`LazyCounts`)."""
        if not self.lazy:
            return self
        return attrs.evolve(self, counts=np.asarray(self.counts))

    def subset(self, indices: Any) -> "SpikeData":
        """The given trials, in that order; splits are dropped (they index the full set).
        Lazy counts stay lazy: the subset is an index into the same file."""
        index = np.asarray(indices, dtype=np.int64)
        return SpikeData(
            counts=self.counts.take(index) if self.lazy else self.counts[index],
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
        mask = self.mask()  # (trials, time)
        total = float(sum(int(block.sum(axis=2, dtype=np.int64)[mask[start:start + len(block)]].sum())
                          for start, block in _trial_blocks(self.counts)))  # valid bins, a block of trials at a time
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
