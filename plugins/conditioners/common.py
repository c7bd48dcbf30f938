"""What the conditioners share: finding a covariate, reading a user's condition, channel statistics.

Two spaces of conditions: the *model space* the generator consumes (what ``from_data`` and
``validate`` return, normalised where the conditioner normalises) and the *user space*, in the
data's units (what ``validate`` accepts, ``user_conditions`` returns for real trials and
``sample_covariates`` stores with generated trials). ``validate(user_conditions(data, i), ...)``
equals ``from_data(data, i)``.
"""

from __future__ import annotations

from typing import Any, Mapping

import attrs
import numpy as np

from ldns_framework import DataError, SpikeData

__all__ = ["ChannelStats", "covariate_of", "user_array"]


def covariate_of(data: SpikeData, name: str, option: str) -> np.ndarray:
    """The covariate ``name`` of ``data``, (trials, dim) or (trials, time, dim); a missing one is a
    one-line error naming ``option`` (the spec key that chose it) and listing the covariates there are."""
    if name not in data.covariates:
        have = ", ".join(repr(k) for k in sorted(data.covariates)) or "none"
        raise DataError(option, f"the data have no covariate {name!r}; covariates: {have}")
    return np.asarray(data.covariates[name])


def user_array(condition: Any, expected: str) -> np.ndarray:
    """A user's condition as a finite float64 array; ``expected`` says what a valid one looks like."""
    if condition is None:
        raise DataError("condition", f"this model is conditional: expected {expected}, got no condition")
    if hasattr(condition, "detach"):  # a torch tensor, on any device
        condition = condition.detach().cpu().numpy()
    try:
        array = np.asarray(condition)
    except (TypeError, ValueError):
        raise DataError("condition", f"expected {expected}, got {type(condition).__name__}") from None
    if array.dtype.kind not in "iuf":
        raise DataError("condition", f"expected {expected} of real numbers, got dtype {array.dtype}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise DataError("condition", f"expected finite values, found {bad} NaN or infinite of {array.size}")
    return array


@attrs.frozen
class ChannelStats:
    """Per-channel mean and std (std 0 replaced by 1) of training values, stored with the run."""

    mean: np.ndarray  # (dim,)
    std: np.ndarray  # (dim,)

    @classmethod
    def of(cls, values: np.ndarray) -> "ChannelStats":
        """values (samples, dim): trials for a vector covariate, valid bins for a sequence one."""
        if values.shape[0] < 2:
            raise DataError("condition", f"normalisation needs at least two training values, got {values.shape[0]}")
        std = values.std(axis=0)
        return cls(values.mean(axis=0), np.where(std > 0, std, 1.0))

    def normalise(self, values: np.ndarray) -> np.ndarray:
        return (values - self.mean) / self.std

    def unnormalise(self, values: np.ndarray) -> np.ndarray:
        return values * self.std + self.mean

    def state(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_state(cls, state: Mapping[str, Any], dim: int) -> "ChannelStats":
        """What :meth:`state` wrote; anything else is an error naming conditioner.json."""
        try:
            mean, std = (np.asarray(state[key], dtype=np.float64) for key in ("mean", "std"))
            ok = mean.shape == std.shape == (dim,) and np.isfinite(mean).all() and np.isfinite(std).all() \
                and (std > 0).all()
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            raise DataError("conditioner.json", f"expected 'mean' and 'std': {dim} finite numbers each, std > 0")
        return cls(mean, std)
