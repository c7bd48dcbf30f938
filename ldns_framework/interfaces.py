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
from ldns_framework.config import NoOptions
from ldns_framework.data import SpikeData
from ldns_framework.errors import DataError

__all__ = [
    "Conditioner",
    "ConfigurableComponent",
    "DataSource",
    "Encoder",
    "LatentGenerator",
    "Metric",
    "NoOptions",
    "ObservationModel",
    "PooledMetric",
    "Unconditional",
]


class ConfigurableComponent:
    """Mixin: holds ``self.config``, an instance of the class's ``config_class``."""

    config_class: ClassVar[type] = NoOptions
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

    @property
    def is_causal(self) -> bool:
        """True when latents and rates at bin t depend only on bins <= t (required for
        variable-length data: then right-padding can never change a valid bin). The kit checks it."""
        return False

    @abc.abstractmethod
    def encode(self, counts: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """counts (B, T, N) float, mask (B, T) bool -> latents (B, T, D)."""

    @abc.abstractmethod
    def decode(self, latents: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """latents (B, T, D), mask (B, T) -> rates (B, T, N): positive expected counts per bin."""

    @abc.abstractmethod
    def training_loss(self, batch: Batch, observation: "ObservationModel") -> dict[str, torch.Tensor]:
        """One minibatch's loss: ``{"loss": scalar, <part>: scalar, ...}``; the reconstruction term
        is the observation model's negative log-likelihood, through
        :meth:`ObservationModel.log_prob_elements` when only some entries are scored (coordinated
        dropout), so any factorised observation model trains any encoder."""

    def calibrate(self, counts: Any, mask: torch.Tensor) -> dict[str, float]:
        """After training, adjust the chosen weights on the training split and return figures to
        keep (default: nothing to adjust). ``counts[index]`` gives the trials of a 1-D int64 index
        tensor as float32 (B, T, N) (a tensor, or rows read from a file); ``mask`` is (trials, T).
        Runs on every process alike, so it must be deterministic."""
        return {}


class ObservationModel(ConfigurableComponent, nn.Module, abc.ABC):
    """p(counts | rates): turns rates into spikes and scores spikes under rates.

    Subclasses implement :meth:`log_prob_elements` (the per-entry log-likelihood) and
    :meth:`sample`; :meth:`log_prob` sums the elements over neurons and valid bins. The element-wise
    form is the contract that lets an encoder score any subset of entries (coordinated dropout)
    without reshaping entries into one-neuron trials, so per-neuron parameters stay aligned.
    """

    #: True when a bin's distribution depends on earlier spikes (the kit then checks one-step conditionals).
    is_autoregressive: ClassVar[bool] = False
    #: True when :meth:`fit` must run (after the encoder, on real counts and its rates) before the
    #: model can score or sample. May be a property when it depends on the config.
    needs_fitting: ClassVar[bool] = False

    def __init__(self, config: Any = None, *, n_neurons: int | None = None) -> None:
        """``n_neurons`` is given when known (a run being reloaded), so that a subclass with per-neuron
        parameters can size them before their weights are loaded; others ignore it."""
        nn.Module.__init__(self)
        self._set_config(config)

    @property
    def is_fitted(self) -> bool:
        """False while parameters sized or set by :meth:`fit` are missing (the kit then fits first)."""
        return True

    @abc.abstractmethod
    def log_prob_elements(self, counts: torch.Tensor, rates: torch.Tensor, scored: torch.Tensor) -> torch.Tensor:
        """counts, rates (B, T, N), scored (B, T, N) bool -> (B, T, N): the exact log-pmf of every
        entry (for an autoregressive model: given the true earlier counts), exactly 0 where ``scored``
        is False (use ``torch.where``, so nothing from an unscored entry reaches the gradient)."""

    def log_prob(self, counts: torch.Tensor, rates: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """counts, rates (B, T, N), mask (B, T) -> (B,): log-likelihood summed over neurons and valid bins."""
        scored = mask[..., None].expand_as(counts)  # (B, T, N)
        return self.log_prob_elements(counts, rates, scored).sum(dim=(1, 2))

    @abc.abstractmethod
    def sample(self, rates: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """rates (B, T, N), mask (B, T) -> integer-valued counts (B, T, N), zero on padded bins."""

    def fit(self, counts: torch.Tensor, rates: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
        """Fit any parameters on real counts and encoder rates (after the encoder); returns JSON-ready
        figures stored with the run. Default: nothing to fit."""
        return {}

    def encoder_observation(self) -> str | None:
        """The registered name of the factorised observation model that trains the encoder in this
        model's place, or None to train it with this model. Autoregressive models name one (their
        history is fitted after the encoder, METHOD.md section 5)."""
        return None


class LatentGenerator(ConfigurableComponent, nn.Module, abc.ABC):
    """A generative model of normalised latents (B, T, D).

    Lifecycle: a gradient-trained generator (``closed_form = False``) is trained by the engine on
    :meth:`training_loss`, with :meth:`after_optimizer_step` after every step (e.g. an EMA update);
    a closed-form one (``closed_form = True``) is fitted once by :meth:`fit` and has no optimiser.
    """

    #: Sampler name -> frozen attrs class of its options (fields made with ``ldns_framework.option``).
    #: The first entry is the default. The spec's ``sample`` section and ``ldns sample`` are
    #: validated against these; the core names no sampler.
    samplers: ClassVar[Mapping[str, type]] = {"ancestral": NoOptions}
    #: True when :meth:`fit` computes the parameters in closed form instead of gradient training.
    closed_form: ClassVar[bool] = False

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
        """latents (B, T, D) normalised, mask (B, T) -> ``{"loss": scalar, ...}`` (for a closed-form
        generator: its validation loss, e.g. the negative log-likelihood per bin)."""

    @abc.abstractmethod
    def sample(self, n: int, lengths: torch.Tensor, condition: torch.Tensor | None = None,
               generator: torch.Generator | None = None, *, sampler: str | None = None,
               options: Any = None) -> torch.Tensor:
        """Draw ``n`` normalised latent trials (n, max(lengths), D); bins past a trial's length are padding.

        ``sampler`` is a key of :attr:`samplers` (None: the first) and ``options`` an instance of its
        options class (None: its defaults); draw only from ``generator``.
        """

    def fit(self, latents: torch.Tensor, mask: torch.Tensor, condition: torch.Tensor | None) -> dict[str, float]:
        """Closed-form generators: set the parameters from all training latents; returns JSON-ready figures."""
        raise NotImplementedError(f"{type(self).__name__} is trained by gradient descent (closed_form is False)")

    def after_optimizer_step(self) -> None:
        """Called by the training engine after every optimiser step (e.g. an EMA update). Default: nothing."""

    @classmethod
    def describe_sampler(cls, sampler: str, options: Any) -> str:
        """A short label for outputs and progress bars, e.g. ``heun (steps=25)``."""
        fields = attrs.asdict(options) if attrs.has(type(options)) else {}
        return sampler + (f" ({', '.join(f'{k}={v}' for k, v in fields.items())})" if fields else "")


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

    def fit(self, data: SpikeData, indices: np.ndarray) -> None:
        """Compute normalisation statistics from the training trials ``indices`` of ``data``
        (before :meth:`from_data` is used). Default: nothing to compute."""

    @abc.abstractmethod
    def validate(self, condition: Any, n: int, length: int) -> torch.Tensor | None:
        """Check a user-given condition for ``n`` trials of ``length`` bins; raise DataError naming what is wrong."""

    def sample_covariates(self, condition: torch.Tensor | None) -> dict[str, np.ndarray]:
        """The validated ``condition`` (as :meth:`validate` returned it) in data units, as covariates
        of the generated trials (name -> (n, ...) array), so behaviour metrics and the report compare
        what is decoded from samples with what was asked for. Default: none."""
        return {}

    def state(self) -> dict[str, Any]:
        """JSON-ready normalisation statistics, stored with the run."""
        return {}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state` returned."""

    def user_conditions(self, data: SpikeData, indices: np.ndarray) -> Any:
        """Conditions of real trials in the units :meth:`validate` accepts (``ldns sample --from-split``):
        ``validate(user_conditions(data, i), len(i), data.n_time)`` equals ``from_data(data, i)``.
        Default: :meth:`from_data`'s, as an array (right for a conditioner that does not normalise)."""
        condition = self.from_data(data, indices)
        return None if condition is None else condition.detach().cpu().numpy()

    def draw(self, n: int, length: int, generator: torch.Generator | None = None) -> torch.Tensor | None:
        """Conditions for ``n`` trials of ``length`` bins when the user gives none (e.g. uniform reach
        directions), drawn only from ``generator``. Default: refuse, saying what to give."""
        raise DataError("condition", "this model is conditional: give a condition (--condition FILE, or "
                                     "--from-split SPLIT for the conditions of real trials)")


class Unconditional(Conditioner):
    """The conditioner of unconditional models: no condition tensor, and none accepted at sampling time."""

    kind = None

    @property
    def dim(self) -> int:
        return 0

    def from_data(self, data: SpikeData, indices: np.ndarray) -> None:
        return None

    def validate(self, condition: Any, n: int, length: int) -> None:
        if condition is not None:
            raise DataError("condition", "this model is unconditional; do not pass a condition")
        return None

    def draw(self, n: int, length: int, generator: torch.Generator | None = None) -> None:
        return None


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

    def fit(self, train: SpikeData) -> None:
        """Learn what the metric needs from the real training trials (e.g. a behaviour decoder); the
        evaluation calls it once, before any split is compared. Default: nothing to learn."""

    def describe(self, context: Any = None) -> dict[str, dict[str, str]]:
        """Per value name: ``unit`` and ``better`` (``"lower"`` or ``"higher"``), for reports and the
        kit (a lower-is-better value must be 0 on identical inputs, a higher-is-better one maximal),
        and ``against: "condition"`` for a value that scores samples against the conditions they were
        drawn for rather than against the data (the kit then does not ask for a perfect score).
        ``context`` is what :meth:`PooledMetric.prepare` returned, or None."""
        return {}


class PooledMetric(Metric):
    """A metric computed from per-trial statistics pooled with trial weights.

    A bootstrap fold is a multiset of trials (trial ``i`` taken ``w[i]`` times). For a statistic that
    is a sum over trials the fold's value is a weighted sum of per-trial values, so the evaluation
    computes per-trial statistics once per set of trials and each fold costs one weighted sum. The
    evaluation calls, in order:

    1. ``context = prepare(data)``: once per split, on the real trials (units, neuron groups).
    2. ``per_trial = trial_statistics(spikes, context)``: once per set of trials.
    3. ``pooled = pool(per_trial, weights, context)``: per fold and side; ``weights`` (trials,) are
       non-negative integer multiplicities (0 leaves a trial out).
    4. ``compare_statistics(pooled_model, pooled_data, context) -> {name: float}``.

    :meth:`compute` runs the four steps with unit weights, so it equals the statistic of the whole sets.
    Metrics that are not pooled are called through :meth:`compute` on each resampled set.
    """

    def prepare(self, data: SpikeData) -> Any:
        """What the comparison needs from the real data (units, groups); ``None`` by default."""
        return None

    @abc.abstractmethod
    def trial_statistics(self, spikes: SpikeData, context: Any) -> Any:
        """Statistics of every trial of ``spikes`` (or what :meth:`pool` needs to compute them)."""

    @abc.abstractmethod
    def pool(self, per_trial: Any, weights: np.ndarray, context: Any) -> Any:
        """The statistics of the multiset of trials given by integer ``weights`` (trials,)."""

    @abc.abstractmethod
    def compare_statistics(self, model: Any, data: Any, context: Any) -> dict[str, float]:
        """Named values comparing pooled model statistics with pooled data statistics."""

    def compute(self, model: SpikeData, data: SpikeData) -> dict[str, float]:
        if model.n_neurons != data.n_neurons:
            raise DataError("counts", f"expected {data.n_neurons} neurons in the model samples like the data, "
                                      f"got {model.n_neurons}")
        context = self.prepare(data)
        pooled_model = self.pool(self.trial_statistics(model, context), np.ones(model.n_trials, np.int64), context)
        pooled_data = self.pool(self.trial_statistics(data, context), np.ones(data.n_trials, np.int64), context)
        return self.compare_statistics(pooled_model, pooled_data, context)
