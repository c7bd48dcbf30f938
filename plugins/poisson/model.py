"""Poisson observation model: counts ~ Poisson(rates), independently per (trial, bin, neuron).

log p(x | r) = x log r - r - log x!   (the exact pmf, log-factorial included, so that
log-likelihoods compare across observation models).

Usage::

    obs = PoissonObservation()
    counts = obs.sample(rates, mask, generator=torch.Generator().manual_seed(0))  # (B, T, N)
    ll = obs.log_prob(counts, rates, mask)                                          # (B,)
    per_entry = obs.log_prob_elements(counts, rates, mask[..., None].expand_as(counts))  # (B, T, N)
"""

from __future__ import annotations

import torch

from ldns_framework import ObservationModel
from ldns_plugins.poisson.config import PoissonConfig


class PoissonObservation(ObservationModel):
    """Independent Poisson counts; the LDNS reference observation model."""

    config_class = PoissonConfig
    tags = frozenset({"supports_mask", "rate_parameterised"})

    def log_prob_elements(self, counts: torch.Tensor, rates: torch.Tensor, scored: torch.Tensor) -> torch.Tensor:
        """counts, rates, scored (B, T, N) -> (B, T, N): x log r - r - log x! where scored, else 0."""
        rates = rates.clamp_min(self.config.min_rate)
        per_entry = counts * torch.log(rates) - rates - torch.lgamma(counts + 1.0)  # (B, T, N)
        return torch.where(scored, per_entry, 0.0)  # (B, T, N)

    def sample(self, rates: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        counts = torch.poisson(rates.clamp_min(0.0), generator=generator)  # (B, T, N)
        return counts * mask[..., None]
