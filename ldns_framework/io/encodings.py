"""The encodings file: latents and rates the encoder infers from real trials (``ldns encode``).

The one place that knows the file's keys. ``.npz`` keys: ``latents`` (trials, T, D), ``rates``
(trials, T, N), ``counts`` (trials, T, N), ``lengths`` (trials,), ``trial_index`` (trials,): the
trials' indices in the data they came from, ``bin_width_s``, and ``covariate/<name>`` for each
covariate of those trials. Latents and rates are zero past each trial's length.

A ``.nwb`` path writes an NWB file instead (:mod:`ldns_framework.nwb.generated`): latents and
rates as TimeSeries in the ``ldns`` processing module, the counts as spike times and exactly,
one trials row per trial window; :func:`read_encodings` reads either back.
"""

from __future__ import annotations

from pathlib import Path

from typing import Any, Mapping

import attrs
import numpy as np

from ldns_framework.data import SpikeData
from ldns_framework.errors import LdnsError
from ldns_framework.io.npz import NpzFile, write_npz
from ldns_framework.io.paths import output_file
from ldns_framework.rundir import atomic_path

__all__ = ["SUFFIXES", "Encoded", "read_encodings", "write_encodings"]

#: File suffixes this module writes and reads.
SUFFIXES = (".npz", ".nwb")
_COVARIATE = "covariate/"


@attrs.frozen
class Encoded:
    """Inferred latents (trials, T, D) and rates (trials, T, N) of real trials; zero on padding.

    ``provenance``: the run's spec and versions (:mod:`ldns_framework.io.provenance`), stored in NWB files."""

    latents: np.ndarray
    rates: np.ndarray
    data: SpikeData
    trial_index: np.ndarray
    provenance: Mapping[str, Any] = attrs.field(factory=dict)


def write_encodings(encoded: Encoded, path: str | Path) -> Path:
    """Write ``encoded`` to ``path`` (.npz or .nwb) atomically; returns the path."""
    path = output_file(path, SUFFIXES)
    if path.suffix == ".nwb":
        from ldns_framework.nwb.generated import write_encodings_nwb

        return write_encodings_nwb(encoded, path)
    arrays = {"latents": encoded.latents, "rates": encoded.rates, "counts": encoded.data.counts,
              "lengths": encoded.data.lengths, "trial_index": encoded.trial_index,
              "bin_width_s": np.array(encoded.data.bin_width_s)}
    arrays.update({f"{_COVARIATE}{k}": v for k, v in encoded.data.covariates.items()})
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:  # a handle: numpy adds no suffix
        write_npz(handle, arrays)
    return path


def read_encodings(path: str | Path) -> Encoded:
    """Read what :func:`write_encodings` wrote (each array checked before it is decompressed)."""
    path = Path(path)
    if path.suffix == ".nwb":
        from ldns_framework.nwb.generated import read_encodings_nwb

        return read_encodings_nwb(path)
    required = ("latents", "rates", "counts", "lengths", "trial_index")
    with NpzFile(path) as archive:
        missing = [k for k in (*required, "bin_width_s") if k not in archive]
        if missing:
            raise LdnsError(f"{path}: not an encodings file (missing {', '.join(missing)})")
        arrays = {k: archive.read(k) for k in required}
        width = archive.read_scalar("bin_width_s")
        covariates = {k[len(_COVARIATE):]: archive.read(k) for k in archive.keys if k.startswith(_COVARIATE)}
    data = SpikeData(arrays["counts"], lengths=arrays["lengths"], covariates=covariates, bin_width_s=width)
    return Encoded(arrays["latents"], arrays["rates"], data, arrays["trial_index"])
