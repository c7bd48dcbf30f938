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
from ldns_framework.errors import LdnsError
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


def _check_suffix(path: Path) -> None:
    if path.suffix not in SUFFIXES:
        raise LdnsError(f"--out: expected a {' or '.join(SUFFIXES)} file, got {path.name}")


def write_samples(samples: Samples, path: str | Path) -> Path:
    """Write ``samples`` to ``path`` (.npz) atomically; returns the path."""
    path = Path(path)
    _check_suffix(path)
    arrays = {key: getattr(samples, key) for key in _ARRAYS if getattr(samples, key) is not None}
    arrays.update({key: np.array(getattr(samples, key)) for key in _TEXT})
    arrays["sampler_options"] = np.array(json.dumps(dict(samples.sampler_options), sort_keys=True))
    if samples.seed is not None:
        arrays["seed"] = np.array(int(samples.seed))
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **arrays)
    return path


def read_samples(path: str | Path) -> Samples:
    """Read a samples file (only ``counts`` is required, so samples from elsewhere can be evaluated)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            found = set(archive.files)
            if "counts" not in found:
                raise LdnsError(f"{path}: missing array 'counts'; found: {', '.join(sorted(found)) or 'nothing'}")
            arrays = {key: archive[key] for key in _ARRAYS if key in found}
            text = {key: str(archive[key].item()) for key in _TEXT if key in found}
            options = json.loads(str(archive["sampler_options"].item())) if "sampler_options" in found else {}
            seed = int(archive["seed"]) if "seed" in found else None
    except (OSError, ValueError) as exc:
        raise LdnsError(f"{path}: cannot read samples ({exc})") from None
    counts = arrays.pop("counts")
    lengths = arrays.pop("lengths", np.full(counts.shape[0], counts.shape[1], dtype=np.int64))
    return Samples(counts, lengths, **arrays, **text, sampler_options=options, seed=seed)


def latest_samples(run_dir: str | Path) -> Path:
    """The newest samples file in ``RUN/samples``; an error saying how to make one when there is none."""
    run_dir = Path(run_dir)
    found = sorted((p for suffix in SUFFIXES for p in (run_dir / "samples").glob(f"*{suffix}")),
                   key=lambda p: p.stat().st_mtime)
    if not found:
        raise LdnsError(f"{run_dir}: no samples in {run_dir / 'samples'}; draw some with "
                        f"`ldns sample {run_dir} --n N --out {run_dir / 'samples' / 'samples.npz'}` or pass --samples")
    return found[-1]
