"""Tiny in-process components and a plugin object registering them, for registry and spec tests."""

from __future__ import annotations

import attrs
import numpy as np
import torch

from ldns_framework import DataSource, Encoder, LatentGenerator, SpikeData, hookimpl, option


@attrs.frozen
class ToyEncoderConfig:
    latent_dim: int = option(4, doc="latent channels", ge=1)
    hidden: int = option(16, doc="hidden channels", ge=1)
    bidirectional: bool = option(True, doc="direction")


class ToyEncoder(Encoder):
    config_class = ToyEncoderConfig

    def __init__(self, config=None, *, n_neurons: int) -> None:
        super().__init__(config, n_neurons=n_neurons)
        self.proj = torch.nn.Linear(n_neurons, self.config.latent_dim)
        self.back = torch.nn.Linear(self.config.latent_dim, n_neurons)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def encode(self, counts, mask):
        return self.proj(counts)

    def decode(self, latents, mask):
        return torch.nn.functional.softplus(self.back(latents))

    def training_loss(self, batch, observation):
        rates = self.decode(self.encode(batch.counts, batch.mask), batch.mask)
        nll = -observation.log_prob(batch.counts, rates, batch.mask).mean()
        return {"loss": nll, "recon": nll.detach()}


@attrs.frozen
class ToySampler:
    name: str = option("ddim", doc="sampler", choices=("ddpm", "ddim", "dpm-solver++"))
    steps: int = option(25, doc="steps", ge=1)


@attrs.frozen
class ToyGeneratorConfig:
    latent_dim: int = option(4, doc="latent channels", ge=1)
    hidden: int = option(16, doc="hidden channels", ge=1)
    betas: tuple[float, float] = option((1e-4, 0.02), doc="beta range", gt=0)
    sampler: ToySampler = option(factory=ToySampler, doc="sampler options")


class ToyGenerator(LatentGenerator):
    config_class = ToyGeneratorConfig

    def training_loss(self, latents, mask, condition):
        return {"loss": latents.pow(2).mean()}

    def sample(self, n, lengths, condition=None, generator=None, **sampler_options):
        return torch.zeros(n, int(lengths.max()), self.latent_dim)


@attrs.frozen
class ToyDataConfig:
    n_trials: int = option(6, doc="trials", ge=1)
    n_neurons: int = option(3, doc="neurons", ge=1)
    length: int = option(8, doc="bins", ge=1)


class ToyData(DataSource):
    config_class = ToyDataConfig

    def load(self) -> SpikeData:
        c = self.config
        counts = np.random.default_rng(0).poisson(0.5, (c.n_trials, c.length, c.n_neurons))
        half = c.n_trials // 2
        return SpikeData(counts, splits={"train": np.arange(half), "test": np.arange(half, c.n_trials)})


class ToyPlugin:
    """A plugin object (not a module): pluggy registers either."""

    @hookimpl
    def ldns_register_components(self, registrar):
        registrar.add("encoder", "toy-encoder", "toy_components:ToyEncoder", summary="toy")
        registrar.add("generator", "toy-generator", "toy_components:ToyGenerator", summary="toy")
        registrar.add("data", "toy-data", "toy_components:ToyData", summary="toy")


TOY_SPEC = {
    "data": {"type": "toy-data"},
    "encoder": {"type": "toy-encoder"},
    "generator": {"type": "toy-generator"},
}
