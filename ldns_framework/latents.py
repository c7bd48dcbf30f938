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
        if not Path(path).is_file():
            raise LdnsError(f"{path}: latent statistics not found; the latents stage has not run")
        stored = read_json(path)
        return cls(np.asarray(stored["mean"], dtype=np.float32), np.asarray(stored["std"], dtype=np.float32), stored["clamp"])
