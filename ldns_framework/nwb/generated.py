"""Generated trials (``ldns sample``) and encodings (``ldns encode``) written as NWB files, and read back.

A file holds (``T`` bins of ``w`` ms per trial, laid on the file's clock by
:class:`~ldns_framework.nwb.layout.TrialLayout`):

- ``units``: one row per model channel, ids and the bool ``heldout`` column from the training
  data when its source recorded them (else ids 0..N-1, none held out); ``spike_times`` rebuilt
  from the counts (:func:`~ldns_framework.nwb.units.spikes_from_counts`, whole µs);
  ``obs_intervals`` the trials' valid windows.
- ``intervals/trials``: one row per trial, ``[start, stop)`` its valid bins; ``split``
  (``"train"``), ``n_bins`` (valid bins), ``sample_index`` (samples) or ``trial_index``
  (encodings: the trial's index in the data it came from), the alignment event column, and per-trial
  arrays of shape (trials, dim) as columns ``<name>_<k>`` (a vector condition: ``condition_0``...).
- processing module ``ldns``: the exact counts as an ndx-binned-spikes ``BinnedAlignedSpikes``
  named ``counts`` (units, trials, bins; every trial's T bins, zero past its length), and
  per-bin arrays (trials, T, dim) as ``TimeSeries`` stamped at each bin's start (a sequence
  condition ``condition``; encodings: ``latents``, ``rates`` in spikes per bin, covariates).
- metadata: marked as generated in ``session_description``, ``keywords`` (``synthetic``,
  ``generated``), ``was_generated_by``, the units' description and ``data_collection``; the
  run's resolved spec in ``source_script`` (``source_script_file_name="spec.yaml"``); and one JSON
  document in ``scratch/ldns`` (:data:`RECORD`): ``what`` (samples or encodings), the provenance
  (run, package versions, bin width, ...; :mod:`ldns_framework.io.provenance`), how the samples
  were drawn, ``read_back`` (the ``nwb`` source options that cut the same bins again) and where
  each per-trial array is stored.

Files are written to a temporary beside the target and renamed when complete; an existing file
is never replaced.
"""

from __future__ import annotations

import json
import uuid
import warnings
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from ldns_framework.data import SpikeData
from ldns_framework.errors import DataError, LdnsError, shorten
from ldns_framework.io.encodings import Encoded
from ldns_framework.io.paths import output_file
from ldns_framework.io.samples import Samples
from ldns_framework.limits import format_bytes, memory_budget
from ldns_framework.nwb.layout import GENERATED_SPLIT, TrialLayout, whole_ms
from ldns_framework.nwb.units import spikes_from_counts, units_table
from ldns_framework.rundir import atomic_path

__all__ = ["MODULE", "RECORD", "read_encodings_nwb", "read_samples_nwb", "write_encodings_nwb", "write_samples_nwb"]

#: Name of the processing module holding the exact counts and per-bin arrays.
MODULE = "ldns"
#: Name of the scratch JSON document describing the file (what, provenance, read_back, arrays).
RECORD = "ldns"
_COUNTS = "counts"
_COVARIATE = "covariate_"  # encodings: the data's covariates, apart from latents and rates


# ----------------------------------------------------------------------------------------------
# writing


def write_samples_nwb(samples: Samples, path: str | Path) -> Path:
    """Write ``samples`` as an NWB file (the layout above); ``samples.provenance`` must give the
    bin width (``ldns sample`` fills it from the run)."""
    path = output_file(path, (".nwb",))
    provenance = dict(samples.provenance)
    arrays = {} if samples.condition is None else {"condition": np.asarray(samples.condition)}
    record = {"what": "samples", "sampling": samples.info()}
    return _write(path, samples.counts, samples.lengths, provenance, record, arrays, {},
                  ("sample_index", "index of the generated trial in the samples"),
                  np.arange(samples.n_trials), "sampled by ldns sample")


def write_encodings_nwb(encoded: Encoded, path: str | Path) -> Path:
    """Write ``encoded`` (latents, rates, the real counts and covariates) as an NWB file."""
    path = output_file(path, (".nwb",))
    data = encoded.data
    provenance = {"n_heldin": data.metadata.get("n_heldin"), "align_event": data.metadata.get("align_event"),
                  "align_range_ms": data.metadata.get("align_range_ms"), **dict(encoded.provenance),
                  "bin_width_s": data.bin_width_s, "unit_ids": list(data.neuron_ids)}
    per_trial = {f"{_COVARIATE}{name}": np.asarray(v) for name, v in data.covariates.items()}
    series = {"latents": (encoded.latents, "a.u.", "latents the encoder inferred, at each bin's start"),
              "rates": (encoded.rates, "spikes per bin", "rates the encoder inferred (expected count per bin)")}
    return _write(path, data.counts, data.lengths, {k: v for k, v in provenance.items() if v is not None},
                  {"what": "encodings"}, per_trial, series,
                  ("trial_index", "index of the trial in the data it came from"), encoded.trial_index,
                  "real trials binned by the run's data source (spike times rebuilt from the counts)")


def _write(path: Path, counts: np.ndarray, lengths: np.ndarray, provenance: dict[str, Any], record: dict[str, Any],
           per_trial: Mapping[str, np.ndarray], series: Mapping[str, tuple[np.ndarray, str, str]],
           index_column: tuple[str, str], index: np.ndarray, origin: str) -> Path:
    """Write one file (counts (n, T, N), lengths (n,)); see the module docstring."""
    from hdmf.common import DynamicTableRegion, VectorData
    from hdmf.backends.hdf5.h5_utils import H5DataIO
    from ndx_binned_spikes import BinnedAlignedSpikes
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.core import ScratchData
    from pynwb.file import Subject

    from ldns_framework import __version__

    if provenance.get("bin_width_s") is None:
        raise LdnsError(f"{path}: the bin width of these trials is unknown (no provenance); write them through "
                        "`ldns sample`/`ldns encode`, or pass provenance={'bin_width_s': ...}")
    n_trials, n_bins, n_units = counts.shape
    layout = TrialLayout.for_run(whole_ms(provenance["bin_width_s"], str(path)), n_bins, lengths, provenance)
    ids, heldout, names = _units(provenance, n_units)
    what = record["what"]
    record = {**record, "provenance": {k: v for k, v in provenance.items() if k != "spec"},
              "read_back": layout.read_back(), "per_trial": {}}
    run = f", run {shorten(str(provenance['run']), 200)}" if provenance.get("run") else ""
    sizes = f"{n_trials} trials x {n_bins} bins of {layout.bin_ms} ms x {n_units} units"
    label = (f"GENERATED by ldns-framework {__version__} (ldns sample{run}): {sizes}; not recorded data"
             if what == "samples" else
             f"GENERATED by ldns-framework {__version__} (ldns encode{run}): latents and rates inferred from {sizes} "
             f"of recorded trials; their spike times are rebuilt from the binned counts")
    nwb = NWBFile(session_description=label, identifier=str(uuid.uuid4()), experiment_description=label,
                  session_start_time=datetime.now(timezone.utc).replace(microsecond=0),
                  keywords=["synthetic", "generated", "ldns-framework"], was_generated_by=[["ldns-framework", __version__]],
                  data_collection=f"{label}. Trials laid back to back on this file's clock; the exact counts are in "
                                  f"processing/{MODULE}/{_COUNTS}.",
                  source_script=str(provenance.get("spec", "")) or None,
                  source_script_file_name="spec.yaml" if provenance.get("spec") else None)

    # NWB requires a subject; none was recorded: sex unknown ("U"), age an open range from 0 ("P0D/")
    nwb.subject = Subject(subject_id="generated", sex="U", age="P0D/",
                          description="No subject: these trials were generated by a model trained on recorded data.")
    starts, stops = layout.starts_ms / 1000.0, layout.stops_ms / 1000.0
    heldout_column = VectorData(name="heldout", description="Whether the unit was held out (True) in the training "
                                "data, as its source marked it", data=heldout)
    times, ends = spikes_from_counts(counts, layout.starts_ms * 1000, layout.bin_ms * 1000)
    unit_columns = [heldout_column]
    if names is not None:
        unit_columns.append(VectorData(name="neuron_id", description="the unit's name in the data (not a whole "
                                       "number, so the ids are 0..N-1)", data=names))
    nwb.units = units_table(ids, times, ends, obs_intervals=np.stack([starts, stops], 1), columns=unit_columns,
                            resolution=1e-6, description=f"GENERATED spike times ({origin}): k spikes in a bin at "
                            f"bin_start + linspace(0, w, k + 2)[1:-1], in whole microseconds")

    nwb.add_trial_column(name="split", description=f"always {GENERATED_SPLIT!r} (lets the nwb data source select them)")
    nwb.add_trial_column(name="n_bins", description=f"valid bins of the trial (the others, up to {n_bins}, are padding)")
    nwb.add_trial_column(name=index_column[0], description=index_column[1])
    nwb.add_trial_column(name=layout.event_column, description=f"alignment event (s): the first bin starts "
                                                               f"{layout.offset_ms} ms after it")
    columns: dict[str, list[Any]] = {}
    module = nwb.create_processing_module(name=MODULE, description=f"GENERATED by ldns-framework {__version__}: "
                                          "exact binned counts and per-bin arrays of the trials")
    for name, array in per_trial.items():
        record["per_trial"][name] = _add_array(nwb, module, columns, name, array, layout, "per-trial value", "a.u.")
    for name, (array, unit, description) in series.items():
        record["per_trial"][name] = _add_array(nwb, module, columns, name, array, layout, description, unit)
    events = layout.events_ms / 1000.0
    for i in range(n_trials):
        row = {"split": GENERATED_SPLIT, "n_bins": int(lengths[i]), index_column[0]: int(index[i]),
               layout.event_column: float(events[i]), **{name: values[i] for name, values in columns.items()}}
        nwb.add_trial(start_time=float(starts[i]), stop_time=float(stops[i]), **row)

    region = DynamicTableRegion(name="units_region", description="all units, in the order of the data's units axis",
                                data=np.arange(n_units), table=nwb.units)
    binned = BinnedAlignedSpikes(name=_COUNTS, bin_width_in_ms=float(layout.bin_ms),
                                 event_to_bin_offset_in_ms=float(layout.offset_ms),
                                 data=np.ascontiguousarray(counts.transpose(2, 0, 1), _count_dtype(counts)),
                                 event_timestamps=events, units_region=region)
    binned.set_data_io("data", H5DataIO, {"compression": "gzip", "compression_opts": 4})  # mostly zeros
    module.add(binned)
    nwb.add_scratch(ScratchData(name=RECORD, data=json.dumps(record, sort_keys=True, default=_plain),
                                description="ldns-framework: what this file holds, its provenance and the nwb data "
                                            "source options that read it back (JSON)"))
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # hdmf's notes on the extension's cached namespace
        with NWBHDF5IO(str(tmp), "w") as io:
            io.write(nwb)
    return path


def _add_array(nwb: Any, module: Any, columns: dict[str, list[Any]], name: str, array: np.ndarray,
               layout: TrialLayout, description: str, unit: str) -> dict[str, Any]:
    """A per-trial array as trials columns ((n,) or (n, dim)) or a per-bin TimeSeries ((n, T, dim));
    returns where it went (for the JSON record)."""
    from pynwb import TimeSeries

    if array.ndim == 3:
        module.add(TimeSeries(name=name, data=array.reshape(-1, array.shape[2]), timestamps=layout.bin_times_s(),
                              unit=unit, description=f"{description} (trials x {array.shape[1]} bins, "
                                                      f"zero past each trial's n_bins)"))
        return {"series": f"{MODULE}/{name}", "shape": list(array.shape), "dtype": str(array.dtype)}
    flat = array.reshape(array.shape[0], -1)
    names = [name] if array.ndim == 1 else [f"{name}_{k}" for k in range(flat.shape[1])]
    for k, column in enumerate(names):
        nwb.add_trial_column(name=column, description=f"{name}: {description}, component {k}")
        columns[column] = flat[:, k].tolist()
    return {"columns": names, "shape": list(array.shape), "dtype": str(array.dtype)}


def _units(provenance: Mapping[str, Any], n_units: int) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """Unit ids (the training data's when they are distinct whole numbers, else 0..N-1), the heldout
    flags, and the data's unit names when they could not be the ids."""
    ids, names = np.arange(n_units, dtype=np.int64), None
    given = provenance.get("unit_ids")
    if given is not None and len(given) == n_units:
        try:
            candidate = np.array([int(str(u)) for u in given], dtype=np.int64)
        except ValueError:
            candidate = None
        if candidate is not None and np.unique(candidate).size == n_units:
            ids = candidate
        else:
            names = [str(u) for u in given]
    heldout = np.zeros(n_units, dtype=bool)
    n_heldin = provenance.get("n_heldin")
    if isinstance(n_heldin, int) and 0 <= n_heldin <= n_units:
        heldout[n_heldin:] = True
    return ids, heldout, names


def _count_dtype(counts: np.ndarray) -> type:
    """The smallest unsigned dtype holding every count."""
    top = int(counts.max(initial=0))
    return next(t for t in (np.uint8, np.uint16, np.uint32) if top <= np.iinfo(t).max)


def _plain(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


# ----------------------------------------------------------------------------------------------
# reading


def read_samples_nwb(path: str | Path) -> Samples:
    """The samples in a file :func:`write_samples_nwb` wrote: counts, lengths and condition exactly,
    and how they were drawn."""
    with _open(path, "samples") as (name, nwb, record):
        counts, lengths = _counts(name, nwb)
        arrays = _arrays(name, nwb, record)
        sampling = record.get("sampling") or {}
        spec = nwb.source_script
    seed = sampling.get("seed")
    return Samples(counts, lengths, condition=arrays.get("condition"), sampler=str(sampling.get("sampler", "")),
                   sampler_options=dict(sampling.get("sampler_options") or {}),
                   sampler_label=str(sampling.get("sampler_label", "")), seed=int(seed) if seed is not None else None,
                   observation=str(sampling.get("observation", "")),
                   provenance={**dict(record.get("provenance") or {}), **({"spec": spec} if spec else {})})


def read_encodings_nwb(path: str | Path) -> Encoded:
    """The encodings in a file :func:`write_encodings_nwb` wrote."""
    with _open(path, "encodings") as (name, nwb, record):
        counts, lengths = _counts(name, nwb)
        arrays = _arrays(name, nwb, record)
        index = np.asarray(nwb.trials["trial_index"].data[:], dtype=np.int64)
        named = "neuron_id" in nwb.units.colnames
        ids = tuple(_text(i) for i in (nwb.units["neuron_id"].data[:] if named else nwb.units.id.data[:]))
        spec = nwb.source_script
    provenance = {**dict(record.get("provenance") or {}), **({"spec": spec} if spec else {})}
    latents, rates = arrays.pop("latents"), arrays.pop("rates")
    covariates = {k[len(_COVARIATE):]: v for k, v in arrays.items() if k.startswith(_COVARIATE)}
    data = SpikeData(counts, lengths=lengths, covariates=covariates, bin_width_s=float(provenance["bin_width_s"]),
                     neuron_ids=ids)
    return Encoded(latents, rates, data, index, provenance=provenance)


@contextmanager
def _open(path: str | Path, what: str) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """The file's name for messages, its NWBFile (read-only, lazy) and its JSON record; errors name the file."""
    import ndx_binned_spikes  # noqa: F401 - registers BinnedAlignedSpikes before the file is read
    from pynwb import NWBHDF5IO

    name = shorten(str(path), 300)
    if not Path(path).is_file():
        raise DataError(name, "file not found" if not Path(path).exists() else "expected a file")
    try:
        io = NWBHDF5IO(str(path), mode="r")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nwb = io.read()
    except Exception as exc:  # noqa: BLE001 - h5py/hdmf raise many kinds for a bad file
        raise DataError(name, f"not a readable NWB file ({type(exc).__name__}: {shorten(str(exc), 200)})") from None
    try:
        if RECORD not in nwb.scratch:
            raise DataError(name, f"not an ldns {what} file (no scratch/{RECORD} record; it was not written by "
                                  f"`ldns {'sample' if what == 'samples' else 'encode'} --out FILE.nwb`)")
        try:
            record = json.loads(_text(nwb.scratch[RECORD].data))
        except ValueError:
            record = None
        if not isinstance(record, dict) or record.get("what") != what:
            found = record.get("what") if isinstance(record, dict) else "an unreadable record"
            raise DataError(f"{name}: scratch/{RECORD}", f"expected an ldns {what} file, found {shorten(str(found))}")
        yield name, nwb, record
    finally:
        io.close()


def _text(value: Any) -> str:
    value = value[()] if hasattr(value, "shape") and not isinstance(value, (str, bytes)) else value
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _counts(name: str, nwb: Any) -> tuple[np.ndarray, np.ndarray]:
    """(trials, T, N) int32 counts from the BinnedAlignedSpikes, and the trials' n_bins, size-checked first."""
    field = f"{name}: processing/{MODULE}/{_COUNTS}"
    try:
        stored = nwb.processing[MODULE][_COUNTS].data
    except KeyError:
        raise DataError(field, "missing: no BinnedAlignedSpikes of the counts") from None
    if len(stored.shape) != 3:
        raise DataError(field, f"expected (units, trials, bins) counts, got shape {stored.shape}")
    need = int(np.prod(stored.shape, dtype=np.int64)) * 4
    if need > memory_budget():
        raise DataError(field, f"{stored.shape} counts need {format_bytes(need)}, above the memory limit")
    counts = np.ascontiguousarray(np.asarray(stored[:]).transpose(1, 2, 0).astype(np.int32))
    lengths = np.asarray(nwb.trials["n_bins"].data[:], dtype=np.int64)
    try:
        checked = SpikeData(counts, lengths=lengths)
    except DataError as exc:
        raise DataError(f"{name}: {exc.field}", exc.detail) from None
    return checked.counts, checked.lengths


def _arrays(name: str, nwb: Any, record: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The per-trial arrays the record lists, in their written shape and dtype."""
    out = {}
    for key, where in (record.get("per_trial") or {}).items():
        shape, dtype = tuple(where["shape"]), np.dtype(where["dtype"])
        if "series" in where:
            array = np.asarray(nwb.processing[MODULE][key].data[:])
        else:
            array = np.stack([np.asarray(nwb.trials[c].data[:]) for c in where["columns"]], axis=1)
        if array.size != int(np.prod(shape)):
            raise DataError(f"{name}: {key}", f"expected {shape} values, found {array.shape}")
        out[key] = array.astype(dtype).reshape(shape)
    return out
