"""The kit's own tiny reference components, one per kind the integration check needs.

The integration check swaps the component under test into a spec whose other sections use these,
so it depends on no installed plugin (the core names none). :func:`register_reference_components`
registers them into a registry under the plugin name ``ldns-kit``; this module is also the
plugin object (it holds the ``ldns_register_components`` hook implementation).

=======================  =========================================================================
``kit-linear-encoder``   causal, per-bin linear autoencoder: z_t = A log(1 + x_t) + a, r_t = softplus(B z_t + b)
``kit-count-model``      independent counts, mean = rate: log p = x log r - r - log x!
``kit-gaussian``         closed-form Gaussian over latents, mean linear in the condition (least squares)
``kit-unconditional``    no condition
``kit-data``             seeded synthetic counts (trials, time, neurons) with splits and covariates
=======================  =========================================================================
"""

from __future__ import annotations

import math
import sys
from typing import Any

import attrs
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ldns_framework._markers import hookimpl
from ldns_framework.config import option
from ldns_framework.data import SpikeData
from ldns_framework.errors import DataError, LdnsError
from ldns_framework.interfaces import DataSource, Encoder, LatentGenerator, ObservationModel, Unconditional

__all__ = [
    "KIT_PLUGIN",
    "KitCountModel",
    "KitData",
    "KitGaussian",
    "KitLinearEncoder",
    "KitUnconditional",
    "register_reference_components",
    "synthetic_spike_data",
]

#: The plugin name the reference components are registered under.
KIT_PLUGIN = "ldns-kit"


class KitCountModel(ObservationModel):
    """Independent counts with mean = rate (the exact pmf x log r - r - log x!)."""

    tags = frozenset({"supports_mask", "rate_parameterised"})

    def log_prob_elements(self, counts: torch.Tensor, rates: torch.Tensor, scored: torch.Tensor) -> torch.Tensor:
        safe = torch.where(scored, rates, torch.ones_like(rates)).clamp_min(1e-8)  # (B, T, N)
        value = counts * torch.log(safe) - safe - torch.lgamma(counts + 1.0)  # (B, T, N)
        return torch.where(scored, value, torch.zeros_like(value))

    def sample(self, rates: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.poisson(rates.clamp_min(0.0), generator=generator) * mask[..., None]  # (B, T, N)


@attrs.frozen
class KitLinearEncoderConfig:
    """Options of ``kit-linear-encoder``."""

    latent_dim: int = option(2, doc="Latent channels D.", ge=1)


class KitLinearEncoder(Encoder):
    """Per-bin linear encoder and softplus decoder: causal, so padding never reaches a valid bin."""

    config_class = KitLinearEncoderConfig

    def __init__(self, config: KitLinearEncoderConfig | None = None, *, n_neurons: int) -> None:
        super().__init__(config, n_neurons=n_neurons)
        self.inward = nn.Linear(n_neurons, self.config.latent_dim)
        self.outward = nn.Linear(self.config.latent_dim, n_neurons)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def is_causal(self) -> bool:
        return True

    def encode(self, counts: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.inward(torch.log1p(counts)) * mask[..., None]  # (B, T, D)

    def decode(self, latents: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return F.softplus(self.outward(latents)) + 1e-4  # (B, T, N)

    def training_loss(self, batch: Any, observation: ObservationModel) -> dict[str, torch.Tensor]:
        rates = self.decode(self.encode(batch.counts, batch.mask), batch.mask)  # (B, T, N)
        scored = batch.mask[..., None].expand_as(batch.counts)  # (B, T, N)
        nll = -observation.log_prob_elements(batch.counts, rates, scored).sum() / scored.sum().clamp_min(1)
        return {"loss": nll, "recon": nll.detach()}


class KitGaussian(LatentGenerator):
    """z_t ~ N(W [1, c_t], diag(s^2)) per bin, fitted in closed form by least squares.

    ``c_t`` is the condition (a vector condition is the same at every bin); unconditional: the mean
    is a constant per channel.
    """

    closed_form = True

    def __init__(self, config: Any = None, *, latent_dim: int, condition_kind: str | None = None,
                 condition_dim: int = 0) -> None:
        super().__init__(config, latent_dim=latent_dim, condition_kind=condition_kind, condition_dim=condition_dim)
        if condition_kind not in (None, "vector", "sequence"):
            raise LdnsError(f"kit-gaussian: unknown condition kind {condition_kind!r}")
        inputs = 1 + (condition_dim if condition_kind else 0)
        self.register_buffer("weights", torch.zeros(inputs, latent_dim))
        self.register_buffer("log_std", torch.zeros(latent_dim))

    def _design(self, condition: torch.Tensor | None, n: int, length: int) -> torch.Tensor:
        """(n, T, 1 + C): a constant column and the condition at every bin."""
        ones = torch.ones(n, length, 1, device=self.weights.device)
        if self.condition_kind is None:
            if condition is not None:
                raise DataError("condition", "this generator was built unconditional; do not pass a condition")
            return ones
        expected = (n, self.condition_dim) if self.condition_kind == "vector" else (n, length, self.condition_dim)
        if condition is None or tuple(condition.shape) != expected:
            got = None if condition is None else tuple(condition.shape)
            raise DataError("condition", f"expected a {self.condition_kind} condition of shape {expected}, got {got}")
        condition = condition.to(ones)
        if self.condition_kind == "vector":
            condition = condition[:, None, :].expand(n, length, self.condition_dim)  # (n, T, C)
        return torch.cat([ones, condition], dim=-1)

    def fit(self, latents: torch.Tensor, mask: torch.Tensor, condition: torch.Tensor | None) -> dict[str, float]:
        design = self._design(condition, latents.shape[0], latents.shape[1])[mask].double()  # (M, 1 + C)
        targets = latents[mask].double()  # (M, D)
        gram = design.T @ design + 1e-6 * torch.eye(design.shape[1], dtype=torch.float64)
        weights = torch.linalg.solve(gram, design.T @ targets)  # (1 + C, D)
        residual = targets - design @ weights
        std = residual.pow(2).mean(0).sqrt().clamp_min(1e-3)
        self.weights.copy_(weights.to(self.weights))
        self.log_std.copy_(std.log().to(self.log_std))
        return {"residual_std_mean": float(std.mean())}

    def training_loss(self, latents: torch.Tensor, mask: torch.Tensor,
                      condition: torch.Tensor | None) -> dict[str, torch.Tensor]:
        mean = self._design(condition, latents.shape[0], latents.shape[1]) @ self.weights  # (B, T, D)
        z = (latents - mean) / self.log_std.exp()
        nll = 0.5 * z.pow(2) + self.log_std + 0.5 * math.log(2 * math.pi)  # (B, T, D)
        nll = torch.where(mask[..., None], nll, torch.zeros_like(nll))
        return {"loss": nll.sum() / (mask.sum() * self.latent_dim).clamp_min(1)}

    def sample(self, n: int, lengths: torch.Tensor, condition: torch.Tensor | None = None,
               generator: torch.Generator | None = None, *, sampler: str | None = None,
               options: Any = None) -> torch.Tensor:
        if sampler is not None and sampler not in self.samplers:
            raise LdnsError(f"sampler: unknown sampler {sampler!r}; this generator has {', '.join(self.samplers)}")
        length = int(lengths.max())
        mean = self._design(condition, n, length) @ self.weights  # (n, T, D)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device)
        mask = torch.arange(length, device=mean.device)[None, :] < lengths.to(mean.device)[:, None]  # (n, T)
        return (mean + noise * self.log_std.exp()) * mask[..., None]


class KitUnconditional(Unconditional):
    """No condition: the generator sees none, and none is accepted at sampling time."""


def synthetic_spike_data(n_trials: int = 24, length: int = 16, n_neurons: int = 4, seed: int = 0,
                         variable_length: bool = False) -> SpikeData:
    """Seeded counts (trials, time, neurons) driven by a per-trial angle, with 60/20/20 splits.

    Covariates: ``vector`` (trials, 2) = (cos, sin) of the angle, ``sequence`` (trials, time, 2)
    a smooth trajectory, ``condition`` (trials, 1) an integer class 0..2 of the angle.
    """
    rng = np.random.default_rng(seed)
    angle = rng.uniform(-np.pi, np.pi, n_trials)
    phase = rng.uniform(0, 2 * np.pi, n_neurons)
    t = np.arange(length)[None, :, None]
    drive = np.sin(2 * np.pi * t / max(length, 2) + angle[:, None, None] + phase[None, None, :])
    counts = rng.poisson(np.exp(-0.5 + 0.8 * drive))  # (trials, time, neurons)
    lengths = rng.integers(max(1, length // 2), length + 1, n_trials) if variable_length else None
    if lengths is not None:
        lengths[0] = length
        counts = counts * (np.arange(length)[None, :] < lengths[:, None])[..., None]
    order = rng.permutation(n_trials)
    n_train, n_val = int(round(0.6 * n_trials)), int(round(0.2 * n_trials))
    splits = {"train": np.sort(order[:n_train]), "val": np.sort(order[n_train:n_train + n_val]),
              "test": np.sort(order[n_train + n_val:])}
    covariates = {
        "vector": np.stack([np.cos(angle), np.sin(angle)], axis=1).astype(np.float32),
        "sequence": np.stack([np.cos(angle[:, None] + 0.2 * t[..., 0]), np.sin(angle[:, None] + 0.2 * t[..., 0])],
                             axis=-1).astype(np.float32),
        "condition": (np.floor((angle + np.pi) / (2 * np.pi / 3)).clip(0, 2).astype(np.int64))[:, None],
    }
    return SpikeData(counts, lengths=lengths, covariates=covariates, bin_width_s=0.01, splits=splits,
                     metadata={"source": "ldns-kit synthetic data", "seed": seed})


@attrs.frozen
class KitDataConfig:
    """Options of ``kit-data``."""

    n_trials: int = option(24, doc="Trials.", ge=5)
    length: int = option(16, doc="Bins per trial.", ge=2)
    n_neurons: int = option(4, doc="Neurons.", ge=1)
    seed: int = option(0, doc="Seed of counts, covariates and splits.", ge=0)
    variable_length: bool = option(False, doc="Right-padded trials of lengths between length/2 and length.")


class KitData(DataSource):
    """:func:`synthetic_spike_data` as a data source."""

    config_class = KitDataConfig

    def load(self) -> SpikeData:
        c = self.config
        return synthetic_spike_data(c.n_trials, c.length, c.n_neurons, c.seed, c.variable_length)


REFERENCE = (
    ("encoder", "kit-linear-encoder", "KitLinearEncoder", "The conformance kit's causal per-bin linear autoencoder."),
    ("observation", "kit-count-model", "KitCountModel", "The conformance kit's independent counts (mean = rate)."),
    ("generator", "kit-gaussian", "KitGaussian", "The conformance kit's closed-form Gaussian over latents."),
    ("conditioner", "kit-unconditional", "KitUnconditional", "The conformance kit's unconditional conditioner."),
    ("data", "kit-data", "KitData", "The conformance kit's seeded synthetic spike data."),
)


@hookimpl
def ldns_register_components(registrar: Any) -> None:
    for kind, name, cls, summary in REFERENCE:
        registrar.add(kind, name, f"{__name__}:{cls}", summary=summary)


def register_reference_components(registry: Any) -> None:
    """Register the reference components into ``registry`` (once) as plugin ``ldns-kit``."""
    if KIT_PLUGIN not in registry.loaded:
        registry.register(sys.modules[__name__], KIT_PLUGIN)
