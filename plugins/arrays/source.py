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

Other keys are ignored (not read).

Usage::

    data = ArraysSource(ArraysConfig(path="session.npz", layout="trials neurons time")).load()
"""

from __future__ import annotations

import numpy as np

from ldns_framework import DataError, DataSource, NpzFile, SpikeData
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
    """Loads and validates one ``.npz`` file."""

    config_class = ArraysConfig

    def load(self) -> SpikeData:
        path = self.config.path
        with NpzFile(path) as archive:
            if "counts" not in archive:
                raise archive.missing("counts")
            counts = archive.read("counts")
            lengths = archive.read("lengths") if "lengths" in archive else None
            covariates = {k[len(COVARIATE):]: archive.read(k) for k in archive.keys if k.startswith(COVARIATE)}
            splits = {k[len(SPLIT):]: archive.read(k) for k in archive.keys if k.startswith(SPLIT)}
            width = self.config.bin_width_s
            if width is None:
                width = archive.read_scalar("bin_width_s") if "bin_width_s" in archive else 0.005
        if not splits and counts.ndim == 3:
            n_trials = counts.shape[self.config.layout.split().index("trials")]
            splits = random_splits(n_trials, self.config.split, self.config.split_seed)
        try:
            return SpikeData.from_array(counts, layout=self.config.layout, lengths=lengths, covariates=covariates,
                                        bin_width_s=width, splits=splits, metadata={"source": path})
        except DataError as exc:
            raise DataError(f"{archive.name}: {exc.field}", exc.detail) from None
