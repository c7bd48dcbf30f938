"""Spike counts left on disk: a ``.npy`` file or uncompressed ``.npz`` member, read a batch of trials at a time.

A data set larger than memory is opened with :func:`open_counts`: only the array's header is
read, and :class:`LazyCounts` hands out the trials asked for as ordinary arrays, read from the
file at their byte offsets (one read per run of consecutive trials; :class:`_StoredArray` says
why reads and not a memory map). Subsets (splits) are index arrays into the file, not copies,
so the memory taken is one batch however large the file.

Only bytes stored as they are can be read in place: a member of an archive written with
``np.savez_compressed`` is refused (re-save it with ``np.savez``). Trials must be the first
axis of the stored array (layouts ``trials time neurons`` or ``trials neurons time``, C order),
so that each trial is one contiguous run of bytes.

Usage::

    counts = open_counts("session.npz", key="counts")  # (trials, time, neurons), nothing read yet
    batch = counts[np.array([7, 2, 9])]                 # (3, time, neurons) ndarray, in that order
    train = counts.take(train_index)                    # a view: an index array, no copy

Counts computed rather than stored (e.g. binned from spike times per batch) plug in as any
:class:`RowSource`; :class:`ConcatenatedRows` joins several sources (the files of a directory).
A data source with such counts offers the options :func:`lazy_option` and
:func:`memory_limit_option`; :func:`memory_limit_bytes` turns the latter into bytes.
"""

from __future__ import annotations

import math
import os
import struct
import threading
import weakref
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ldns_framework.config import option
from ldns_framework.errors import MAX_LINE, DataError, shorten
from ldns_framework.io.npz import READ_ERRORS, NpzFile, _read_header, read_npy
from ldns_framework.limits import MEMORY_ENV, format_bytes, memory_budget

__all__ = ["ConcatenatedRows", "LazyCounts", "RowSource", "lazy_option", "memory_limit_bytes",
           "memory_limit_option", "open_counts", "read_counts", "stored_counts_bytes"]

#: Layouts whose trials are the first stored axis (the only ones read trial by trial).
LAZY_LAYOUTS = ("trials time neurons", "trials neurons time")
#: dtype kinds counts may be stored as: signed, unsigned, float (as :mod:`ldns_framework.data` accepts).
_COUNT_KINDS = "iuf"
#: Size of a zip local file header before its file name and extra field.
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")


class RowSource(Protocol):
    """Where :class:`LazyCounts` reads trials from: an array of ``shape`` (rows = trials, in the
    stored axis order) and ``dtype`` whose rows are produced on demand; ``label`` names it in messages."""

    shape: tuple[int, ...]
    dtype: np.dtype
    label: str

    def read(self, rows: np.ndarray) -> np.ndarray:
        """Rows ``rows`` (sorted, in range) as an ndarray of (len(rows), *shape[1:]) and :attr:`dtype`."""
        ...


class ConcatenatedRows:
    """Several row sources of the same trailing shape and dtype, one after the other (one file's
    trials after another's), without copying any of them."""

    def __init__(self, parts: Sequence[RowSource], label: str) -> None:
        if len({(p.shape[1:], np.dtype(p.dtype)) for p in parts}) != 1:
            raise ValueError("expected row sources of one trailing shape and dtype")
        self.label = label
        self.dtype = np.dtype(parts[0].dtype)
        self.shape = (sum(p.shape[0] for p in parts), *parts[0].shape[1:])
        self._parts = tuple(parts)
        self._first = np.cumsum([0] + [p.shape[0] for p in parts])  # first row of each part

    def read(self, rows: np.ndarray) -> np.ndarray:
        """Rows ``rows`` (sorted), each read from the part holding it."""
        out = np.empty((rows.size, *self.shape[1:]), dtype=self.dtype)
        cuts = np.searchsorted(rows, self._first)  # rows[cuts[i]:cuts[i + 1]] lie in part i
        for i, part in enumerate(self._parts):
            if cuts[i + 1] > cuts[i]:
                out[cuts[i]:cuts[i + 1]] = part.read(rows[cuts[i]:cuts[i + 1]] - self._first[i])
        return out


class _StoredArray:
    """A C-order array (rows = trials) at a byte offset of a file, read a set of rows at a time.

    Reads are positioned reads of exactly the rows asked for (one per run of consecutive rows),
    not a memory map: a map's page faults pull in whole page-cache folios (up to 2 MiB each) and
    read-ahead, so reading 128 scattered 32 KiB trials of a 60 MiB file mapped 57 MiB into the
    process (measured); a read moves just the bytes of the batch.
    """

    def __init__(self, path: Path, label: str, offset: int, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.label = label
        self.shape = shape
        self.dtype = dtype
        self._offset = offset
        self._row_bytes = math.prod(shape[1:]) * dtype.itemsize
        self._file = open(path, "rb") if self._row_bytes and shape[0] else None  # noqa: SIM115 - lives with the data
        if self._file is not None:
            weakref.finalize(self, self._file.close)  # closed with the last view of the data
        self._lock = threading.Lock()  # one seek + read at a time (evaluation may read from threads)

    def read(self, rows: np.ndarray) -> np.ndarray:
        """Rows ``rows`` (sorted, in range) of the stored array, read from the file."""
        out = np.empty((rows.size, *self.shape[1:]), dtype=self.dtype)
        if self._file is None or not rows.size:
            return out
        buffer = memoryview(out.reshape(-1).view(np.uint8))
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1  # starts of runs of consecutive rows
        with self._lock:
            for first, last in zip(np.r_[0, breaks], np.r_[breaks, rows.size]):
                self._file.seek(self._offset + int(rows[first]) * self._row_bytes)
                want = (last - first) * self._row_bytes
                got = self._file.readinto(buffer[first * self._row_bytes:last * self._row_bytes])
                if got != want:
                    raise DataError(self.label, f"the file ended early ({got} of {want} bytes read at row "
                                                f"{int(rows[first])}): it was truncated after it was opened")
        return out


class LazyCounts:
    """Counts (trials, time, neurons) read from their file (or any :class:`RowSource`) when indexed;
    an ndarray stand-in.

    Indexing (an int, a slice, an index array or tensor, optionally followed by indices of the
    other axes) returns an ``ndarray`` of :attr:`dtype` holding just those trials, in the order
    asked for. :meth:`take` is a lazy subset (an index array), :meth:`astype` a lazy conversion,
    and ``np.asarray(counts)`` loads everything (refused above the memory limit).
    """

    def __init__(self, stored: RowSource, rows: np.ndarray | None = None, *, swap: bool = False,
                 dtype: np.dtype | None = None, checked: bool = False) -> None:
        self._stored = stored
        #: Whether the values were validated (:class:`~ldns_framework.data.SpikeData` sets it), so that
        #: views of them (:meth:`take`, :meth:`astype`) are not read through once more to check them.
        self.checked = checked
        self._rows = rows  # trial indices into the stored array (None: all, in order)
        self._swap = swap  # stored as (trials, neurons, time)
        shape = stored.shape
        self.shape: tuple[int, int, int] = (len(rows) if rows is not None else shape[0],
                                            *((shape[2], shape[1]) if swap else shape[1:]))
        self.dtype = np.dtype(dtype if dtype is not None else stored.dtype.newbyteorder("="))

    ndim = 3

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """Bytes the counts would take loaded into memory."""
        return self.size * self.dtype.itemsize

    @property
    def label(self) -> str:
        """The file (and member) the counts are read from, for messages."""
        return self._stored.label

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"LazyCounts({self.label}, shape={self.shape}, dtype={self.dtype})"

    def astype(self, dtype: Any) -> LazyCounts:
        """The same trials, read as ``dtype`` (a view: nothing is converted until read)."""
        return LazyCounts(self._stored, self._rows, swap=self._swap, dtype=np.dtype(dtype), checked=self.checked)

    def as_checked(self) -> LazyCounts:
        """This view marked as validated (see :attr:`checked`)."""
        return LazyCounts(self._stored, self._rows, swap=self._swap, dtype=self.dtype, checked=True)

    def take(self, indices: Any) -> LazyCounts:
        """The trials ``indices`` (in that order) as another lazy view: an index array, no data copied."""
        rows = self._stored_rows(np.asarray(indices, dtype=np.int64).reshape(-1))
        return LazyCounts(self._stored, rows, swap=self._swap, dtype=self.dtype, checked=self.checked)

    def __getitem__(self, key: Any) -> np.ndarray:
        """The trials ``key`` selects, read now; other numpy keys load every trial first."""
        rest: tuple[Any, ...] = ()
        if isinstance(key, tuple):
            key, rest = (key[0], key[1:]) if key else (slice(None), ())
        if isinstance(key, (int, np.integer)):
            return self._read(np.array([key], dtype=np.int64))[0][rest]
        if isinstance(key, slice):
            index = np.arange(len(self))[key]
        elif key is Ellipsis:
            index, rest = np.arange(len(self)), (Ellipsis, *rest)
        else:
            index = np.asarray(key)
            if index.dtype == bool and index.shape == (len(self),):
                index = np.flatnonzero(index)
            elif index.ndim != 1 or (index.size and index.dtype.kind not in "iu"):  # e.g. a (trials, time) mask
                return np.asarray(self)[(key, *rest)]  # every trial loaded (refused above the memory limit)
        block = self._read(index.astype(np.int64, copy=False))
        return block[(slice(None), *rest)] if rest else block

    def _stored_rows(self, index: np.ndarray) -> np.ndarray:
        """The stored rows of positions ``index`` of this view (negative ones count from the end)."""
        if index.size and (index.min() < -len(self) or index.max() >= len(self)):
            raise IndexError(f"trial index out of range for {len(self)} trials")
        index = index % max(len(self), 1)
        return index if self._rows is None else self._rows[index]

    def _read(self, index: np.ndarray) -> np.ndarray:
        """Trials ``index`` (positions in this view) as (len(index), time, neurons) of :attr:`dtype`."""
        rows = self._stored_rows(index)
        order = np.argsort(rows, kind="stable")  # read in file order, then put back in the order asked
        stored = self._stored.read(rows[order])
        out = np.empty((index.size, *self.shape[1:]), dtype=self.dtype)  # (B, T, N)
        out[order] = stored.transpose(0, 2, 1) if self._swap else stored
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """Every trial loaded into memory: refused when that exceeds :func:`~ldns_framework.limits.memory_budget`."""
        budget = memory_budget()
        if self.nbytes > budget:
            raise DataError(self.label, f"loading all {len(self)} trials ({format_bytes(self.nbytes)}) into memory "
                                        f"would exceed the limit of {format_bytes(budget)} ({MEMORY_ENV} sets it); "
                                        "use fewer trials or a step that reads them in batches")
        whole = self[:]
        return whole if dtype is None else whole.astype(dtype, copy=False)


def read_counts(path: str | os.PathLike, key: str | None = "counts", layout: str = "trials time neurons", *,
                lazy: bool | None = None, max_bytes: int | None = None) -> np.ndarray | LazyCounts:
    """The counts of a ``.npy`` file (``key`` None) or of member ``key`` of an ``.npz`` archive:
    read into memory, or opened as :class:`LazyCounts` (in the canonical layout) when ``lazy`` is
    true or, for ``lazy=None``, when they would take more than ``max_bytes`` (default
    :func:`~ldns_framework.limits.memory_budget`). Arrays read into memory are in the stored
    ``layout`` and refused above ``max_bytes`` before anything is decompressed.
    """
    limit = memory_budget() if max_bytes is None else int(max_bytes)
    otherwise = "set lazy: false"
    if lazy is None:
        size = stored_counts_bytes(path, key)
        lazy = size > limit
        otherwise = (f"raise the memory limit (memory_limit_mb or {MEMORY_ENV}: the counts take "
                     f"{format_bytes(size)}, over the limit of {format_bytes(limit)}, so they are read lazily)")
    if lazy:
        return open_counts(path, key, layout, otherwise=otherwise)
    if key is None:
        return read_npy(path, max_bytes=limit)
    with NpzFile(path, max_bytes=limit) as archive:
        if key not in archive:
            raise archive.missing(key)
        return archive.read(key)


def stored_counts_bytes(path: str | os.PathLike, key: str | None = None) -> int:
    """Bytes the array takes once read (its .npy header's shape x itemsize), reading only the header;
    of a ``.npy`` file (``key`` None) or of member ``key`` of an ``.npz`` archive, compressed or not."""
    path = Path(path)
    if key is None:
        return _locate(path, None, "")[2]
    _check_member(path, key)
    label = f"{shorten(str(path), MAX_LINE)}: {shorten(key)}"
    try:
        with zipfile.ZipFile(path) as archive, archive.open(f"{key}.npy") as stream:
            shape, _, dtype = _read_header(stream)
    except READ_ERRORS as exc:
        raise DataError(label, f"expected a NumPy array, found an unreadable .npy header ({shorten(str(exc), 200)})") from None
    return math.prod(shape) * dtype.itemsize


def open_counts(path: str | os.PathLike, key: str | None = None, layout: str = "trials time neurons", *,
               otherwise: str = "set lazy: false") -> LazyCounts:
    """Open the counts of a ``.npy`` file (``key`` None) or of member ``key`` of an ``.npz`` archive (header read only).

    ``layout`` is the stored axis order; only :data:`LAZY_LAYOUTS` can be read per trial.
    Every failure is a :class:`DataError` naming the file (and key) and how to fix it;
    ``otherwise`` ends the advice (the caller's other way out, e.g. its option to load eagerly).
    """
    path = Path(path)
    label = shorten(str(path), MAX_LINE) + (f": {shorten(key)}" if key is not None else "")
    if layout not in LAZY_LAYOUTS:
        raise DataError(f"{label}: layout", f"lazy loading reads trial by trial, so trials must be the first "
                                            f"stored axis ({' or '.join(map(repr, LAZY_LAYOUTS))}), got {layout!r}; "
                                            f"re-save the counts with trials first, or {otherwise}")
    offset, (shape, fortran, dtype), _ = _locate(path, key, otherwise)
    if dtype.kind not in _COUNT_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise DataError(label, f"expected integer spike counts (an integer or whole-valued float array), got dtype "
                               f"{shorten(str(dtype), 80)}")
    if len(shape) != 3:
        raise DataError(label, f"expected a 3-d array ({layout}), got shape {shape}")
    if fortran and math.prod(shape) > 1:
        raise DataError(label, "stored in Fortran order, which cannot be read trial by trial; re-save it with "
                               f"np.ascontiguousarray(counts), or {otherwise}")
    return LazyCounts(_StoredArray(path, label, offset, tuple(shape), dtype), swap=layout == LAZY_LAYOUTS[1])


def _locate(path: Path, key: str | None, otherwise: str) -> tuple[int, tuple[tuple[int, ...], bool, np.dtype], int]:
    """(byte offset of the array data, (shape, fortran_order, dtype), data bytes) of a .npy file or .npz member."""
    name = shorten(str(path), MAX_LINE)
    if key is not None:
        _check_member(path, key)
    elif not path.is_file():
        raise DataError(name, "file not found" if not path.exists() else "expected a file")
    label = name + (f": {shorten(key)}" if key is not None else "")
    try:
        with open(path, "rb") as handle:
            start, available = (0, path.stat().st_size) if key is None else _member(handle, path, name, key, otherwise)
            handle.seek(start)
            header = _read_header(handle)
            offset = handle.tell()
    except READ_ERRORS as exc:
        raise DataError(label, f"expected a NumPy array, found an unreadable .npy header ({shorten(str(exc), 200)})") from None
    shape, _, dtype = header
    if any(n < 0 for n in shape) or dtype.itemsize == 0:
        raise DataError(label, f"expected a NumPy array, found an .npy header declaring shape {shorten(str(shape), 80)}")
    n_bytes = math.prod(shape) * dtype.itemsize
    if available < offset - start + n_bytes:
        raise DataError(label, f"declares shape {shape} {dtype} ({format_bytes(n_bytes)}) but holds only "
                               f"{format_bytes(max(available - (offset - start), 0))}: the file is truncated or corrupt")
    return offset, header, n_bytes


def _check_member(path: Path, key: str) -> None:
    """Refuse a missing file, a file that is no zip archive, or one without ``key`` (messages as :class:`NpzFile`'s)."""
    with NpzFile(path, max_bytes=0) as archive:
        if key not in archive:
            raise archive.missing(key)


def _member(handle: Any, path: Path, name: str, key: str, otherwise: str) -> tuple[int, int]:
    """(offset of member ``key``'s bytes in the file, their size); refuses compressed members."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(f"{key}.npy")
    if info.compress_type != zipfile.ZIP_STORED:
        raise DataError(f"{name}: {shorten(key)}", "is compressed, so it cannot be read in place for lazy loading; "
                                                   "re-save the file with np.savez instead of np.savez_compressed, "
                                                   f"or {otherwise}")
    handle.seek(info.header_offset)
    fields = _LOCAL_HEADER.unpack(handle.read(_LOCAL_HEADER.size))
    if fields[0] != b"PK\x03\x04":
        raise DataError(name, "expected a zip local file header at the member's offset: the archive is corrupt")
    name_length, extra_length = fields[-2], fields[-1]
    return info.header_offset + _LOCAL_HEADER.size + name_length + extra_length, info.file_size


def lazy_option(how: str) -> Any:
    """The ``lazy`` option of a data source: ``how`` says what lazy means for it (one sentence, no
    final period); null leaves the choice to the size of the counts."""
    return option(None, doc=f"{how}; null = lazy when the counts exceed memory_limit_mb.")


def memory_limit_option() -> Any:
    """The ``memory_limit_mb`` option of a data source (null: :func:`~ldns_framework.limits.memory_budget`)."""
    return option(None, doc="Most MB the arrays read from the file may take in memory; null = half the memory "
                            f"available ({MEMORY_ENV} sets that).", ge=1)


def memory_limit_bytes(limit_mb: int | None) -> int:
    """The ``memory_limit_mb`` option in bytes: :func:`~ldns_framework.limits.memory_budget` when null."""
    return memory_budget() if limit_mb is None else int(limit_mb) * 2**20
