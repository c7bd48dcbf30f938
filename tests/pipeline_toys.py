"""Tiny components that count what the pipeline does with them, registered by :class:`PipelineToys`.

- ``counting-data``: a data source counting its ``load()`` calls.
- ``counting-encoder``: a linear autoencoder recording every inference (eval-mode) ``encode`` call.
- ``gain-poisson``: a Poisson observation model with a per-neuron gain fitted after the encoder
  (``needs_fitting``), so the observation stage uses the training encoding.
- ``gaussian-closed-form``: a closed-form generator (per-channel Gaussian, ``fit`` sets it), with
  two samplers (``ancestral``, and ``tempered`` with a ``temperature`` option, no ``steps``).
- ``stepped``: a gradient-trained generator whose sampler ``fast`` has a ``steps`` option; counts
  its ``after_optimizer_step`` calls.
- ``frozen``: a gradient generator (``closed_form`` False) with no trainable parameter.
- ``faulty``: a gradient generator whose training loss raises.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

import attrs
import numpy as np
import torch

from ldns_framework import DataSource, Encoder, LatentGenerator, NoOptions, ObservationModel, SpikeData, hookimpl, option


def fingerprint(counts: Any) -> str:
    """A digest of a counts array (numpy or torch), to recognise which trials were encoded."""
    array = counts.detach().cpu().numpy() if isinstance(counts, torch.Tensor) else np.asarray(counts)
    return hashlib.sha1(np.ascontiguousarray(array, dtype=np.float32).tobytes()).hexdigest()


@attrs.frozen
class CountingDataConfig:
    n_trials: int = option(16, doc="trials", ge=4)
    n_neurons: int = option(5, doc="neurons", ge=1)
    length: int = option(12, doc="bins", ge=2)


class CountingData(DataSource):
    config_class = CountingDataConfig
    loads: ClassVar[int] = 0

    def load(self) -> SpikeData:
        type(self).loads += 1
        c = self.config
        rng = np.random.default_rng(0)
        drive = np.sin(np.linspace(0, 3, c.length))[None, :, None] + rng.normal(0, 0.3, (c.n_trials, 1, c.n_neurons))
        counts = rng.poisson(np.exp(drive))  # (trials, T, N)
        n_train, n_val = c.n_trials // 2, c.n_trials // 4
        splits = {"train": np.arange(n_train), "val": np.arange(n_train, n_train + n_val),
                  "test": np.arange(n_train + n_val, c.n_trials)}
        return SpikeData(counts, splits=splits, bin_width_s=0.01)


@attrs.frozen
class CountingEncoderConfig:
    latent_dim: int = option(2, doc="latent channels", ge=1)


class CountingEncoder(Encoder):
    """Linear encode / softplus-linear decode; ``inference`` lists the fingerprint of every eval-mode encode."""

    config_class = CountingEncoderConfig
    inference: ClassVar[list[str]] = []

    def __init__(self, config: Any = None, *, n_neurons: int) -> None:
        super().__init__(config, n_neurons=n_neurons)
        self.proj = torch.nn.Linear(n_neurons, self.config.latent_dim)
        self.back = torch.nn.Linear(self.config.latent_dim, n_neurons)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def encode(self, counts: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if not self.training:
            type(self).inference.append(fingerprint(counts))
        return self.proj(counts)  # (B, T, D)

    def decode(self, latents: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.softplus(self.back(latents)) + 1e-3  # (B, T, N)

    def training_loss(self, batch: Any, observation: ObservationModel) -> dict[str, torch.Tensor]:
        rates = self.decode(self.proj(batch.counts), batch.mask)  # (B, T, N)
        nll = -observation.log_prob(batch.counts, rates, batch.mask).mean()
        return {"loss": nll}


class GainPoisson(ObservationModel):
    """Poisson counts at ``gain * rates``; the per-neuron gain is fitted after the encoder."""

    needs_fitting = True

    def __init__(self, config: Any = None, *, n_neurons: int | None = None) -> None:
        super().__init__(config, n_neurons=n_neurons)
        self.register_buffer("gain", torch.ones(n_neurons or 1))  # (N,)

    def fit(self, counts: torch.Tensor, rates: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
        valid = mask[..., None].float()  # (B, T, 1)
        self.gain = (counts * valid).sum(dim=(0, 1)) / (rates * valid).sum(dim=(0, 1)).clamp_min(1e-6)  # (N,)
        return {"mean_gain": float(self.gain.mean())}

    def log_prob_elements(self, counts: torch.Tensor, rates: torch.Tensor, scored: torch.Tensor) -> torch.Tensor:
        rates = (rates * self.gain).clamp_min(1e-8)  # (B, T, N)
        per_entry = counts * torch.log(rates) - rates - torch.lgamma(counts + 1.0)  # (B, T, N)
        return torch.where(scored, per_entry, 0.0)

    def sample(self, rates: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.poisson(rates * self.gain, generator=generator) * mask[..., None]  # (B, T, N)


@attrs.frozen
class TemperedOptions:
    temperature: float = option(1.0, doc="scale of the noise", gt=0)


class GaussianClosedForm(LatentGenerator):
    """Independent Gaussian latents per channel; ``fit`` sets mean and std from the training latents."""

    closed_form = True
    samplers = {"ancestral": NoOptions, "tempered": TemperedOptions}
    fits: ClassVar[int] = 0

    def __init__(self, config: Any = None, **context: Any) -> None:
        super().__init__(config, **context)
        self.register_buffer("mean", torch.zeros(self.latent_dim))  # (D,)
        self.register_buffer("std", torch.ones(self.latent_dim))  # (D,)

    def fit(self, latents: torch.Tensor, mask: torch.Tensor, condition: torch.Tensor | None) -> dict[str, float]:
        type(self).fits += 1
        valid = latents[mask]  # (bins, D)
        self.mean, self.std = valid.mean(dim=0), valid.std(dim=0).clamp_min(1e-3)
        return {"bins": int(valid.shape[0])}

    def training_loss(self, latents: torch.Tensor, mask: torch.Tensor,
                      condition: torch.Tensor | None) -> dict[str, torch.Tensor]:
        nll = 0.5 * ((latents - self.mean) / self.std) ** 2 + torch.log(self.std)  # (B, T, D)
        return {"loss": nll[mask].mean()}

    def sample(self, n: int, lengths: torch.Tensor, condition: torch.Tensor | None = None,
               generator: torch.Generator | None = None, *, sampler: str | None = None,
               options: Any = None) -> torch.Tensor:
        scale = options.temperature if sampler == "tempered" else 1.0
        noise = torch.randn(n, int(lengths.max()), self.latent_dim, generator=generator, device=self.mean.device)
        return self.mean + scale * self.std * noise  # (n, T, D)


@attrs.frozen
class FastOptions:
    steps: int = option(10, doc="steps", ge=1)


class Stepped(LatentGenerator):
    """A gradient-trained generator with samplers ``fast`` (``steps``) and ``exact`` (no options)."""

    samplers = {"fast": FastOptions, "exact": NoOptions}
    after_steps: ClassVar[int] = 0

    def __init__(self, config: Any = None, **context: Any) -> None:
        super().__init__(config, **context)
        self.shift = torch.nn.Parameter(torch.zeros(self.latent_dim))  # (D,)

    def training_loss(self, latents: torch.Tensor, mask: torch.Tensor,
                      condition: torch.Tensor | None) -> dict[str, torch.Tensor]:
        return {"loss": ((latents - self.shift) ** 2)[mask].mean()}

    def after_optimizer_step(self) -> None:
        type(self).after_steps += 1

    def sample(self, n: int, lengths: torch.Tensor, condition: torch.Tensor | None = None,
               generator: torch.Generator | None = None, *, sampler: str | None = None,
               options: Any = None) -> torch.Tensor:
        noise = torch.randn(n, int(lengths.max()), self.latent_dim, generator=generator,
                            device=self.shift.device)  # (n, T, D): the generator is on the model's device
        return self.shift.detach() + noise


class Frozen(LatentGenerator):
    """Gradient-trained by declaration (``closed_form`` False) but with nothing to train."""

    def training_loss(self, latents: torch.Tensor, mask: torch.Tensor,
                      condition: torch.Tensor | None) -> dict[str, torch.Tensor]:
        return {"loss": latents.pow(2).mean()}

    def sample(self, n: int, lengths: torch.Tensor, condition: torch.Tensor | None = None,
               generator: torch.Generator | None = None, *, sampler: str | None = None,
               options: Any = None) -> torch.Tensor:
        return torch.zeros(n, int(lengths.max()), self.latent_dim)


class PipelineToys:
    """The plugin registering the components above."""

    @hookimpl
    def ldns_register_components(self, registrar: Any) -> None:
        registrar.add("data", "counting-data", "pipeline_toys:CountingData", summary="toy")
        registrar.add("encoder", "counting-encoder", "pipeline_toys:CountingEncoder", summary="toy")
        registrar.add("observation", "gain-poisson", "pipeline_toys:GainPoisson", summary="toy")
        registrar.add("generator", "gaussian-closed-form", "pipeline_toys:GaussianClosedForm", summary="toy")
        registrar.add("generator", "stepped", "pipeline_toys:Stepped", summary="toy")
        registrar.add("generator", "frozen", "pipeline_toys:Frozen", summary="toy")
        registrar.add("generator", "faulty", "pipeline_toys:Faulty", summary="toy")


def toy_spec(**sections: Any) -> dict[str, Any]:
    """A tiny spec of the toy components; ``sections`` replace or add top-level sections."""
    spec = {"seed": 0, "data": {"type": "counting-data"}, "encoder": {"type": "counting-encoder"},
            "observation": {"type": "gain-poisson"}, "generator": {"type": "gaussian-closed-form"},
            "train": {"encoder": {"epochs": 2, "batch_size": 4, "val_every": 1},
                      "generator": {"epochs": 2, "batch_size": 4}},
            "sample": {"batch_size": 8}, "run": {"device": "cpu"}}
    spec.update(sections)
    return spec


def toy_registry() -> Any:
    """The installed plugins plus these toys."""
    from ldns_registry import Registry

    registry = Registry.discover(strict=False, trace=False)
    registry.register(PipelineToys(), "pipeline-toys")
    return registry


class Faulty(Stepped):
    """A gradient generator with a bug: its training loss raises (a plugin's error must name the plugin)."""

    def training_loss(self, latents: torch.Tensor, mask: torch.Tensor, condition: Any) -> dict[str, torch.Tensor]:
        raise ZeroDivisionError("a bug in the plugin")
