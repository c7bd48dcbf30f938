"""Tiny in-process components and a plugin object registering them, for registry, spec and loading tests."""

from __future__ import annotations

import attrs
import numpy as np
import torch

from ldns_framework import DataSource, Encoder, LatentGenerator, ObservationModel, SpikeData, hookimpl, option


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

    def sample(self, n, lengths, condition=None, generator=None, *, sampler=None, options=None):
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


@attrs.frozen
class ZeroInflatedConfig:
    zero_prob: float = option(0.2, doc="Extra zero probability of every neuron before fitting.", gt=0, lt=1)
    em_steps: int = option(30, doc="EM iterations of fit().", ge=1)


class ZeroInflatedPoisson(ObservationModel):
    """x = 0 with probability pi_n, else Poisson(rate): one zero probability per neuron.

    Like a per-neuron model rebuilt from its config, it has no parameters until it is fitted or
    loads weights (every neuron uses ``zero_prob`` meanwhile, so it can train an encoder), and its
    ``_load_from_state_dict`` resizes it to the stored shape: a loader that compares shapes
    before that hook runs cannot reload it from a run.
    """

    config_class = ZeroInflatedConfig
    tags = frozenset({"supports_mask", "per_neuron"})
    needs_fitting = True

    def __init__(self, config=None, *, n_neurons=None) -> None:
        super().__init__(config)
        self.zero_logit = torch.nn.Parameter(torch.zeros(0))  # (N,), sized by fit() or by loaded weights

    @property
    def is_fitted(self) -> bool:
        return self.zero_logit.numel() > 0

    def _load_from_state_dict(self, state_dict, prefix, *args) -> None:
        stored = state_dict.get(prefix + "zero_logit")
        if isinstance(stored, torch.Tensor) and stored.shape != self.zero_logit.shape:
            self.zero_logit = torch.nn.Parameter(torch.empty_like(stored))
        super()._load_from_state_dict(state_dict, prefix, *args)

    def _logit(self) -> torch.Tensor:
        """(N,) once fitted, else the configured zero probability's logit (1,) for every neuron."""
        return self.zero_logit if self.is_fitted else torch.logit(torch.tensor([self.config.zero_prob]))

    def log_prob_elements(self, counts, rates, scored):
        logit = self._logit().to(rates)
        rates = rates.clamp_min(1e-8)
        log_keep = torch.nn.functional.logsigmoid(-logit)  # log(1 - pi)
        poisson = counts * torch.log(rates) - rates - torch.lgamma(counts + 1.0)  # (B, T, N)
        zero = torch.logaddexp(torch.nn.functional.logsigmoid(logit), log_keep - rates)  # (B, T, N): log P(x = 0)
        return torch.where(scored, torch.where(counts == 0, zero, log_keep + poisson), 0.0)  # (B, T, N)

    def sample(self, rates, mask, generator=None):
        pi = torch.sigmoid(self._logit()).to(rates)  # (N,) or (1,)
        kept = torch.rand(rates.shape, generator=generator, device=rates.device) >= pi  # (B, T, N)
        return torch.poisson(rates.clamp_min(0.0), generator=generator) * kept * mask[..., None]

    @torch.no_grad()
    def fit(self, counts, rates, mask):
        """EM on pi_n: a zero count is an extra zero with posterior pi / (pi + (1 - pi) exp(-rate))."""
        valid = mask[..., None].expand_as(counts).to(rates.dtype)  # (B, T, N)
        zeros = (counts == 0).to(rates.dtype) * valid
        pi = torch.full((counts.shape[-1],), self.config.zero_prob, dtype=rates.dtype, device=rates.device)  # (N,)
        for _ in range(self.config.em_steps):
            extra = zeros * pi / (pi + (1 - pi) * torch.exp(-rates))  # (B, T, N)
            pi = (extra.sum(dim=(0, 1)) / valid.sum(dim=(0, 1))).clamp(1e-4, 1 - 1e-4)
        self.zero_logit = torch.nn.Parameter(torch.logit(pi).float())
        return {"zero_prob_mean": float(pi.mean())}


class ToyPlugin:
    """A plugin object (not a module): pluggy registers either."""

    @hookimpl
    def ldns_register_components(self, registrar):
        registrar.add("encoder", "toy-encoder", "toy_components:ToyEncoder", summary="toy")
        registrar.add("generator", "toy-generator", "toy_components:ToyGenerator", summary="toy")
        registrar.add("data", "toy-data", "toy_components:ToyData", summary="toy")
        registrar.add("observation", "toy-zero-inflated", "toy_components:ZeroInflatedPoisson", summary="toy")


TOY_SPEC = {
    "data": {"type": "toy-data"},
    "encoder": {"type": "toy-encoder"},
    "generator": {"type": "toy-generator"},
}
