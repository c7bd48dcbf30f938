"""Bernoulli observation model: a bin holds a spike with probability 1 - exp(-rate)."""

from __future__ import annotations

import attrs
import torch

from ldns_framework import ObservationModel, option


@attrs.frozen
class BernoulliConfig:
    eps: float = option(1.0e-6, doc="Probabilities are kept in [eps, 1 - eps].", gt=0, lt=0.5)


class BernoulliObservation(ObservationModel):
    config_class = BernoulliConfig

    def _p(self, rates: torch.Tensor) -> torch.Tensor:
        return (-torch.expm1(-rates.clamp_min(0.0))).clamp(self.config.eps, 1 - self.config.eps)

    def log_prob_elements(self, counts, rates, scored):
        p = self._p(rates)
        per_entry = torch.where(counts > 0, torch.log(p), torch.log1p(-p))  # (B, T, N)
        per_entry = torch.where(counts > 1, -torch.inf, per_entry)  # more than one spike is impossible
        return torch.where(scored, per_entry, 0.0)

    def sample(self, rates, mask, generator=None):
        return torch.bernoulli(self._p(rates), generator=generator) * mask[..., None]
