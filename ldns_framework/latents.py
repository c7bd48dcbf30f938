"""Latent normalisation (METHOD.md section 2): per-channel statistics of the training latents.

The generator learns standardised latents; the same statistics un-normalise its samples. They
are computed once, over the training split's valid bins, and stored as RUN/latent_stats.json.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np

from ldns_framework.errors import LdnsError
from ldns_framework.rundir import read_json, write_json


@attrs.frozen
class LatentStats:
    mean: np.ndarray  # (D,)
    std: np.ndarray  # (D,)
    clamp: float | None

    @classmethod
    def from_latents(cls, latents: np.ndarray, mask: np.ndarray, clamp: float | None) -> "LatentStats":
        """latents (trials, T, D), mask (trials, T): statistics over valid bins only."""
        valid = latents[mask]  # (bins, D)
        if valid.shape[0] < 2:
            raise LdnsError("latent normalisation needs at least two valid training bins")
        std = valid.std(axis=0)
        return cls(valid.mean(axis=0), np.where(std > 0, std, 1.0), clamp)

    def normalise(self, latents: np.ndarray) -> np.ndarray:
        z = (latents - self.mean) / self.std
        return np.clip(z, -self.clamp, self.clamp) if self.clamp is not None else z

    def unnormalise(self, latents: np.ndarray) -> np.ndarray:
        return latents * self.std + self.mean

    def save(self, path: str | Path) -> None:
        write_json(path, {"mean": self.mean.tolist(), "std": self.std.tolist(), "clamp": self.clamp})

    @classmethod
    def load(cls, path: str | Path) -> "LatentStats":
        """The statistics ``save`` wrote; a missing or malformed file is an error naming it."""
        if not Path(path).is_file():
            raise LdnsError(f"{path}: latent statistics not found; the latents stage has not run")
        stored = read_json(path, dict)
        try:
            mean, std = (np.asarray(stored[key], dtype=np.float32) for key in ("mean", "std"))
            clamp = stored["clamp"]
            valid = (mean.ndim == 1 and mean.shape == std.shape and mean.size > 0 and np.isfinite(mean).all()
                     and (std > 0).all() and np.isfinite(std).all()
                     and (clamp is None or isinstance(clamp, (int, float)) and not isinstance(clamp, bool) and clamp > 0))
        except (KeyError, TypeError, ValueError):
            valid = False
        if not valid:
            raise LdnsError(f"{path}: expected 'mean' and 'std' (equal-length lists of finite numbers, std > 0) "
                            "and 'clamp' (a positive number or null)")
        return cls(mean, std, clamp)
