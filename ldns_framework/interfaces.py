"""The component interfaces. Shapes: B batch, T time, N neurons, D latent dim; always (B, T, channels).

Every component is built from a frozen attrs config class (``config_class``) and is usable from
plain Python: ``PoissonObservation(PoissonObservation.config_class())``. Components that hold
weights are ``torch.nn.Module``; data sources and metrics are plain objects.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar, Mapping

import attrs
import numpy as np
import torch
from torch import nn

from ldns_framework.batch import Batch
from ldns_framework.data import SpikeData

__all__ = [
    "Conditioner",
    "ConfigurableComponent",
    "DataSource",
    "Encoder",
    "LatentGenerator",
    "Metric",
    "ObservationModel",
]


@attrs.frozen
class _NoOptions:
    """Config of a component that has no options."""


class ConfigurableComponent:
    """Mixin: holds ``self.config``, an instance of the class's ``config_class``."""

    config_class: ClassVar[type] = _NoOptions
    #: Free-form capability tags (e.g. ``autoregressive``, ``supports_mask``) read by the conformance kit.
    tags: ClassVar[frozenset[str]] = frozenset()

    def _set_config(self, config: Any) -> None:
        config = self.config_class() if config is None else config
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} expects a {self.config_class.__name__}, got {type(config).__name__}")
        self.config = config


class Encoder(ConfigurableComponent, nn.Module, abc.ABC):
    """An autoencoder: counts (B, T, N) -> latents (B, T, D) -> rates (B, T, N)."""

    def __init__(self, config: Any = None, *, n_neurons: int) -> None:
        nn.Module.__init__(self)
        self._set_config(config)
        self.n_neurons = n_neurons

    @property
    @abc.abstractmethod
    def latent_dim(self) -> int:
        """D, the number of latent channels."""

    @abc.abstractmethod
    def encode(self, counts: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """counts (B, T, N) float, mask (B, T) bool -> latents (B, T, D)."""

    @abc.abstractmethod
    def decode(self, latents: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """latents (B, T, D), mask (B, T) -> rates (B, T, N): positive expected counts per bin."""

    @abc.abstractmethod
    def training_loss(self, batch: Batch, observation: "ObservationModel") -> dict[str, torch.Tensor]:
        """One minibatch's loss: ``{"loss": scalar, <part>: scalar, ...}``; the reconstruction term
        is the observation model's negative log-likelihood."""


class ObservationModel(ConfigurableComponent, nn.Module, abc.ABC):
    """p(counts | rates): turns rates into spikes and scores spikes under rates."""

    #: True when a bin's distribution depends on earlier spikes (the kit then checks one-step conditionals).
    is_autoregressive: ClassVar[bool] = False

    def __init__(self, config: Any = None, *, n_neurons: int | None = None) -> None:
        """``n_neurons`` is given when known (a run being reloaded), so that a subclass with per-neuron
        parameters can size them before their weights are loaded; others ignore it."""
        nn.Module.__init__(self)
        self._set_config(config)

    @abc.abstractmethod
    def log_prob(self, counts: torch.Tensor, rates: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """counts, rates (B, T, N), mask (B, T) -> (B,): log-likelihood summed over neurons and valid bins."""

    @abc.abstractmethod
    def sample(self, rates: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """rates (B, T, N), mask (B, T) -> integer-valued counts (B, T, N), zero on padded bins."""

    def fit(self, counts: torch.Tensor, rates: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
        """Fit any parameters on real counts and encoder rates (after the encoder). Default: nothing to fit."""
        return {}


class LatentGenerator(ConfigurableComponent, nn.Module, abc.ABC):
    """A generative model of normalised latents (B, T, D)."""

    def __init__(self, config: Any = None, *, latent_dim: int, condition_kind: str | None = None,
                 condition_dim: int = 0) -> None:
        nn.Module.__init__(self)
        self._set_config(config)
        self.latent_dim = latent_dim
        self.condition_kind = condition_kind
        self.condition_dim = condition_dim

    @abc.abstractmethod
    def training_loss(self, latents: torch.Tensor, mask: torch.Tensor,
                      condition: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """latents (B, T, D) normalised, mask (B, T) -> ``{"loss": scalar, ...}``."""

    @abc.abstractmethod
    def sample(self, n: int, lengths: torch.Tensor, condition: torch.Tensor | None = None,
               generator: torch.Generator | None = None, **sampler_options: Any) -> torch.Tensor:
        """Draw ``n`` normalised latent trials (n, max(lengths), D); bins past a trial's length are padding."""


class Conditioner(ConfigurableComponent, abc.ABC):
    """Turns covariates into the condition tensor a generator consumes."""

    #: "vector" (B, dim) or "sequence" (B, T, dim); None for unconditional models.
    kind: ClassVar[str | None] = None

    def __init__(self, config: Any = None) -> None:
        self._set_config(config)

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """Size of the condition's channel axis (0 when unconditional)."""

    @abc.abstractmethod
    def from_data(self, data: SpikeData, indices: np.ndarray) -> torch.Tensor | None:
        """Condition tensor for the given trials of ``data`` (None when unconditional)."""

    @abc.abstractmethod
    def validate(self, condition: Any, n: int, length: int) -> torch.Tensor | None:
        """Check a user-given condition for ``n`` trials of ``length`` bins; raise DataError naming what is wrong."""

    def state(self) -> dict[str, Any]:
        """JSON-ready normalisation statistics, stored with the run."""
        return {}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state` returned."""


class DataSource(ConfigurableComponent, abc.ABC):
    """Loads spike data (synthetic, NWB files, plain arrays)."""

    def __init__(self, config: Any = None) -> None:
        self._set_config(config)

    @abc.abstractmethod
    def load(self) -> SpikeData:
        """Return validated :class:`SpikeData` with train/val/test splits where the source defines them."""


class Metric(ConfigurableComponent, abc.ABC):
    """A statistic comparing generated spikes with real ones."""

    def __init__(self, config: Any = None) -> None:
        self._set_config(config)

    @abc.abstractmethod
    def compute(self, model: SpikeData, data: SpikeData) -> dict[str, float]:
        """Named values comparing ``model`` samples with real ``data`` (both (trials, time, neurons))."""
