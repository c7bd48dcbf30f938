"""The samples file: generated trials and how they were drawn, as written by ``ldns sample``.

This module is the one place that knows the file's keys; the CLI, the trained model and the
evaluation all read and write through :func:`write_samples` and :func:`read_samples`.

``.npz`` keys (arrays (trials, time, channels), zero past each trial's length):

=================  ==========================================================================
``counts``         spike counts (n, T, N), int32; the only required key
``lengths``        valid bins of each trial (n,); absent: every trial is full length
``latents``        un-normalised generator latents (n, T, D), when stored
``rates``          decoded rates (n, T, N), when stored
``condition``      what the generator was conditioned on, when conditional (normalised, model space)
``covariate/NAME`` the condition in data units as covariate NAME of the generated trials (e.g.
                   ``covariate/hand_vel`` (n, T, 2), ``covariate/reach_angle`` (n, 2) [cos, sin])
``sampler``        name of the sampler used (a key of the generator's ``samplers``)
``sampler_options``  JSON object: that sampler's options as actually used
``sampler_label``  the generator's description of both, e.g. ``<sampler> (steps=25)``
``seed``           seed of the latents (the spikes use seed + 1)
``observation``    observation model that drew the spikes
``provenance``     JSON object: the run's spec, versions and data description
                   (:mod:`ldns_framework.io.provenance`), when known
=================  ==========================================================================

A ``.nwb`` path writes an NWB file instead (:mod:`ldns_framework.nwb.generated`: spike times,
trials, the exact counts, the condition, how they were drawn), which :func:`read_samples` reads
back exactly (counts, lengths, condition, sampler); latents and rates are kept in ``.npz`` only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import attrs
import numpy as np

from ldns_framework.data import SpikeData
from ldns_framework.errors import DataError, LdnsError, shorten
from ldns_framework.io.npz import NpzFile, write_npz
from ldns_framework.io.paths import output_file
from ldns_framework.rundir import atomic_path

__all__ = ["SUFFIXES", "Samples", "check_output", "latest_samples", "read_samples", "write_samples"]

#: File suffixes this module writes and reads.
SUFFIXES = (".npz", ".nwb")
_ARRAYS = ("counts", "lengths", "latents", "rates", "condition")
_TEXT = ("sampler", "sampler_label", "observation")
_JSON = ("sampler_options", "provenance")
_COVARIATE = "covariate/"  # key prefix of Samples.covariates


@attrs.frozen
class Samples:
    """Generated trials: counts (n, T, N), lengths (n,), optionally latents (n, T, D) and rates (n, T, N)."""

    counts: np.ndarray
    lengths: np.ndarray
    latents: np.ndarray | None = None
    rates: np.ndarray | None = None
    condition: np.ndarray | None = None
    sampler: str = ""
    sampler_options: Mapping[str, Any] = attrs.field(factory=dict)
    sampler_label: str = ""
    seed: int | None = None
    observation: str = ""
    provenance: Mapping[str, Any] = attrs.field(factory=dict)
    #: The condition in data units as named covariates (n, ...) of the generated trials
    #: (``Conditioner.sample_covariates``): what behaviour metrics compare decoded behaviour with.
    covariates: Mapping[str, np.ndarray] = attrs.field(factory=dict)

    @property
    def n_trials(self) -> int:
        return int(self.counts.shape[0])

    def info(self) -> dict[str, Any]:
        """How the trials were drawn (JSON-ready; empty entries left out)."""
        info = {"sampler": self.sampler, "sampler_options": dict(self.sampler_options),
                "sampler_label": self.sampler_label, "seed": self.seed, "observation": self.observation}
        return {k: v for k, v in info.items() if v not in ("", None)}

    def to_spike_data(self, bin_width_s: float, metadata: Mapping[str, Any] | None = None) -> SpikeData:
        """The counts as :class:`SpikeData` (for metrics and reports), marked as generated."""
        return SpikeData(self.counts, lengths=self.lengths, covariates=self.covariates, bin_width_s=bin_width_s,
                         metadata={**dict(metadata or {}), "generated": True, **self.info()})


def check_output(path: str | Path, provenance: Mapping[str, Any] | None = None) -> Path:
    """``path`` checked as a samples file before anything is drawn: suffix, directory, an existing
    NWB file; with the run's ``provenance``, that its bins can be written there (NWB: whole ms)."""
    path = output_file(path, SUFFIXES)
    if path.suffix == ".nwb" and provenance and provenance.get("bin_width_s") is not None:
        from ldns_framework.nwb.layout import whole_ms

        whole_ms(provenance["bin_width_s"], "--out")
    return path


def write_samples(samples: Samples, path: str | Path) -> Path:
    """Write ``samples`` to ``path`` (.npz, or .nwb: see above) atomically; returns the path."""
    path = output_file(path, SUFFIXES)
    if path.suffix == ".nwb":
        from ldns_framework.nwb.generated import write_samples_nwb

        return write_samples_nwb(samples, path)
    arrays = {key: getattr(samples, key) for key in _ARRAYS if getattr(samples, key) is not None}
    arrays.update({key: np.array(getattr(samples, key)) for key in _TEXT})
    arrays.update({key: np.array(json.dumps(dict(getattr(samples, key)), sort_keys=True)) for key in _JSON})
    arrays.update({_COVARIATE + name: np.asarray(value) for name, value in samples.covariates.items()})
    if samples.seed is not None:
        arrays["seed"] = np.array(int(samples.seed))
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:  # a handle: numpy adds no suffix
        write_npz(handle, arrays)
    return path


def read_samples(path: str | Path) -> Samples:
    """Read a samples file (only ``counts`` is required, so samples from elsewhere can be evaluated).

    Only the keys above are read, each checked before it is decompressed (:mod:`ldns_framework.io.npz`).
    """
    path = Path(path)
    if path.suffix == ".nwb":
        from ldns_framework.nwb.generated import read_samples_nwb

        return read_samples_nwb(path)
    with NpzFile(path) as archive:
        if "counts" not in archive:
            raise archive.missing("counts")
        arrays = {key: archive.read(key) for key in _ARRAYS if key in archive}
        text = {key: archive.read_text(key) for key in _TEXT if key in archive}
        documents = {key: _json_object(archive.name, key, archive.read_text(key)) for key in _JSON if key in archive}
        seed = archive.read_scalar("seed", "iu") if "seed" in archive else None
        covariates = {key[len(_COVARIATE):]: archive.read(key) for key in archive.keys if key.startswith(_COVARIATE)}
    try:  # the counts and lengths checked as any spike data is
        checked = SpikeData(arrays.pop("counts"), lengths=arrays.pop("lengths", None))
    except DataError as exc:
        raise DataError(f"{archive.name}: {exc.field}", exc.detail) from None
    return Samples(checked.counts, checked.lengths, **arrays, **text, **documents, seed=seed, covariates=covariates)


def _json_object(name: str, key: str, text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, dict):
        raise DataError(f"{name}: {key}", f"expected a JSON object, got {shorten(text)!r}")
    return value


def latest_samples(run_dir: str | Path) -> Path:
    """The newest samples file in ``RUN/samples``; an error saying how to make one when there is none."""
    run_dir = Path(run_dir)
    found = sorted((p for suffix in SUFFIXES for p in (run_dir / "samples").glob(f"*{suffix}")
                    if not p.name.startswith(".")),  # hidden: a temporary being written
                   key=lambda p: p.stat().st_mtime)
    if not found:
        raise LdnsError(f"{run_dir}: no samples in {run_dir / 'samples'}; draw some with "
                        f"`ldns sample {run_dir} --n N --out {run_dir / 'samples' / 'samples.npz'}` or pass --samples")
    return found[-1]
