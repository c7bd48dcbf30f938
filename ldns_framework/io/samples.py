"""The samples file: generated trials and how they were drawn, as written by ``ldns sample``.

This module is the one place that knows the file's keys; the CLI, the trained model and the
evaluation all read and write through :func:`write_samples` and :func:`read_samples`.

``.npz`` keys (arrays (trials, time, channels), zero past each trial's length):

=================  ==========================================================================
``counts``         spike counts (n, T, N), int32; the only required key
``lengths``        valid bins of each trial (n,); absent: every trial is full length
``latents``        un-normalised generator latents (n, T, D), when stored
``rates``          decoded rates (n, T, N), when stored
``condition``      what the generator was conditioned on, when conditional
``sampler``        name of the sampler used (a key of the generator's ``samplers``)
``sampler_options``  JSON object: that sampler's options as actually used
``sampler_label``  the generator's description of both, e.g. ``<sampler> (steps=25)``
``seed``           seed of the latents (the spikes use seed + 1)
``observation``    observation model that drew the spikes
=================  ==========================================================================
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import attrs
import numpy as np

from ldns_framework.data import SpikeData
from ldns_framework.errors import DataError, LdnsError, shorten
from ldns_framework.io.npz import NpzFile
from ldns_framework.io.paths import output_file
from ldns_framework.rundir import atomic_path

__all__ = ["SUFFIXES", "Samples", "latest_samples", "read_samples", "write_samples"]

#: File suffixes this module writes and reads.
SUFFIXES = (".npz",)
_ARRAYS = ("counts", "lengths", "latents", "rates", "condition")
_TEXT = ("sampler", "sampler_label", "observation")


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
        return SpikeData(self.counts, lengths=self.lengths, bin_width_s=bin_width_s,
                         metadata={**dict(metadata or {}), "generated": True, **self.info()})


def write_samples(samples: Samples, path: str | Path) -> Path:
    """Write ``samples`` to ``path`` (.npz) atomically; returns the path."""
    path = output_file(path, SUFFIXES)
    arrays = {key: getattr(samples, key) for key in _ARRAYS if getattr(samples, key) is not None}
    arrays.update({key: np.array(getattr(samples, key)) for key in _TEXT})
    arrays["sampler_options"] = np.array(json.dumps(dict(samples.sampler_options), sort_keys=True))
    if samples.seed is not None:
        arrays["seed"] = np.array(int(samples.seed))
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:  # a handle: numpy adds no suffix
        np.savez_compressed(handle, **arrays)
    return path


def read_samples(path: str | Path) -> Samples:
    """Read a samples file (only ``counts`` is required, so samples from elsewhere can be evaluated).

    Only the keys above are read, each checked before it is decompressed (:mod:`ldns_framework.io.npz`).
    """
    path = Path(path)
    with NpzFile(path) as archive:
        if "counts" not in archive:
            raise archive.missing("counts")
        arrays = {key: archive.read(key) for key in _ARRAYS if key in archive}
        text = {key: archive.read_text(key) for key in _TEXT if key in archive}
        options = _options(archive.name, archive.read_text("sampler_options")) if "sampler_options" in archive else {}
        seed = archive.read_scalar("seed", "iu") if "seed" in archive else None
    try:  # the counts and lengths checked as any spike data is
        checked = SpikeData(arrays.pop("counts"), lengths=arrays.pop("lengths", None))
    except DataError as exc:
        raise DataError(f"{archive.name}: {exc.field}", exc.detail) from None
    return Samples(checked.counts, checked.lengths, **arrays, **text, sampler_options=options, seed=seed)


def _options(name: str, text: str) -> dict[str, Any]:
    try:
        options = json.loads(text)
    except (ValueError, RecursionError):
        options = None
    if not isinstance(options, dict):
        raise DataError(f"{name}: sampler_options", f"expected a JSON object, got {shorten(text)!r}")
    return options


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
