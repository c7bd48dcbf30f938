"""``reach-angle``: the reach direction as a vector condition c = [cos theta, sin theta] (METHOD.md section 4).

theta = atan2(v_y, v_x) of the hand velocity at bin ``bin`` of the aligned window (the reference,
LDNS_NOTES.md 1.5: bin 50 of MC_Maze's -250..+450 ms window, with the behaviour lagged 100 ms).
The velocity *vector* is averaged over ``average_bins`` bins from ``bin`` before its angle is taken:
averaging vectors (never angles) has no wrap-around at +-180 degrees, leaves a straight reach's
direction unchanged, and shrinks the direction noise of a differentiated, noisy velocity trace by
about sqrt(average_bins) where one bin at the start of a movement is slow and noisy. The default,
10 bins (50 ms at 5 ms bins), is robust; ``average_bins: 1`` is the reference.

A trial whose averaged speed is below ``min_speed`` has no direction: it is an error naming how
many trials there are (never a silently arbitrary angle). At sampling time a condition is (n,)
angles in ``units`` or (n, 2) [cos, sin] rows; :meth:`ReachAngle.draw` draws directions uniformly.
Generated trials carry the requested direction as the covariate ``reach_angle`` ((n, 1) radians).

    conditioner = ReachAngle(ReachAngleConfig(bin=50, average_bins=10))
    conditioner.fit(data, data.splits["train"])
    c = conditioner.from_data(data, data.splits["test"])        # (trials, 2) [cos, sin]
    c = conditioner.validate(np.array([0.0, 90.0, 180.0]), 3, data.n_time)   # degrees
    c = conditioner.draw(8, data.n_time, torch.Generator().manual_seed(0))    # uniform directions
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ldns_framework import Conditioner, DataError, SpikeData
from ldns_plugins.conditioners.common import covariate_of, user_array
from ldns_plugins.conditioners.config import ReachAngleConfig

__all__ = ["ANGLE_COVARIATE", "ReachAngle", "ReachAngleConfig", "angle_vectors"]

#: Largest |angle| accepted per unit (one full turn either way).
FULL_TURN = {"degrees": 360.0, "radians": 2 * math.pi}
#: How far a given [cos, sin] row's norm may be from 1 (rounded values such as [0.707, 0.707]).
NORM_TOLERANCE = 0.01
#: The covariate of generated trials holding the requested direction ((n, 1) radians), where the
#: behaviour metrics look for it (``ldns_framework.metrics.Behaviour.angle``).
ANGLE_COVARIATE = "reach_angle"


def angle_vectors(theta: np.ndarray) -> np.ndarray:
    """theta (n,) radians -> (n, 2) [cos theta, sin theta]."""
    return np.stack([np.cos(theta), np.sin(theta)], axis=1)


class ReachAngle(Conditioner):
    """Reach direction [cos, sin] from the hand velocity at one bin (or averaged over a few)."""

    config_class = ReachAngleConfig
    kind = "vector"

    @property
    def dim(self) -> int:
        return 2

    def _velocity(self, data: SpikeData, indices: np.ndarray) -> np.ndarray:
        """The (averaged) velocity vectors (len(indices), 2) of the given trials."""
        cfg = self.config
        values = covariate_of(data, cfg.covariate, "conditioner.covariate")
        if values.shape[-1] != 2:
            raise DataError(f"covariates[{cfg.covariate!r}]", f"expected 2 channels [x, y] for a reach angle, "
                                                              f"got shape {values.shape}")
        indices = np.asarray(indices, dtype=np.int64)
        if values.ndim == 2:
            return values[indices]  # (trials, 2)
        stop = cfg.bin + cfg.average_bins
        shortest = int(data.lengths[indices].min()) if indices.size else data.n_time
        if stop > shortest:
            raise DataError("conditioner.bin", f"bins {cfg.bin}..{stop - 1} (bin, average_bins) must lie inside every "
                                               f"trial; the shortest has {shortest} bins")
        return values[indices, cfg.bin:stop].mean(axis=1)  # (trials, 2)

    def _checked_speed(self, velocity: np.ndarray, indices: np.ndarray) -> None:
        slow = np.linalg.norm(velocity, axis=1) < self.config.min_speed  # (trials,)
        if slow.any():
            cfg = self.config
            where = f"bin {cfg.bin}" if cfg.average_bins == 1 else f"bins {cfg.bin}..{cfg.bin + cfg.average_bins - 1}"
            raise DataError("condition", f"{int(slow.sum())} of {slow.size} trials (first: trial "
                                         f"{int(np.asarray(indices)[slow][0])}) have {cfg.covariate} speed below "
                                         f"min_speed={cfg.min_speed:g} at {where}, so no reach direction; choose "
                                         f"another bin, a larger average_bins, or leave those trials out")

    def fit(self, data: SpikeData, indices: np.ndarray) -> None:
        """Nothing to normalise ([cos, sin] is already scaled); checks the training trials have a direction."""
        self.from_data(data, indices)

    def from_data(self, data: SpikeData, indices: np.ndarray) -> torch.Tensor:
        """(len(indices), 2) [cos, sin] of each trial's reach direction."""
        velocity = self._velocity(data, indices)  # (trials, 2)
        self._checked_speed(velocity, indices)
        theta = np.arctan2(velocity[:, 1], velocity[:, 0])  # (trials,)
        return torch.as_tensor(angle_vectors(theta), dtype=torch.float32)

    def user_conditions(self, data: SpikeData, indices: np.ndarray) -> np.ndarray:
        """Real trials' conditions as ``validate`` accepts them: (trials, 2) [cos, sin]."""
        return self.from_data(data, indices).numpy()

    def sample_covariates(self, condition: torch.Tensor | None) -> dict[str, np.ndarray]:
        """The requested directions of generated trials: ``reach_angle`` (n, 1) in radians."""
        if condition is None:
            return {}
        rows = condition.detach().cpu().double().numpy()  # (n, 2) [cos, sin]
        return {ANGLE_COVARIATE: np.arctan2(rows[:, 1], rows[:, 0])[:, None]}

    def validate(self, condition: Any, n: int, length: int) -> torch.Tensor:
        """(n,) angles in ``units`` or (n, 2) [cos, sin] unit rows -> (n, 2) [cos, sin]."""
        units = self.config.units
        expected = f"({n},) reach angles in {units} or ({n}, 2) [cos, sin] rows"
        array = user_array(condition, expected)
        if array.shape == (n,):
            turn = FULL_TURN[units]
            largest = float(np.abs(array).max(initial=0.0))
            if largest > turn:
                hint = "; they look like degrees: set units: degrees (--angle-units degrees)" \
                    if units == "radians" and largest <= 360.0 else ""
                raise DataError("condition", f"expected angles in {units} within [-{turn:g}, {turn:g}], got "
                                             f"|angle| up to {largest:g}{hint}")
            theta = np.radians(array) if units == "degrees" else array
            return torch.as_tensor(angle_vectors(theta), dtype=torch.float32)
        if array.shape == (n, 2):
            norms = np.linalg.norm(array, axis=1)
            if (np.abs(norms - 1.0) > NORM_TOLERANCE).any():
                raise DataError("condition", f"expected ({n}, 2) unit rows [cos, sin], got row norms "
                                             f"{norms.min():.3g} to {norms.max():.3g}; give angles as an ({n},) array")
            return torch.as_tensor(array / norms[:, None], dtype=torch.float32)
        raise DataError("condition", f"expected {expected}, got shape {array.shape}")

    def draw(self, n: int, length: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n directions drawn uniformly on [-pi, pi) (the reference's sampling), as (n, 2) [cos, sin]."""
        device = generator.device if generator is not None else "cpu"
        theta = (torch.rand(n, generator=generator, dtype=torch.float64, device=device) * 2 - 1) * math.pi  # (n,)
        return torch.as_tensor(angle_vectors(theta.cpu().numpy()), dtype=torch.float32)
