"""The ``arrays`` data source: spike counts from a NumPy ``.npz`` file.

File contents (read with :class:`ldns_framework.NpzFile`: only the keys below, each array's
declared size and dtype checked before it is decompressed, and never an object array, so a
file can neither run code nor exhaust memory):

- ``counts``: integer counts, axes in the order given by the ``layout`` option;
- ``lengths`` (optional): valid bins per trial, for right-padded variable-length trials;
- ``covariate/<name>`` (optional): (trials, dim) or (trials, time, dim) arrays, time axis canonical;
- ``split/<name>`` (optional): trial indices of a split; otherwise splits are drawn from the
  ``split`` fractions with ``split_seed``;
- ``bin_width_s`` (optional): scalar, used when the option ``bin_width_s`` is not set.

Other keys are ignored (not read). A ``.npy`` file holds the counts alone (random splits,
``bin_width_s`` from the option or 0.005).

Memory: with ``lazy: true``, or by default when the counts would take more than
``memory_limit_mb`` (null: :func:`ldns_framework.limits.memory_budget`), the counts stay in the
file (:mod:`ldns_framework.io.lazy`): validation reads them in blocks, splits are
index arrays, training reads each batch. That needs the bytes stored as they are (``.npy``, or
``np.savez``; a ``np.savez_compressed`` member is refused with that advice) and trials first.
The other arrays (lengths, covariates, splits) are read into memory. With ``lazy: false`` counts
larger than the limit are refused before anything is decompressed.

Usage::

    data = ArraysSource(ArraysConfig(path="session.npz", layout="trials neurons time")).load()
    data = ArraysSource(ArraysConfig(path="big.npz", lazy=True)).load()   # data.lazy is True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ldns_framework import DataError, DataSource, NpzFile, SpikeData, memory_limit_bytes, read_counts
from ldns_plugins.arrays.config import ArraysConfig

#: Prefixes of the optional per-name arrays.
COVARIATE, SPLIT = "covariate/", "split/"


def random_splits(n_trials: int, fractions: tuple[float, float, float], seed: int) -> dict[str, np.ndarray]:
    """Disjoint train/val/test index arrays drawn with ``seed`` (sorted within each split)."""
    order = np.random.default_rng(seed).permutation(n_trials)
    n_train = int(round(fractions[0] * n_trials))
    n_val = int(round(fractions[1] * n_trials))
    parts = np.split(order, [n_train, n_train + n_val])
    return {name: np.sort(part) for name, part in zip(("train", "val", "test"), parts)}


class ArraysSource(DataSource):
    """Loads and validates one ``.npz`` (or ``.npy``) file; counts larger than the memory limit stay in the file."""

    config_class = ArraysConfig

    def load(self) -> SpikeData:
        cfg = self.config
        limit = memory_limit_bytes(cfg.memory_limit_mb)
        npy = Path(cfg.path).suffix == ".npy"
        counts = read_counts(cfg.path, None if npy else "counts", cfg.layout, lazy=cfg.lazy, max_bytes=limit)
        if npy:
            return self._spike_data(str(cfg.path), counts, None, {}, {}, cfg.bin_width_s or 0.005)
        in_memory = counts.nbytes if isinstance(counts, np.ndarray) else 0
        with NpzFile(cfg.path, max_bytes=limit - in_memory) as archive:  # the other arrays share the limit
            lengths = archive.read("lengths") if "lengths" in archive else None
            covariates = {k[len(COVARIATE):]: archive.read(k) for k in archive.keys if k.startswith(COVARIATE)}
            splits = {k[len(SPLIT):]: archive.read(k) for k in archive.keys if k.startswith(SPLIT)}
            width = cfg.bin_width_s
            if width is None:
                width = archive.read_scalar("bin_width_s") if "bin_width_s" in archive else 0.005
        return self._spike_data(archive.name, counts, lengths, covariates, splits, width)

    def _spike_data(self, name: str, counts: Any, lengths: np.ndarray | None, covariates: dict[str, np.ndarray],
                    splits: dict[str, np.ndarray], width: float) -> SpikeData:
        """The validated :class:`SpikeData` (errors name the file); random splits when the file has none.
        Counts read into memory are in the file's layout; lazy ones are already canonical (reordered per read)."""
        layout = self.config.layout if isinstance(counts, np.ndarray) else "trials time neurons"
        if not splits and counts.ndim == 3:
            n_trials = counts.shape[layout.split().index("trials")]
            splits = random_splits(n_trials, self.config.split, self.config.split_seed)
        try:
            return SpikeData.from_array(counts, layout=layout, lengths=lengths, covariates=covariates,
                                        bin_width_s=width, splits=splits, metadata={"source": self.config.path})
        except DataError as exc:
            raise DataError(f"{name}: {exc.field}", exc.detail) from None
