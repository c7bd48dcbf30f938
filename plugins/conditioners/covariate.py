"""``covariate``: any named covariate of the data as the condition, vector or sequence, z-normalised.

The kind follows the covariate's shape at fit time, (trials, dim) -> "vector", (trials, time, dim)
-> "sequence", unless the spec sets it (then a covariate of the other shape is an error). With
``normalise`` each channel is standardised with the mean and std of the training trials (the valid
bins of a sequence), stored in conditioner.json; padded bins of a sequence condition are 0. A
condition given at sampling time is in the data's units; one further than ``max_z`` training
standard deviations from the training mean is refused as a probable unit mistake.

    conditioner = CovariateConditioner(CovariateConfig(covariate="target_pos"))
    conditioner.fit(data, data.splits["train"])              # kind, dim and statistics from the data
    c = conditioner.from_data(data, data.splits["test"])     # normalised, as the generator sees it
    c = conditioner.validate(values, n, length)              # a user's values, checked and normalised
    values = conditioner.to_user(c)                          # back in the data's units
    conditioner.sample_covariates(c)                         # {covariate: values}, stored with samples
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from ldns_framework import Conditioner, DataError, LdnsError, SpikeData
from ldns_plugins.conditioners.common import ChannelStats, covariate_of, user_array
from ldns_plugins.conditioners.config import KINDS, CovariateConfig

__all__ = ["CovariateConditioner", "CovariateConfig"]


class CovariateConditioner(Conditioner):
    """A named covariate, vector or sequence, standardised with training statistics."""

    config_class = CovariateConfig

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.kind = self._declared_kind()
        self._dim: int | None = None
        self._stats: ChannelStats | None = None
        self._units: str | None = None

    # -- what subclasses fix -----------------------------------------------------------------------
    def _declared_kind(self) -> str | None:
        return self.config.kind

    def _normalises(self) -> bool:
        return self.config.normalise

    def _check_dim(self, shape: tuple[int, ...]) -> None:
        """Refuse a covariate this conditioner cannot use (here: any channel count will do)."""

    def _unit_hint(self) -> str:
        """Appended to the error for implausibly large values."""
        return ""

    # -- fitting -----------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        if self._dim is None:
            raise LdnsError(f"conditioner {self.config.covariate!r}: dim is known once fitted (fit or load_state)")
        return self._dim

    def _fitted(self) -> ChannelStats:
        if self._stats is None:
            raise LdnsError(f"conditioner {self.config.covariate!r}: fit it on the training trials (or load_state) "
                            f"first")
        return self._stats

    def _values(self, data: SpikeData) -> np.ndarray:
        """The covariate, refused when its shape is not the kind (and dim) this conditioner has."""
        name = self.config.covariate
        values = covariate_of(data, name, "conditioner.covariate")
        kind = "vector" if values.ndim == 2 else "sequence"
        if self.kind is not None and kind != self.kind:
            layout = "(trials, dim)" if self.kind == "vector" else "(trials, time, dim)"
            raise DataError(f"covariates[{name!r}]", f"expected {layout} for a {self.kind} condition, got shape "
                                                     f"{values.shape}")
        if self._dim is not None and values.shape[-1] != self._dim:
            raise DataError(f"covariates[{name!r}]", f"expected {self._dim} channels as when fitted, got shape "
                                                     f"{values.shape}")
        self._check_dim(values.shape)
        return values

    def fit(self, data: SpikeData, indices: np.ndarray) -> None:
        """Kind, dim and per-channel statistics from the training trials (valid bins only)."""
        values = self._values(data)
        indices = np.asarray(indices, dtype=np.int64)
        self.kind = "vector" if values.ndim == 2 else "sequence"
        self._dim = int(values.shape[-1])
        train = values[indices] if values.ndim == 2 else values[indices][data.mask()[indices]]  # (samples, dim)
        self._stats = ChannelStats.of(np.asarray(train, dtype=np.float64))
        units = data.metadata.get("behavior_units")
        self._units = units.get(self.config.covariate) if isinstance(units, Mapping) else None

    def state(self) -> dict[str, Any]:
        stats = self._fitted()
        return {"kind": self.kind, "dim": self._dim, "units": self._units, **stats.state()}

    def load_state(self, state: Mapping[str, Any]) -> None:
        kind, dim, units = state.get("kind"), state.get("dim"), state.get("units")
        declared = self._declared_kind()
        if kind not in KINDS or (declared is not None and kind != declared) or isinstance(dim, bool) \
                or not isinstance(dim, int) or dim < 1 or not (units is None or isinstance(units, str)):
            raise DataError("conditioner.json", f"expected 'kind' {declared or ' or '.join(KINDS)}, 'dim' >= 1 "
                                                f"and 'units' (text or null), got {kind!r}, {dim!r}, {units!r}")
        self._stats = ChannelStats.from_state(state, dim)
        self.kind, self._dim, self._units = kind, dim, units

    # -- conditions --------------------------------------------------------------------------------
    def user_conditions(self, data: SpikeData, indices: np.ndarray) -> np.ndarray:
        """Real trials' conditions in the data's units, as ``validate`` accepts them (padding 0)."""
        self._fitted()
        indices = np.asarray(indices, dtype=np.int64)
        values = np.asarray(self._values(data)[indices], dtype=np.float32)
        if values.ndim == 3:
            values = values * data.mask()[indices][..., None]  # (trials, time, dim)
        return values

    def from_data(self, data: SpikeData, indices: np.ndarray) -> torch.Tensor:
        """(trials, dim) or (trials, time, dim): the covariate of the trials, normalised, padding 0."""
        values = self.user_conditions(data, indices).astype(np.float64)
        model = self._to_model(values)
        if model.ndim == 3:
            model = model * data.mask()[np.asarray(indices, dtype=np.int64)][..., None]
        return torch.as_tensor(model, dtype=torch.float32)

    def _to_model(self, values: np.ndarray) -> np.ndarray:
        return self._fitted().normalise(values) if self._normalises() else values

    def to_user(self, condition: torch.Tensor) -> np.ndarray:
        """A model-space condition back in the data's units."""
        values = condition.detach().cpu().numpy().astype(np.float64)
        return (self._fitted().unnormalise(values) if self._normalises() else values).astype(np.float32)

    def sample_covariates(self, condition: torch.Tensor | None) -> dict[str, np.ndarray]:
        """Generated trials carry the condition in the data's units under the covariate's own name
        (what the behaviour metrics compare decoded behaviour with)."""
        return {} if condition is None else {self.config.covariate: self.to_user(condition)}

    def validate(self, condition: Any, n: int, length: int) -> torch.Tensor:
        """A user's condition in the data's units -> the model-space tensor, after shape, finiteness
        and plausibility checks (each failure a one-line DataError naming ``condition``)."""
        stats, name = self._fitted(), self.config.covariate
        units = f" in {self._units}" if self._units else ""
        shape = (n, self.dim) if self.kind == "vector" else (n, length, self.dim)
        what = "values" if self.kind == "vector" else "traces"
        expected = f"{shape} {name} {what}{units} (trials, {'' if self.kind == 'vector' else 'time, '}channels)"
        array = user_array(condition, expected)
        if array.shape != shape:
            raise DataError("condition", f"expected {expected}, got shape {array.shape}")
        z = np.abs(stats.normalise(array)).max(initial=0.0)
        if self.config.max_z is not None and z > self.config.max_z:
            largest = float(np.abs(array).max())
            raise DataError("condition", f"values up to {largest:.3g} lie {z:.3g} training std from the training mean "
                                         f"(std {', '.join(f'{s:.3g}' for s in stats.std)}): expected {name}{units} "
                                         f"like the training data{self._unit_hint()}")
        return torch.as_tensor(self._to_model(array), dtype=torch.float32)
